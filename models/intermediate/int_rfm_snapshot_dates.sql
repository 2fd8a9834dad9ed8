-- One row per snapshot date of int_customer_rfm_snapshots: the first day of each month after
-- the first full month of data, before the reference date, and the reference date itself
-- (customer_rfm's as_of_date), with the number of customers who bought before it: the rows
-- that snapshot will hold. int_customer_rfm_snapshots is built in groups of these dates.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

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

month_start_snapshots as (

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

    -- none without a line: the default reference date is then null
    select as_of_date from month_start_snapshots
    union
    select as_of_date from reference_date
    where as_of_date is not null

),

first_purchases as (

    -- each customer's first sale line
    select
        customer_id,
        min(invoiced_at) as first_purchase_at
    from line_groups
    where line_type = 'sale' and customer_id is not null
    group by customer_id

),

final as (

    select
        snapshot_dates.as_of_date,
        count(first_purchases.customer_id) as customers
    from snapshot_dates
    left join first_purchases
        on snapshot_dates.as_of_date > first_purchases.first_purchase_at
    group by snapshot_dates.as_of_date

)

select * from final
