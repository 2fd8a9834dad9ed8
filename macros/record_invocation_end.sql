{#- on-run-end hook: mark this invocation passed (every node succeeded, passed or warned) or
    failed, then log what the serving file holds. The publish node is not part of the verdict,
    nor the exposures after it: a build whose models and tests all passed but whose publish
    failed (a full disk) is a passed build that `make publish` can still publish. -#}
{% macro record_invocation_end(results) -%}
    {%- if execute -%}
        {%- set ns = namespace(passed=true, publish_result=none) -%}
        {%- for result in results -%}
            {%- if result.node.unique_id == 'model.' ~ project_name ~ '.publish_serving_file' -%}
                {%- set ns.publish_result = result -%}
            {%- elif result.node.resource_type != 'exposure'
                    and (result.status | string) not in ['success', 'pass', 'warn', 'no-op'] -%}
                {%- set ns.passed = false -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do log_out_of_memory_hint(results) -%}
        {%- do run_query(create_build_records() ~ ";
            update meta.dbt_invocations
            set status = '" ~ ('passed' if ns.passed else 'failed') ~ "', finished_at = now()
            where invocation_id = " ~ sql_string_literal(invocation_id)) -%}
        {%- if flags.WHICH != 'test' -%}
            {%- do log_serving_file_status(ns.publish_result) -%}
        {%- endif -%}
        {%- do log_build_changes(results) -%}
    {%- endif -%}
    select 1
{%- endmacro %}
