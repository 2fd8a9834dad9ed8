{#- Score 1..buckets from the rank of `column` among all rows of the query (or of its
    `partition_by` group); equal values share the lowest rank, so they always get the same
    score. See tie_safe_quantile_score.yml. -#}
{% macro tie_safe_quantile_score(column, buckets, lower_is_better=false, partition_by=none) -%}
    {%- set partition = 'partition by ' ~ partition_by ~ ' ' if partition_by else '' %}
    {#- `//`: integer division, exact at any number of customers -#}
    cast(
        1 + (
            {{ buckets }}
            * (rank() over ({{ partition }}order by {{ column }} {{ 'desc' if lower_is_better else 'asc' }}) - 1)
        ) // count(*) over ({{ partition | trim }}) as {{ dbt.type_int() }}
    )
{%- endmacro %}
