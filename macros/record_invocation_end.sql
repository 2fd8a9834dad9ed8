{#- on-run-end hook: mark this invocation passed (every node succeeded, passed or warned) or
    failed. -#}
{% macro record_invocation_end(results) -%}
    {%- if execute -%}
        {%- set ns = namespace(passed=true) -%}
        {%- for result in results -%}
            {%- if (result.status | string) not in ['success', 'pass', 'warn', 'no-op'] -%}
                {%- set ns.passed = false -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do run_query(create_build_records() ~ ";
            update meta.dbt_invocations
            set status = '" ~ ('passed' if ns.passed else 'failed') ~ "', finished_at = now()
            where invocation_id = " ~ sql_string_literal(invocation_id)) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
