{#- Fails with the duplicated key values when the columns together are not unique (null
    values are equal here, as in GROUP BY). `first_rows: N` tests the first N rows the model
    yields, for a view over the input files where a full test would read them all again:
    DuckDB stops reading after N rows (every row below N). Written here because no dbt package
    can be downloaded. -#}
{% test unique_combination(model, columns, first_rows=none) %}
{%- if first_rows is not none and (first_rows | int) < 1 %}
    {{ exceptions.raise_compiler_error(
        'unique_combination: first_rows must be a whole number from 1, not ' ~ first_rows) }}
{%- endif %}

with

keys as (

    select {{ columns | join(', ') }}
    from {{ model }}
    {%- if first_rows is not none %}
    limit {{ first_rows | int }}
    {%- endif %}

)

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from keys
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
