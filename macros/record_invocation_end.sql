{#- on-run-end hook: mark this invocation passed (every node succeeded, passed or warned) or
    failed, then log what the serving file holds. -#}
{% macro record_invocation_end(results) -%}
    {%- if execute -%}
        {%- set ns = namespace(passed=true, publish_result=none) -%}
        {%- for result in results -%}
            {%- if (result.status | string) not in ['success', 'pass', 'warn', 'no-op'] -%}
                {%- set ns.passed = false -%}
            {%- endif -%}
            {%- if result.node.unique_id == 'model.' ~ project_name ~ '.publish_serving_file' -%}
                {%- set ns.publish_result = result -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do run_query(create_build_records() ~ ";
            update meta.dbt_invocations
            set status = '" ~ ('passed' if ns.passed else 'failed') ~ "', finished_at = now()
            where invocation_id = " ~ sql_string_literal(invocation_id)) -%}
        {%- if flags.WHICH != 'test' -%}
            {%- do log_serving_file_status(ns.publish_result) -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}
