{#- customer_rfm's reference date as a one-row select over the invoice groups. -#}
{% macro reference_date_select(line_groups) -%}
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
