{#- Fails with the duplicated key values when the columns together are not unique. With
    `written_by` (a column stamped with the build that wrote the row, in a table a refresh
    replaces whole groups of: int_invoice_lines replaces whole files), only the rows of the
    latest write are checked: the others were checked when they were written, and a refresh
    should not read every line to test the few it wrote. Written here because no dbt package
    can be downloaded. -#}
{% test unique_combination(model, columns, written_by=none) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
{%- if written_by is not none %}
where {{ written_by }} = (select max({{ written_by }}) from {{ model }})
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
