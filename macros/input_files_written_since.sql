{#- The input files whose rows int_invoice_lines wrote since an incremental model after it last
    wrote (docs/refresh.md), as a list of names, from `files` (ref('int_invoice_line_files')).
    none when the model is built in full (not is_incremental(), or guest_policy per_invoice:
    guests are then numbered over all invoices, and a new guest invoice can renumber them all).

    `held`: how the model knows what it took: `'per_file'` when its rows carry input_file and
    lines_written_at (a file is taken again when its time differs), `'watermark'` when its rows
    carry written_through, the latest lines_written_at it had taken (a file is taken again when
    written after that). -#}
{% macro input_files_written_since(files, held) -%}
    {%- if not execute or not is_incremental() or validated_var('guest_policy') == 'per_invoice' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if held == 'per_file' -%}
        {%- set query = 'select input_file from ' ~ files ~ ' as files where not exists ('
            ~ 'select 1 from ' ~ this ~ ' as held where held.input_file = files.input_file '
            ~ 'and held.lines_written_at = files.lines_written_at) order by 1' -%}
    {%- else -%}
        {%- set query = 'select input_file from ' ~ files ~ ' where lines_written_at > '
            ~ '(select coalesce(max(written_through), cast(\'-infinity\' as timestamp)) from '
            ~ this ~ ') order by 1' -%}
    {%- endif -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}
