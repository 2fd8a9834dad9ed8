{#- Fails with the duplicated key values when the columns together are not unique (null
    values are equal here, as in GROUP BY). With `written_by` (a column stamped with the build
    that wrote the row, in a table a refresh replaces whole groups of: int_invoice_lines
    replaces whole files), only the rows of the latest write are checked: the others were
    checked when they were written, and a refresh should not read every line to test the few it
    wrote. `first_rows: N` tests the first N rows the model yields, for a view over the lines
    where a full test would read them all again: DuckDB stops reading after N rows (every row
    below N). Written here because no dbt package can be downloaded. -#}
{% test unique_combination(model, columns, written_by=none, first_rows=none) %}
{%- if first_rows is not none and (first_rows | int) < 1 %}
    {{ exceptions.raise_compiler_error(
        'unique_combination: first_rows must be a whole number from 1, not ' ~ first_rows) }}
{%- endif %}

with

keys as (

    select {{ columns | join(', ') }}
    from {{ model }}
    {%- if written_by is not none %}
    where {{ written_by }} = (select max({{ written_by }}) from {{ model }})
    {%- endif %}
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
