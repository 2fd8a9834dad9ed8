{#- Fails with the duplicated key values when the columns together are not unique.
    Written here because no dbt package can be downloaded. -#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
