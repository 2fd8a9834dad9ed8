{#- The groups of consecutive dates of `dates_relation` for the materialization
    table_in_date_groups: a list of [first date, last date], in date order. A group takes
    dates while the rows they write (`rows_column`) times `bytes_per_row` fit in a quarter
    of DuckDB's memory_limit (the rest is for the other model dbt runs beside it and for
    what cannot spill); every group has at least one date. A null date (no line at all)
    makes no group. -#}
{% macro date_groups(dates_relation, date_column, rows_column, bytes_per_row) -%}
    {%- set limit_bytes = duckdb_memory_limit_bytes() -%}
    {%- set max_rows = [(limit_bytes // 4) // bytes_per_row, 1] | max -%}
    {%- set found = run_query(
        'select cast(' ~ date_column ~ ' as varchar), ' ~ rows_column ~ ' from '
        ~ dates_relation ~ ' where ' ~ date_column ~ ' is not null order by 1'
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
