-- One row per snapshot date and customer with a sale line before it: every customer_rfm
-- column as of that date (macro customer_rfm_at; scores within each snapshot). The dates are
-- int_rfm_snapshot_dates'. The table is built in groups of consecutive dates (materialization
-- table_in_date_groups): each group is this select with snapshot_dates cut to the group, so
-- its memory grows with the group's customer-dates, not with all of them. The first date of
-- a group collects every line before it, so a group's rows are the same as in one select.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

customer_products as (

    select * from {{ ref('int_customer_products') }}

),

segment_rules as (

    select * from {{ ref('rfm_segment_rules') }}

),

all_snapshot_dates as (

    select * from {{ ref('int_rfm_snapshot_dates') }}

),

input_files as (

    select * from {{ ref('int_invoice_line_files') }}

),

snapshot_dates as (

    -- the dates of the group being built (all of them outside the materialization)
    select as_of_date
    from all_snapshot_dates
    where {{ in_date_group('as_of_date') }}

),

snapshot_rfm as (

    {{ customer_rfm_at('snapshot_dates', 'line_groups', 'customer_products', 'segment_rules') }}

),

final as (

    select
        as_of_date as snapshot_date,
        * exclude (as_of_date),
        -- what a refresh compares (materialization table_in_date_groups, reuse_before): the
        -- latest input file write taken, and the vars and rules the rows were made with
        (select max(input_files.lines_written_at) from input_files) as written_through,
        {{ sql_string_literal(rfm_snapshot_settings()) }} as settings
    from snapshot_rfm

)

select * from final
