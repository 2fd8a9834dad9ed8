-- Nothing lost, nothing counted twice: per input file, the rows read equal the order lines
-- plus the quarantined rows, and the row numbers found there are exactly 1..n (their count,
-- sum and sum of squares are those of 1..n, where n is the number of rows read, and the
-- reader numbered them 1..n). One scan of each relation, however large the input.
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
        true as is_kept
    from order_lines
    union all
    select
        source_file,
        source_row,
        false as is_kept
    from quarantined

),

placed_per_file as (

    select
        source_file,
        count(*) filter (where is_kept) as rows_kept,
        count(*) filter (where not is_kept) as rows_quarantined,
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
        placed_per_file.row_sum,
        placed_per_file.row_square_sum
    from read_per_file
    full outer join placed_per_file
        on read_per_file.source_file = placed_per_file.source_file

)

select * from compared
where
    rows_read != rows_kept + rows_quarantined
    or first_row != 1
    or last_row != rows_read
    or row_sum != cast(rows_read as hugeint) * (rows_read + 1) / 2
    or row_square_sum
    != cast(rows_read as hugeint) * (rows_read + 1) * (2 * rows_read + 1) / 6
