{#- The groups of consecutive dates of `dates_relation` for the materialization
    table_in_date_groups: a list of [first date, last date], in date order. A group takes
    dates while the rows they write (`rows_column`) times `bytes_per_row` fit in a quarter
    of DuckDB's memory_limit (the rest is for the other model dbt runs beside it and for
    what cannot spill); every group has at least one date. A null date (no line at all)
    makes no group. `after` (a SQL timestamp): only the dates after it. -#}
{% macro date_groups(dates_relation, date_column, rows_column, bytes_per_row, after=none) -%}
    {%- set limit_bytes = duckdb_memory_limit_bytes() -%}
    {%- set max_rows = [(limit_bytes // 4) // bytes_per_row, 1] | max -%}
    {%- set found = run_query(
        'select cast(' ~ date_column ~ ' as varchar), ' ~ rows_column ~ ' from '
        ~ dates_relation ~ ' where ' ~ date_column ~ ' is not null'
        ~ (' and ' ~ date_column ~ ' > ' ~ after if after is not none else '') ~ ' order by 1'
    ) -%}
    {%- set groups = [] -%}
    {%- set current = {'first': none, 'last': none, 'rows': 0} -%}
    {%- for row in found.rows -%}
        {%- if current['first'] is not none and current['rows'] + row[1] > max_rows -%}
            {%- do groups.append([current['first'], current['last']]) -%}
            {%- do current.update({'first': none, 'rows': 0}) -%}
        {%- endif -%}
        {%- if current['first'] is none -%}
            {%- do current.update({'first': row[0]}) -%}
        {%- endif -%}
        {%- do current.update({'last': row[0], 'rows': current['rows'] + row[1]}) -%}
    {%- endfor -%}
    {%- if current['first'] is not none -%}
        {%- do groups.append([current['first'], current['last']]) -%}
    {%- endif -%}
    {{ return(groups) }}
{%- endmacro %}

{#- DuckDB's memory_limit in bytes, as the session has it (current_setting gives a text such
    as '1.8 GiB'). -#}
{% macro duckdb_memory_limit_bytes() -%}
    {%- set result = run_query("select current_setting('memory_limit')") -%}
    {%- set text = result.rows[0][0] -%}
    {%- set match = modules.re.match('^ *([0-9.]+) *([KMGT]?i?B) *$', text) -%}
    {%- if not match -%}
        {{ exceptions.raise_compiler_error("cannot read DuckDB's memory_limit: " ~ text) }}
    {%- endif -%}
    {%- set units = {
        'B': 1, 'KB': 1000, 'MB': 1000 ** 2, 'GB': 1000 ** 3, 'TB': 1000 ** 4,
        'KiB': 1024, 'MiB': 1024 ** 2, 'GiB': 1024 ** 3, 'TiB': 1024 ** 4,
    } -%}
    {{ return((match.group(1) | float * units[match.group(2)]) | int) }}
{%- endmacro %}

{#- For table_in_date_groups' reuse_before: the latest moment up to which the rows of
    `existing` (the table as the last build left it, dated by `existing_column`) are still
    right, as a SQL timestamp, or none when none is (its `settings` column differs from
    `settings`, or it has no row). A snapshot at date D counts the lines before D, so it is
    right while no input file written or gone since that build (`files`:
    int_invoice_line_files, lines_written_at after the table's written_through) had a line
    before D (their earliest_invoiced_at), and D was a date before (a date of `dates` not in
    `existing` starts the recomputation there). -#}
{% macro dates_unchanged_through(existing, existing_column, files, dates, dates_column, settings) -%}
    {%- set found = run_query(
        'select count(*) filter (where settings is distinct from ' ~ sql_string_literal(settings)
        ~ '), max(written_through) from ' ~ existing
    ).rows[0] -%}
    {%- if found[0] > 0 or found[1] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set through = run_query(
        'with watermark as (select max(written_through) as written_through from ' ~ existing
        ~ ') select coalesce(least('
        ~ '(select min(earliest_invoiced_at) from ' ~ files ~ ', watermark'
        ~ ' where lines_written_at > watermark.written_through), '
        ~ '(select min(' ~ dates_column ~ ') - interval 1 microsecond from ' ~ dates
        ~ ' where ' ~ dates_column ~ ' not in (select ' ~ existing_column ~ ' from ' ~ existing
        ~ "))), cast('infinity' as timestamp))::varchar"
    ).rows[0][0] -%}
    {{ return('cast(' ~ sql_string_literal(through) ~ ' as timestamp)') }}
{%- endmacro %}

{#- What int_customer_rfm_snapshots' rows depend on besides the lines: the vars of the RFM and
    the segment rules seed (its checksum). Written in the model's `settings` column; a build
    keeps earlier snapshots only when it is unchanged (materialization table_in_date_groups,
    reuse_before). -#}
{% macro rfm_snapshot_settings() -%}
    {%- set seed = (graph.get('nodes') or {}).get('seed.' ~ project_name ~ '.rfm_segment_rules') -%}
    {%- set parts = {
        'rfm_score_buckets': validated_var('rfm_score_buckets'),
        'as_of_date': validated_var('as_of_date'),
        'guest_policy': validated_var('guest_policy'),
        'rfm_segment_rules': seed.checksum.checksum if seed else none,
    } -%}
    {{ return(tojson(json_safe(parts), sort_keys=true)) }}
{%- endmacro %}
