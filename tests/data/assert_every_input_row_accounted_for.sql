-- Nothing lost, nothing counted twice, nothing malformed: per input file, the rows read
-- equal the lines summed in int_order_line_groups (what every aggregate mart reads, the
-- accepted lines of fct_order_lines) plus the quarantined rows; the row numbers placed there
-- are exactly 1..n (their count, sum and sum of squares are those of 1..n, where n is the
-- number of rows read, and the reader numbered them 1..n); and every group has its keys, a
-- customer unless it is a guest group, and a line type matching its invoice and the sign of
-- its items. The lines themselves are read once, by the groups model, not again here; the
-- rules that make each line well-formed have their own unit tests.
with

raw_rows as (

    select * from {{ ref('stg_raw_invoice_lines') }}

),

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

quarantined as (

    select * from {{ ref('quarantined_transactions') }}

),

read_per_file as (

    select
        source_file,
        count(*) as rows_read,
        min(source_row) as first_row,
        max(source_row) as last_row
    from raw_rows
    group by source_file

),

placed_rows as (

    select
        source_file,
        lines as rows_kept,
        0 as rows_quarantined,
        source_row_sum as row_sum,
        source_row_square_sum as row_square_sum,
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
        cast(source_row as hugeint) as row_sum,
        cast(source_row as hugeint) * source_row as row_square_sum,
        false as is_malformed
    from quarantined

),

placed_per_file as (

    select
        source_file,
        sum(rows_kept) as rows_kept,
        sum(rows_quarantined) as rows_quarantined,
        count(*) filter (where is_malformed) as malformed_groups,
        sum(row_sum) as row_sum,
        sum(row_square_sum) as row_square_sum
    from placed_rows
    group by source_file

),

compared as (

    select
        coalesce(read_per_file.source_file, placed_per_file.source_file) as source_file,
        coalesce(read_per_file.rows_read, 0) as rows_read,
        read_per_file.first_row,
        read_per_file.last_row,
        coalesce(placed_per_file.rows_kept, 0) as rows_kept,
        coalesce(placed_per_file.rows_quarantined, 0) as rows_quarantined,
        coalesce(placed_per_file.malformed_groups, 0) as malformed_groups,
        placed_per_file.row_sum,
        placed_per_file.row_square_sum
    from read_per_file
    full outer join placed_per_file
        on read_per_file.source_file = placed_per_file.source_file

)

select * from compared
where
    rows_read != rows_kept + rows_quarantined
    or malformed_groups > 0
    or first_row != 1
    or last_row != rows_read
    or row_sum != cast(rows_read as hugeint) * (rows_read + 1) / 2
    or row_square_sum
    != cast(rows_read as hugeint) * (rows_read + 1) * (2 * rows_read + 1) / 6
