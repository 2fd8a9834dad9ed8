-- One row per country of the accepted lines: revenue, customers, orders, order value.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

by_country as (

    select
        country,
        -- amounts
        coalesce(sum(amount) filter (where line_type = 'sale'), 0) as revenue,
        coalesce(-sum(amount) filter (where line_type = 'return'), 0) as returns_amount,
        -- counts
        count(distinct invoice_no) filter (where line_type = 'sale') as orders,
        count(distinct customer_id) filter (
            where line_type = 'sale' and not is_guest
        ) as customers,
        coalesce(sum(items) filter (where line_type = 'sale'), 0) as items_sold
    from line_groups
    group by country

),

final as (

    select
        -- keys
        cast(country as {{ dbt.type_string() }}) as country,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        cast(revenue as double) / nullif(cast(sum(revenue) over () as double), 0)
            as revenue_share,
        cast(returns_amount as decimal(38, 4)) as returns_amount,
        cast(revenue - returns_amount as decimal(38, 4)) as net_revenue,
        -- counts
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(items_sold as {{ dbt.type_bigint() }}) as items_sold,
        -- ratios
        cast(revenue / nullif(orders, 0) as decimal(38, 4)) as avg_order_value
    from by_country

)

select * from final
