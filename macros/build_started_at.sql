{#- When this dbt command started (UTC), as a SQL timestamp: the same in every model of one
    build, later in every later build. Incremental models stamp the rows they write with it,
    and a model after them takes the rows stamped since its own last write. -#}
{% macro build_started_at() -%}
    cast({{ sql_string_literal(run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')) }} as timestamp)
{%- endmacro %}
