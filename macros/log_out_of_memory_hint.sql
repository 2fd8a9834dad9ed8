{#- on-run-end: DuckDB's `Out of Memory Error` names its SQL setting (`SET memory_limit`), not
    the environment variables this project sets it from; say which, with their values. -#}
{% macro log_out_of_memory_hint(results) -%}
    {%- set failed = [] -%}
    {%- for result in results
            if result.message and 'Out of Memory Error' in (result.message | string) -%}
        {%- do failed.append(result.node.name) -%}
    {%- endfor -%}
    {%- if failed -%}
        {{ log('DuckDB ran out of memory in ' ~ failed | join(', ') ~ ' with DUCKDB_MEMORY_LIMIT='
            ~ env_var('DUCKDB_MEMORY_LIMIT', '2GB') ~ ', DUCKDB_THREADS='
            ~ env_var('DUCKDB_THREADS', '2') ~ ' and DBT_THREADS=' ~ env_var('DBT_THREADS', '2')
            ~ ': set a larger DUCKDB_MEMORY_LIMIT, or fewer DUCKDB_THREADS or DBT_THREADS'
            ~ ' (docs/performance.md).', info=true) }}
    {%- endif -%}
{%- endmacro %}
