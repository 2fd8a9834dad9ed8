{#- Fails with the rows whose value lies outside [min_value, max_value] (inclusive; either
    bound may be left out). Nulls pass: pair with not_null where a value is required.
    Written here because no dbt package can be downloaded. -#}
{% test value_between(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }} as out_of_range_value
from {{ model }}
where
    {{ column_name }} is not null
    and (
        {%- if min_value is not none %}
            {{ column_name }} < {{ min_value }}
        {%- else %}
            false
        {%- endif %}
        {%- if max_value is not none %}
            or {{ column_name }} > {{ max_value }}
        {%- endif %}
    )

{% endtest %}
