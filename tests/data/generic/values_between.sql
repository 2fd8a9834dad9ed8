{#- Fails with one row per value outside its range: `ranges` maps a column to
    [min_value, max_value] (inclusive; null leaves that side open). Nulls pass: required
    columns are listed in not_null_columns. One scan for every ranged column of a model,
    instead of one test node per column. Written here because no dbt package can be
    downloaded. -#}
{% test values_between(model, ranges) %}

{%- for column, bounds in ranges.items() %}
    {%- set min_value, max_value = bounds[0], bounds[1] %}
    {{ 'union all' if not loop.first }}
    select
        '{{ column }}' as column_name,
        cast({{ column }} as double) as out_of_range_value
    from {{ model }}
    where
        {{ column }} is not null
        and (
            {{ column ~ ' < ' ~ min_value if min_value is not none else 'false' }}
            or {{ column ~ ' > ' ~ max_value if max_value is not none else 'false' }}
        )
{%- endfor %}

{% endtest %}
