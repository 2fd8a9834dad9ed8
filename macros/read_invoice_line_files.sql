{#- One select per input file, unioned: the rows of `stg_raw_invoice_lines`, read where the
    files lie (a Windows-1252 CSV from its UTF-8 copy: DuckDB reads UTF-8 and ISO-8859-1).
    `input_files` (model stg_input_files) says how to read each file; every value from it is
    quoted as a literal or identifier, and the path DuckDB reads has its glob characters
    escaped (`[` `*` `?` each as a one-character class), so a file named `export 201[1].csv`
    is read, not `export 2011.csv`; each row says in `read_path` the file DuckDB read, which
    int_invoice_lines checks. Each select names its file with a constant, so a query that
    filters on source_file reads only the files it names (DuckDB drops the other selects).
    Before stg_input_files exists (parse, or a compile or lint before the first build) the
    view is an empty relation of the same columns. -#}
{% macro read_invoice_line_files(input_files, excel_lines) %}
    {%- set raw_columns = [
        'invoice_no', 'stock_code', 'description', 'quantity',
        'invoice_date', 'unit_price', 'customer_id', 'country'
    ] %}
    {%- set selects = [] %}
    {%- set excel_columns = 'source_file, source_row, ' ~ raw_columns | join(', ')
        ~ ', has_extra_fields, cast(null as varchar) as read_path, false as is_unparseable'
        ~ ', is_forgotten' %}
    {%- set manifest = adapter.get_relation(
        database=input_files.database, schema=input_files.schema, identifier=input_files.identifier
    ) if execute else none %}
    {%- if manifest is not none %}
        {%- set files = run_query(
            'select *, len(unparseable_rows) as unparseable_count from ' ~ input_files
            ~ ' order by file_index'
        ) %}
        {#- Excel rows are read in Python (stg_excel_invoice_lines), added below; a file
            with no data row (a header only) has no read_path -#}
        {%- for f in files.rows if f['read_path'] is not none %}
            {%- set columns = [] %}
            {%- for name in raw_columns %}
                {%- do columns.append(
                    'cast(' ~ sql_identifier(f[name ~ '_column']) ~ ' as varchar) as ' ~ name
                ) %}
            {%- endfor %}
            {%- set read_path = f['read_path'] | replace('[', '[[]')
                | replace('*', '[*]') | replace('?', '[?]') %}
            {#- per format: how rows are numbered, how extra fields show, and the reader -#}
            {%- if f['file_format'] == 'csv' %}
                {#- header fields c0..cN, all text, and one more that catches extra fields -#}
                {%- set csv_columns = [] %}
                {%- for i in range(f['field_count'] | int) %}
                    {%- do csv_columns.append("'c" ~ i ~ "': 'VARCHAR'") %}
                {%- endfor %}
                {%- do csv_columns.append("'extra_fields': 'VARCHAR'") %}
                {%- set row_number = 'row_number() over ()' %}
                {%- set extra_fields = 'extra_fields is not null' %}
                {#- single-threaded per query: DuckDB 2.0's parallel CSV reader refuses quoted
                    line ends, and fails now and then ("does not support a full read on this
                    file") when two queries of the build read the same file at once -#}
                {%- set reader = 'read_csv(\n    ' ~ sql_string_literal(read_path)
                    ~ ', header = true, auto_detect = false, columns = {'
                    ~ csv_columns | join(', ') ~ '}, delim = '
                    ~ sql_string_literal(f['delimiter'])
                    ~ ", quote = '\"', escape = '\"', encoding = "
                    ~ sql_string_literal('latin-1' if f['encoding'] == 'latin-1' else 'utf-8')
                    ~ ", null_padding = true, strict_mode = false, parallel = false"
                    ~ ", filename = '__read_from')" %}
            {%- else %}  {#- parquet #}
                {%- set row_number = 'file_row_number + 1' %}
                {%- set extra_fields = 'false' %}
                {%- set reader = 'read_parquet(' ~ sql_string_literal(read_path)
                    ~ ", file_row_number = true, filename = '__read_from')" %}
            {%- endif %}
            {#- rows csv_scan found unparseable (listed in stg_input_files) -#}
            {%- set unparseable = (
                'source_row in (select unnest(unparseable_rows) from ' ~ input_files
                ~ ' where file_index = ' ~ (f['file_index'] | int) ~ ')'
            ) if f['unparseable_count'] else 'false' %}
            {%- do selects.append(
                'select\n    *,\n    ' ~ unparseable ~ ' as is_unparseable,\n    '
                ~ 'false as is_forgotten\nfrom (\nselect\n    '
                ~ sql_string_literal(f['source_file']) ~ ' as source_file,\n    '
                ~ row_number ~ ' as source_row,\n    '
                ~ columns | join(',\n    ') ~ ',\n    '
                ~ extra_fields ~ ' as has_extra_fields,\n    '
                ~ '__read_from as read_path\n'
                ~ 'from ' ~ reader ~ '\n)'
            ) %}
        {%- endfor %}
        {%- if 'xlsx' in files.columns['file_format'].values() %}
            {%- do selects.append('select ' ~ excel_columns ~ ' from ' ~ excel_lines) %}
        {%- endif %}
    {%- endif %}
    {%- if not selects %}
        {%- do selects.append('select ' ~ excel_columns ~ ' from ' ~ excel_lines ~ ' where false') %}
    {%- endif %}
    {{ selects | join('\nunion all\n') }}
{% endmacro %}
