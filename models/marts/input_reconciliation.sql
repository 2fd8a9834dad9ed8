-- One row per input file (per sheet for Excel): the data rows it holds, counted without
-- DuckDB's reader, against the rows placed in fct_order_lines (as summed in
-- int_order_line_groups), in quarantined_transactions and, for the customers on the forget
-- list, among the rows int_invoice_lines keeps without content. Exact integer arithmetic
-- throughout: the row-number checksums are hugeint and `//` divides exactly.
with

input_files as (

    select * from {{ ref('stg_input_files') }}

),

excel_lines as (

    select * from {{ ref('stg_excel_invoice_lines') }}

),

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

quarantined as (

    select * from {{ ref('quarantined_transactions') }}

),

forgotten as (

    -- the rows of customers on the forget list: a file and row number, nothing else
    select
        source_file,
        count(*) as rows_forgotten,
        min(source_row) as first_source_row,
        max(source_row) as last_source_row,
        sum(cast(source_row as hugeint)) as source_row_sum,
        sum(cast(source_row as hugeint) * source_row) as source_row_square_sum
    from {{ ref('int_invoice_lines') }}
    where reject_reason = 'customer_forgotten'
    group by source_file

),

excel_sheets as (

    -- each sheet with data rows, as the Python reader numbered them
    select
        input_files.source_file as workbook,
        excel_lines.source_file,
        count(*) as rows_in_file
    from input_files
    inner join excel_lines
        on starts_with(excel_lines.source_file, input_files.source_file || '[')
    where input_files.file_format = 'xlsx'
    group by input_files.source_file, excel_lines.source_file

),

expected as (

    -- CSV and Parquet files, a header-only one too, with the rows counted in stg_input_files
    select
        source_file,
        file_format,
        data_rows as rows_in_file,
        size_bytes,
        sha256
    from input_files
    where file_format != 'xlsx'
    union all
    -- Excel: each sheet; a workbook without a data row in any sheet is named with 0 rows
    select
        coalesce(excel_sheets.source_file, input_files.source_file) as source_file,
        input_files.file_format,
        coalesce(excel_sheets.rows_in_file, 0) as rows_in_file,
        input_files.size_bytes,
        input_files.sha256
    from input_files
    left join excel_sheets
        on input_files.source_file = excel_sheets.workbook
    where input_files.file_format = 'xlsx'

),

placed as (

    select
        source_file,
        lines as rows_kept,
        0 as rows_quarantined,
        0 as rows_forgotten,
        first_source_row,
        last_source_row,
        source_row_sum,
        source_row_square_sum,
        -- a group must have its keys, a customer unless it is a guest group, and a line
        -- type matching its invoice and the sign of its items
        coalesce(
            invoice_no is null
            or invoiced_at is null
            or country is null
            or is_guest is null
            or (not is_guest and customer_id is null)
            or lines is null
            or lines < 1
            or items is null
            or amount is null
            or line_type not in ('sale', 'return')
            or (line_type = 'sale') != (items > 0)
            or (line_type = 'return')
            != (starts_with(invoice_no, 'C') or starts_with(invoice_no, 'c')),
            true
        ) as is_malformed
    from line_groups
    union all
    select
        source_file,
        0 as rows_kept,
        1 as rows_quarantined,
        0 as rows_forgotten,
        source_row as first_source_row,
        source_row as last_source_row,
        cast(source_row as hugeint) as source_row_sum,
        cast(source_row as hugeint) * source_row as source_row_square_sum,
        false as is_malformed
    from quarantined
    union all
    select
        source_file,
        0 as rows_kept,
        0 as rows_quarantined,
        rows_forgotten,
        first_source_row,
        last_source_row,
        source_row_sum,
        source_row_square_sum,
        false as is_malformed
    from forgotten

),

placed_per_file as (

    select
        source_file,
        sum(rows_kept) as rows_kept,
        sum(rows_quarantined) as rows_quarantined,
        sum(rows_forgotten) as rows_forgotten,
        count(*) filter (where is_malformed) as malformed_groups,
        min(first_source_row) as first_source_row,
        max(last_source_row) as last_source_row,
        sum(source_row_sum) as source_row_sum,
        sum(source_row_square_sum) as source_row_square_sum
    from placed
    group by source_file

),

compared as (

    select
        coalesce(expected.source_file, placed_per_file.source_file) as source_file,
        expected.file_format,
        expected.rows_in_file,
        coalesce(placed_per_file.rows_kept, 0) as rows_kept,
        coalesce(placed_per_file.rows_quarantined, 0) as rows_quarantined,
        coalesce(placed_per_file.rows_forgotten, 0) as rows_forgotten,
        coalesce(placed_per_file.malformed_groups, 0) as malformed_groups,
        placed_per_file.first_source_row,
        placed_per_file.last_source_row,
        placed_per_file.source_row_sum,
        placed_per_file.source_row_square_sum,
        cast(expected.rows_in_file as hugeint) as n,
        expected.size_bytes,
        expected.sha256
    from expected
    full outer join placed_per_file
        on expected.source_file = placed_per_file.source_file

),

final as (

    select
        -- file
        cast(source_file as varchar) as source_file,
        cast(file_format as varchar) as file_format,
        cast(size_bytes as bigint) as size_bytes,
        cast(sha256 as varchar) as sha256,
        -- rows
        cast(rows_in_file as bigint) as rows_in_file,
        cast(rows_kept as bigint) as rows_kept,
        cast(rows_quarantined as bigint) as rows_quarantined,
        cast(rows_forgotten as bigint) as rows_forgotten,
        cast(coalesce(rows_in_file, 0) - rows_kept - rows_quarantined - rows_forgotten as bigint)
            as rows_unaccounted,
        cast(malformed_groups as bigint) as malformed_groups,
        -- verdict: the rows placed are exactly 1..n, each once (count, first, last, sum and
        -- sum of squares of the row numbers are those of 1..n), in well-formed groups
        coalesce(
            rows_in_file is not null
            and rows_kept + rows_quarantined + rows_forgotten = n
            and malformed_groups = 0
            and (
                n = 0
                or (
                    first_source_row = 1
                    and last_source_row = n
                    and source_row_sum = n * (n + 1) // 2
                    and source_row_square_sum = n * (n + 1) * (2 * n + 1) // 6
                )
            ),
            false
        ) as is_reconciled
    from compared

)

select * from final
