{#- What int_invoice_lines must do on this build, decided before it runs (docs/refresh.md).

    Each input file (stg_input_files.source_file: a workbook's sheets go with it) has a
    version: a hash of its SHA-256, of how its dates are read (stg_invoice_date_formats, per
    sheet) and of `invoice_lines_rules()`, everything else that decides its lines' verdicts.
    int_invoice_lines keeps the version its rows were made under. Returns a dict:
    - `versions`: SQL select of (input_file, file_version) for the files of this build;
    - `to_read`: the files whose version it does not hold (new, changed, read under other
      rules), plus those holding a line quarantined as after the date window whose day has
      come since (the window's default end moves with the build day); all files when
      `is_incremental()` is false;
    - `removed`: the files it holds that this build no longer reads. -#}
{% macro invoice_lines_changes() -%}
    {%- set input_files = ref('stg_input_files') -%}
    {%- set date_formats = ref('stg_invoice_date_formats') -%}
    {%- set versions -%}
        select
            input_files.source_file as input_file,
            md5(
                input_files.sha256 || '|' || {{ sql_string_literal(invoice_lines_rules()) }}
                || '|' || coalesce(
                    string_agg(
                        date_formats.source_file || '=' || date_formats.invoice_date_format,
                        ',' order by date_formats.source_file
                    ),
                    ''
                )
            ) as file_version
        from {{ input_files }} as input_files
        left join {{ date_formats }} as date_formats
            on
                date_formats.source_file = input_files.source_file
                or starts_with(date_formats.source_file, input_files.source_file || '[')
        group by input_files.source_file, input_files.sha256
    {%- endset -%}
    {%- set changes = {'versions': versions, 'to_read': none, 'removed': []} -%}
    {%- if execute and is_incremental() -%}
        {%- set window = invoice_date_window() -%}
        {%- set found = run_query(
            'with held as (select input_file, any_value(file_version) as file_version from '
            ~ this ~ ' group by input_file), current_versions as (' ~ versions ~ ') '
            ~ 'select input_file, 0 as kind from current_versions where not exists (select 1 '
            ~ 'from held where held.input_file = current_versions.input_file '
            ~ 'and held.file_version = current_versions.file_version) '
            ~ 'union select input_file, 0 from ' ~ this
            ~ " where reject_reason = 'invoice_date_out_of_range' and invoiced_at >= cast("
            ~ sql_string_literal(window.min) ~ ' as date) and invoiced_at < cast('
            ~ sql_string_literal(window.max) ~ ' as date) + interval 1 day '
            ~ 'union select input_file, 1 from held '
            ~ 'where input_file not in (select input_file from current_versions) '
            ~ 'order by 2, 1'
        ) -%}
        {%- set to_read = [] -%}
        {%- for row in found.rows -%}
            {%- do (changes.removed if row[1] == 1 else to_read).append(row[0]) -%}
        {%- endfor -%}
        {%- do changes.update({'to_read': to_read}) -%}
    {%- endif -%}
    {{- return(changes) -}}
{%- endmacro %}


{#- Everything besides a file's bytes and its date order that decides the verdicts of its lines:
    the cleaning vars, the forget list, and the version of the rules below (bump it when the
    parse or a rule changes, so that a refresh reads every file again). As text; its hash is
    part of each file's version. -#}
{% macro invoice_lines_rules() -%}
    {%- set rules_version = 1 -%}
    {%- set parts = {'rules_version': rules_version} -%}
    {%- for name in [
        'exclude_stock_codes', 'excluded_countries', 'min_unit_price', 'round_unit_prices',
        'min_invoice_date', 'max_invoice_date', 'drop_exact_duplicates'
    ] -%}
        {%- do parts.update({name: validated_var(name)}) -%}
    {%- endfor -%}
    {#- the forget list's digest, not its ids (macros/forget_list.sql); none without a list -#}
    {%- set forgotten = forget_list() -%}
    {%- if forgotten.path is not none -%}
        {%- do parts.update({'forget_list': forgotten.digest}) -%}
    {%- endif -%}
    {{- return(tojson(json_safe(parts), sort_keys=true)) -}}
{%- endmacro %}
