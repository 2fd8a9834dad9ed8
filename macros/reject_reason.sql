{#- The one verdict on an input line: the first cleaning rule that rejects it, else
    `duplicate_line` when the left-joined duplicates relation holds it, else null (accepted). -#}
{% macro reject_reason(lines, duplicates) -%}
    coalesce(
        {{ lines }}.rule_reason,
        case when {{ duplicates }}.source_row is not null then 'duplicate_line' end
    )
{%- endmacro %}
