{#- The select of customer_rfm's reference date (one row, column as_of_date): the var
    `as_of_date`, or by default the day after the last line of `line_groups`. The one place
    the rule is written; see customer_rfm_at.yml. -#}
{% macro rfm_reference_date(line_groups) -%}
    {%- set as_of_date = validated_var('as_of_date') %}
    {%- if as_of_date is none %}
        select
            cast(
                {{ dbt.dateadd('day', 1, 'cast(max(invoiced_at) as date)') }} as date
            ) as as_of_date
        from {{ line_groups }}
    {%- else %}
        select cast({{ sql_string_literal(as_of_date) }} as date) as as_of_date
    {%- endif %}
{%- endmacro %}
