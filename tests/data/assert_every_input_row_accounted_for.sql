-- Nothing lost: per input file, the rows read equal the order lines plus the quarantined
-- rows, and the row numbers run 1..n without gaps (so the reader skipped no row).
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
        count(distinct source_row) as distinct_rows,
        max(source_row) as last_row
    from raw_rows
    group by source_file

),

kept_per_file as (

    select
        source_file,
        count(*) as rows_kept
    from order_lines
    group by source_file

),

quarantined_per_file as (

    select
        source_file,
        count(*) as rows_quarantined
    from quarantined
    group by source_file

),

compared as (

    select
        read_per_file.source_file,
        read_per_file.rows_read,
        read_per_file.distinct_rows,
        read_per_file.last_row,
        coalesce(kept_per_file.rows_kept, 0) as rows_kept,
        coalesce(quarantined_per_file.rows_quarantined, 0) as rows_quarantined
    from read_per_file
    left join kept_per_file
        on read_per_file.source_file = kept_per_file.source_file
    left join quarantined_per_file
        on read_per_file.source_file = quarantined_per_file.source_file

)

select * from compared
where
    rows_read != rows_kept + rows_quarantined
    or distinct_rows != rows_read
    or last_row != rows_read
