-- One row per calendar month from the first to the last month of the accepted lines,
-- months without sales included: revenue, orders, active / new / returning customers.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

lines_by_month as (

    select
        cast({{ dbt.date_trunc('month', 'invoiced_at') }} as date) as month,
        -- guests are not customers here, whatever the guest_policy
        case when not is_guest then customer_id end as identified_customer_id,
        invoice_no,
        line_type,
        items,
        amount,
        invoiced_at
    from line_groups

),

month_totals as (

    select
        month,
        -- timestamps
        min(invoiced_at) as first_line_at,
        max(invoiced_at) as last_line_at,
        -- counts
        count(distinct invoice_no) filter (where line_type = 'sale') as orders,
        sum(items) filter (where line_type = 'sale') as items_sold,
        -- amounts
        coalesce(sum(amount) filter (where line_type = 'sale'), 0) as revenue,
        coalesce(
            sum(amount) filter (
                where line_type = 'sale' and identified_customer_id is not null
            ),
            0
        ) as identified_revenue,
        coalesce(-sum(amount) filter (where line_type = 'return'), 0) as returns_amount
    from lines_by_month
    group by month

),

customer_months as (

    -- identified customers with at least one sale line in the month, once per month
    select distinct
        month,
        identified_customer_id as customer_id
    from lines_by_month
    where
        identified_customer_id is not null
        and line_type = 'sale'

),

customer_first_months as (

    select
        month,
        customer_id,
        min(month) over (partition by customer_id) as first_sale_month
    from customer_months

),

customers_by_month as (

    select
        month,
        count(*) as active_customers,
        count(*) filter (where month = first_sale_month) as new_customers
    from customer_first_months
    group by month

),

data_bounds as (

    select
        min(month) as first_month,
        max(month) as last_month,
        min(first_line_at) as first_line_at,
        max(last_line_at) as last_line_at
    from month_totals

),

month_spine as (

    -- generate_series: DuckDB; dbt has no cross-database spine whose bounds come from data
    select
        cast(
            unnest(generate_series(first_month, last_month, interval 1 month)) as date
        ) as month
    from data_bounds

),

monthly as (

    select
        month_spine.month,
        -- the first and last months are partial when the lines do not reach their edges
        (
            month_spine.month = data_bounds.first_month
            and cast(data_bounds.first_line_at as date) > data_bounds.first_month
        )
        or (
            month_spine.month = data_bounds.last_month
            and cast(data_bounds.last_line_at as date) < cast(
                {{ dbt.last_day('data_bounds.last_month', 'month') }} as date
            )
        ) as is_partial_month,
        coalesce(month_totals.revenue, 0) as revenue,
        coalesce(month_totals.identified_revenue, 0) as identified_revenue,
        coalesce(month_totals.returns_amount, 0) as returns_amount,
        coalesce(month_totals.orders, 0) as orders,
        coalesce(customers_by_month.active_customers, 0) as active_customers,
        coalesce(customers_by_month.new_customers, 0) as new_customers,
        coalesce(month_totals.items_sold, 0) as items_sold
    from month_spine
    cross join data_bounds
    left join month_totals
        on month_spine.month = month_totals.month
    left join customers_by_month
        on month_spine.month = customers_by_month.month

),

with_previous as (

    select
        *,
        lag(revenue) over (order by month) as previous_revenue,
        lag(active_customers) over (order by month) as previous_active_customers
    from monthly

),

final as (

    select
        -- month
        cast(month as date) as month,
        cast(is_partial_month as {{ dbt.type_boolean() }}) as is_partial_month,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        cast(identified_revenue as decimal(38, 4)) as identified_revenue,
        cast(returns_amount as decimal(38, 4)) as returns_amount,
        cast(revenue - returns_amount as decimal(38, 4)) as net_revenue,
        -- counts
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(active_customers as {{ dbt.type_bigint() }}) as active_customers,
        cast(new_customers as {{ dbt.type_bigint() }}) as new_customers,
        cast(active_customers - new_customers as {{ dbt.type_bigint() }}) as returning_customers,
        cast(items_sold as {{ dbt.type_bigint() }}) as items_sold,
        -- ratios (null when the denominator is 0)
        cast(new_customers as double) / nullif(active_customers, 0) as new_customer_ratio,
        cast(revenue / nullif(orders, 0) as decimal(38, 4)) as avg_order_value,
        cast(identified_revenue / nullif(active_customers, 0) as decimal(38, 4))
            as revenue_per_active_customer,
        cast(returns_amount as double) / nullif(cast(revenue as double), 0) as return_rate,
        -- month-over-month growth (null for the first month or after a month at 0)
        cast(revenue - previous_revenue as double)
        / nullif(cast(previous_revenue as double), 0) as revenue_growth,
        cast(active_customers - previous_active_customers as double)
        / nullif(previous_active_customers, 0) as active_customers_growth
    from with_previous

)

select * from final
