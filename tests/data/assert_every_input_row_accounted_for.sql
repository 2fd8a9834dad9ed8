-- Nothing lost, nothing counted twice, nothing malformed: per input file, the rows read
-- equal the order lines plus the quarantined rows; the row numbers found there are exactly
-- 1..n (their count, sum and sum of squares are those of 1..n, where n is the number of rows
-- read, and the reader numbered them 1..n); and every order line has its required values, a
-- line type matching its invoice and the sign of its quantity, and an amount of quantity x
-- unit price. One scan of each relation, however large the input.
with

raw_rows as (

    select * from {{ ref('stg_raw_invoice_lines') }}

),

order_lines as (

    select * from {{ ref('fct_order_lines') }}

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
        source_row,
        true as is_kept,
        coalesce(
            invoice_no is null
            or stock_code is null
            or quantity is null
            or unit_price is null
            or invoiced_at is null
            or country is null
            or line_amount is null
            or is_guest is null
            or (not is_guest and customer_id is null)
            or line_type not in ('sale', 'return')
            or (line_type = 'sale') != (quantity > 0)
            or (line_type = 'return')
            != (starts_with(invoice_no, 'C') or starts_with(invoice_no, 'c'))
            or line_amount != cast(quantity * unit_price as decimal(18, 4)),
            true
        ) as is_malformed
    from order_lines
    union all
    select
        source_file,
        source_row,
        false as is_kept,
        false as is_malformed
    from quarantined

),

placed_per_file as (

    select
        source_file,
        count(*) filter (where is_kept) as rows_kept,
        count(*) filter (where not is_kept) as rows_quarantined,
        count(*) filter (where is_malformed) as malformed_lines,
        sum(cast(source_row as hugeint)) as row_sum,
        sum(cast(source_row as hugeint) * source_row) as row_square_sum
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
        coalesce(placed_per_file.malformed_lines, 0) as malformed_lines,
        placed_per_file.row_sum,
        placed_per_file.row_square_sum
    from read_per_file
    full outer join placed_per_file
        on read_per_file.source_file = placed_per_file.source_file

)

select * from compared
where
    rows_read != rows_kept + rows_quarantined
    or malformed_lines > 0
    or first_row != 1
    or last_row != rows_read
    or row_sum != cast(rows_read as hugeint) * (rows_read + 1) / 2
    or row_square_sum
    != cast(rows_read as hugeint) * (rows_read + 1) * (2 * rows_read + 1) / 6
