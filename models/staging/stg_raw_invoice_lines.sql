-- Every data row of every input file, as text, with its file and row number: a view that
-- reads the CSV and Parquet files where they lie (macros/read_invoice_line_files.sql).
{{ read_invoice_line_files(ref('stg_input_files'), ref('stg_excel_invoice_lines')) }}
