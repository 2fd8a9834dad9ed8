{#- A single-quoted SQL string literal; quotes doubled. For values checked by validated_var. -#}
{% macro sql_string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}
