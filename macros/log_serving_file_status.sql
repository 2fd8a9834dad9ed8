{#- The last line of a run (on-run-end): whether the serving file (SERVING_DUCKDB_PATH) now
    holds this build, or which build it still holds and why this one was not published.
    `publish_result` is the run result of the node publish_serving_file, none when this
    command did not run it. -#}
{% macro log_serving_file_status(publish_result) -%}
    {%- set serving = env_var('SERVING_DUCKDB_PATH', 'warehouse/serving.duckdb') -%}
    {%- set command = '`dbt ' ~ flags.WHICH ~ '`' -%}
    {%- if publish_result is none -%}
        {%- set reason = 'this ' ~ command ~ ' did not run the node publish_serving_file'
            ~ (' (a --select build)' if flags.WHICH == 'build' else '') -%}
    {%- elif (publish_result.status | string) == 'success' -%}
        {%- set row = run_query(
            'select is_published, reason, published_tables, published_rows
            from meta.publish_serving_file where invocation_id = '
            ~ sql_string_literal(invocation_id)
        ).rows[0] -%}
        {%- if row['is_published'] -%}
            {{ log('Serving file ' ~ serving ~ ' now holds this build (' ~ invocation_id ~ '): '
                ~ row['published_tables'] ~ ' marts, ' ~ row['published_rows'] ~ ' rows.',
                info=true) }}
            {%- do return('') -%}
        {%- endif -%}
        {%- set reason = row['reason'] -%}
    {%- elif (publish_result.status | string) == 'skipped' -%}
        {%- set reason = 'publish_serving_file was skipped: a model or test it depends on failed' -%}
    {%- else -%}
        {%- set reason = 'publish_serving_file ended in ' ~ publish_result.status
            ~ ' (its error is above)' -%}
    {%- endif -%}
    {%- set held = 'nothing yet (no serving file there)' -%}
    {%- if run_query('select count(*) from glob(' ~ sql_string_literal(serving) ~ ')')
            .columns[0].values()[0] > 0 -%}
        {%- do run_query('attach ' ~ sql_string_literal(serving)
            ~ ' as __serving_status (read_only)') -%}
        {%- set has_info = run_query("select count(*) from duckdb_tables()
            where database_name = '__serving_status' and schema_name = 'marts'
            and table_name = 'build_info'").columns[0].values()[0] > 0 -%}
        {%- set info = run_query('select build_id, published_at
            from __serving_status.marts.build_info') if has_info else none -%}
        {%- do run_query('detach __serving_status') -%}
        {%- set held = 'no build_info (not written by publish)' -%}
        {%- if info is not none and info.rows | length > 0 -%}
            {%- set held_id = info.rows[0]['build_id'] -%}
            {%- set record = run_query('select finished_at from meta.dbt_invocations
                where invocation_id = ' ~ sql_string_literal(held_id)) -%}
            {%- set finished = record.rows[0]['finished_at'] if record.rows | length > 0 -%}
            {%- set held = 'build ' ~ held_id ~ ' ('
                ~ ('finished ' ~ finished.astimezone(modules.pytz.utc).strftime(
                    '%Y-%m-%d %H:%M:%S UTC') ~ ', ' if finished
                   else 'not recorded in this build file, ')
                ~ 'published ' ~ info.rows[0]['published_at'].strftime('%Y-%m-%d %H:%M:%S')
                ~ ' UTC)' -%}
        {%- endif -%}
    {%- endif -%}
    {{ log('Serving file ' ~ serving ~ ' still holds ' ~ held ~ ', not this ' ~ command
        ~ ' (' ~ invocation_id ~ '): ' ~ reason ~ '. A `dbt build` whose every model and test'
        ~ ' passes updates it; `make publish` republishes the last complete build.', info=true) }}
{%- endmacro %}
