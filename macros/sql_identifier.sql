{#- A double-quoted SQL identifier; double quotes inside doubled. For column names read from
    a file header (stg_input_files). -#}
{% macro sql_identifier(name) -%}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}
