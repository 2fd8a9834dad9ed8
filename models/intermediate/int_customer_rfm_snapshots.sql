-- One row per snapshot date and customer with a sale line before it: every customer_rfm
-- column as of that date (macro customer_rfm_at; scores within each snapshot). Snapshots: the
-- first day of each month after the first full month of data, before the reference date,
-- and the reference date itself (customer_rfm's as_of_date).
-- It runs after int_order_products (the line below), for memory only: at 100M lines the two
-- side by side failed with DuckDB out of memory at the profile's 2 GB limit (the reason and
-- the order of the big aggregations: int_order_products.sql, docs/performance.md).
-- depends_on: {{ ref('int_order_products') }}
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

reference_date as (

    {{ rfm_reference_date('line_groups') }}

),

first_full_month as (

    -- the first month that starts on or after the date of the first line
    select
        case
            when
                cast(min(invoiced_at) as date)
                = cast({{ dbt.date_trunc('month', 'min(invoiced_at)') }} as date)
                then cast(min(invoiced_at) as date)
            else cast({{ dbt.dateadd(
                'month', 1, dbt.date_trunc('month', 'min(invoiced_at)')
            ) }} as date)
        end as month_start
    from line_groups

),

month_end_snapshots as (

    -- the first day of every month after the first full month, before the reference date
    select
        cast(
            unnest(
                generate_series(
                    cast({{ dbt.dateadd('month', 1, 'first_full_month.month_start') }} as date),
                    cast({{ dbt.dateadd('day', -1, 'reference_date.as_of_date') }} as date),
                    interval 1 month
                )
            ) as date
        ) as as_of_date
    from first_full_month
    cross join reference_date

),

snapshot_dates as (

    select as_of_date from month_end_snapshots
    union
    select as_of_date from reference_date

),

snapshot_rfm as (

    {{ customer_rfm_at('snapshot_dates', 'line_groups', 'customer_products', 'segment_rules') }}

),

final as (

    select
        as_of_date as snapshot_date,
        * exclude (as_of_date)
    from snapshot_rfm

)

select * from final
