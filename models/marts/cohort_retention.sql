-- One row per cohort (month of first sale) and month since it: how many of the cohort's
-- customers buy again, and what they spend.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

customer_months as (

    -- identified customers' sale revenue per month
    select
        customer_id,
        cast({{ dbt.date_trunc('month', 'invoiced_at') }} as date) as month,
        sum(amount) as revenue
    from line_groups
    where
        line_type = 'sale'
        and not is_guest
    group by customer_id, month

),

customer_cohorts as (

    select
        customer_id,
        month,
        revenue,
        min(month) over (partition by customer_id) as cohort_month
    from customer_months

),

cohort_activity as (

    select
        cohort_month,
        month,
        count(*) as active_customers,
        sum(revenue) as revenue
    from customer_cohorts
    group by cohort_month, month

),

cohort_sizes as (

    -- everyone is active in the cohort's own month
    select
        cohort_month,
        active_customers as cohort_size
    from cohort_activity
    where month = cohort_month

),

last_data_month as (

    select max(month) as last_month
    from customer_months

),

cohort_grid as (

    -- every month from the cohort's own to the last month with identified sales
    -- (generate_series: DuckDB; dbt has no cross-database spine whose bounds come from data)
    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_size,
        cast(
            unnest(
                generate_series(
                    cohort_sizes.cohort_month, last_data_month.last_month, interval 1 month
                )
            ) as date
        ) as month
    from cohort_sizes
    cross join last_data_month

),

cohort_months as (

    select
        cohort_grid.cohort_month,
        cohort_grid.month,
        {{ dbt.datediff('cohort_grid.cohort_month', 'cohort_grid.month', 'month') }}
            as months_since,
        cohort_grid.cohort_size,
        coalesce(cohort_activity.active_customers, 0) as active_customers,
        coalesce(cohort_activity.revenue, 0) as revenue
    from cohort_grid
    left join cohort_activity
        on
            cohort_grid.cohort_month = cohort_activity.cohort_month
            and cohort_grid.month = cohort_activity.month

),

cumulated as (

    select
        *,
        sum(revenue) over (
            partition by cohort_month
            order by month
            rows between unbounded preceding and current row
        ) as cumulative_revenue
    from cohort_months

),

final as (

    select
        -- keys
        cast(cohort_month as date) as cohort_month,
        cast(months_since as {{ dbt.type_int() }}) as months_since,
        cast(month as date) as activity_month,
        -- customers
        cast(cohort_size as {{ dbt.type_bigint() }}) as cohort_size,
        cast(active_customers as {{ dbt.type_bigint() }}) as active_customers,
        cast(active_customers as double) / cohort_size as retention_rate,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        cast(cumulative_revenue as decimal(38, 4)) as cumulative_revenue,
        cast(cumulative_revenue / cohort_size as decimal(38, 4))
            as cumulative_revenue_per_customer
    from cumulated

)

select * from final
