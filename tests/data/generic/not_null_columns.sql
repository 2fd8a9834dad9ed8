{#- Fails with the rows where any of the listed columns is null: one scan for every required
    column of a model, instead of one test node (and one scan) per column.
    Written here because no dbt package can be downloaded. -#}
{% test not_null_columns(model, columns) %}

select *
from {{ model }}
where
    {%- for column in columns %}
        {{ 'or ' if not loop.first }}{{ column }} is null
    {%- endfor %}

{% endtest %}
