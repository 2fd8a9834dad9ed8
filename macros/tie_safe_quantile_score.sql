{#- Score 1..buckets from the rank of `column` among all rows of the query; equal values share
    the lowest rank, so they always get the same score. See tie_safe_quantile_score.yml. -#}
{% macro tie_safe_quantile_score(column, buckets, lower_is_better=false) -%}
    {#- `//`: integer division, exact at any number of customers -#}
    cast(
        1 + (
            {{ buckets }}
            * (rank() over (order by {{ column }} {{ 'desc' if lower_is_better else 'asc' }}) - 1)
        ) // count(*) over () as {{ dbt.type_int() }}
    )
{%- endmacro %}
