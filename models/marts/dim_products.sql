-- One row per product (stock code) with at least one accepted sale line: its canonical
-- description and what it sold. Built from small aggregates so that it scales to 100M lines:
-- one scan of the lines grouped by product, line type, price and text (a few rows per
-- product), the order-product and customer-product tables for orders and customers, and
-- the median price from the price counts (exact, without holding every price in memory).
with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

order_products as (

    select * from {{ ref('int_order_products') }}

),

customer_products as (

    select * from {{ ref('int_customer_products') }}

),

line_facts as materialized (

    select
        stock_code,
        line_type,
        unit_price,
        description,
        count(*) as lines,
        sum(quantity) as quantity,
        sum(line_amount) as amount,
        min(invoiced_at) as first_at,
        max(invoiced_at) as last_at
    from order_lines
    group by stock_code, line_type, unit_price, description

),

product_lines as (

    select
        stock_code,
        min(first_at) filter (where line_type = 'sale') as first_sold_at,
        max(last_at) filter (where line_type = 'sale') as last_sold_at,
        sum(quantity) filter (where line_type = 'sale') as items_sold,
        coalesce(-sum(quantity) filter (where line_type = 'return'), 0) as items_returned,
        sum(amount) filter (where line_type = 'sale') as revenue
    from line_facts
    group by stock_code
    having count(*) filter (where line_type = 'sale') > 0

),

price_positions as (

    -- the sale lines' prices in order, with how many lines are at or below each
    select
        stock_code,
        unit_price,
        sum(sum(lines)) over (
            partition by stock_code order by unit_price rows unbounded preceding
        ) as lines_up_to,
        sum(sum(lines)) over (partition by stock_code) as sale_lines
    from line_facts
    where line_type = 'sale'
    group by stock_code, unit_price

),

median_prices as (

    -- the middle price (odd count) or the mean of the two middle ones (even), exactly
    select
        stock_code,
        (
            min(unit_price) filter (where lines_up_to >= (sale_lines + 1) // 2)
            + min(unit_price) filter (where lines_up_to >= sale_lines // 2 + 1)
        ) * 0.5 as median_unit_price
    from price_positions
    group by stock_code

),

description_uses as (

    -- how often each non-empty description was used on a sale line; the most frequent
    -- first, a tie to the alphabetically first
    select
        stock_code,
        description,
        row_number() over (
            partition by stock_code order by sum(lines) desc, description asc
        ) as description_rank,
        count(*) over (partition by stock_code) as descriptions_seen
    from line_facts
    where
        line_type = 'sale'
        and trim(description) <> ''
    group by stock_code, description

),

product_orders as (

    select
        stock_code,
        count(*) as orders
    from order_products
    group by stock_code

),

product_customers as (

    select
        stock_code,
        count(*) filter (where not is_guest) as customers
    from customer_products
    group by stock_code

),

final as (

    select
        -- ids
        cast(product_lines.stock_code as varchar) as stock_code,
        -- attributes
        cast(description_uses.description as varchar) as description,
        cast(coalesce(description_uses.descriptions_seen, 0) as bigint) as descriptions_seen,
        -- timestamps
        cast(product_lines.first_sold_at as timestamp) as first_sold_at,
        cast(product_lines.last_sold_at as timestamp) as last_sold_at,
        -- prices
        cast(median_prices.median_unit_price as decimal(18, 5)) as median_unit_price,
        -- counts
        cast(coalesce(product_customers.customers, 0) as bigint) as customers,
        cast(product_orders.orders as bigint) as orders,
        cast(product_lines.items_sold as bigint) as items_sold,
        -- amounts
        cast(product_lines.revenue as decimal(38, 4)) as revenue,
        -- rates
        cast(product_lines.items_returned as double) / product_lines.items_sold as return_rate
    from product_lines
    inner join median_prices
        on product_lines.stock_code = median_prices.stock_code
    inner join product_orders
        on product_lines.stock_code = product_orders.stock_code
    left join description_uses
        on
            product_lines.stock_code = description_uses.stock_code
            and description_uses.description_rank = 1
    left join product_customers
        on product_lines.stock_code = product_customers.stock_code

)

select * from final
