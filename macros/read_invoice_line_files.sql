{#- One select per input file, unioned: the rows of `stg_raw_invoice_lines`, read where the
    files lie. `input_files` (model stg_input_files) says how to read each file; every value
    from it is quoted as a literal or identifier. Before stg_input_files exists (parse, or a
    compile or lint before the first build) the view is an empty relation of the same
    columns. -#}
{% macro read_invoice_line_files(input_files, excel_lines) %}
    {%- set raw_columns = [
        'invoice_no', 'stock_code', 'description', 'quantity',
        'invoice_date', 'unit_price', 'customer_id', 'country'
    ] %}
    {%- set selects = [] %}
    {%- set manifest = adapter.get_relation(
        database=input_files.database, schema=input_files.schema, identifier=input_files.identifier
    ) if execute else none %}
    {%- if manifest is not none %}
        {%- set files = run_query(
            'select * from ' ~ input_files ~ ' order by file_index'
        ) %}
        {#- Excel rows are read in Python (stg_excel_invoice_lines), added below -#}
        {%- for f in files.rows if f['file_format'] != 'xlsx' %}
            {%- set columns = [] %}
            {%- for name in raw_columns %}
                {%- do columns.append(
                    'cast(' ~ sql_identifier(f[name ~ '_column']) ~ ' as varchar) as ' ~ name
                ) %}
            {%- endfor %}
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
                {%- set reader = 'read_csv(\n    ' ~ sql_string_literal(f['path'])
                    ~ ', header = true, auto_detect = false, columns = {'
                    ~ csv_columns | join(', ') ~ '}, delim = '
                    ~ sql_string_literal(f['delimiter'])
                    ~ ", quote = '\"', escape = '\"', encoding = "
                    ~ sql_string_literal(f['encoding'])
                    ~ ', null_padding = true, strict_mode = false)' %}
            {%- else %}  {#- parquet #}
                {%- set row_number = 'file_row_number + 1' %}
                {%- set extra_fields = 'false' %}
                {%- set reader = 'read_parquet(' ~ sql_string_literal(f['path'])
                    ~ ', file_row_number = true)' %}
            {%- endif %}
            {%- do selects.append(
                'select\n    ' ~ sql_string_literal(f['source_file']) ~ ' as source_file,\n    '
                ~ row_number ~ ' as source_row,\n    '
                ~ columns | join(',\n    ') ~ ',\n    '
                ~ extra_fields ~ ' as has_extra_fields\n'
                ~ 'from ' ~ reader
            ) %}
        {%- endfor %}
        {%- if 'xlsx' in files.columns['file_format'].values() %}
            {%- do selects.append('select * from ' ~ excel_lines) %}
        {%- endif %}
    {%- endif %}
    {%- if not selects %}
        {%- do selects.append(
            'select * from ' ~ excel_lines ~ ' where false'
        ) %}
    {%- endif %}
    {{ selects | join('\nunion all\n') }}
{% endmacro %}
