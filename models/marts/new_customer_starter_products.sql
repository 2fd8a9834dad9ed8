-- What new customers buy first: the products of customers' first orders, the top
-- `top_products_n` by first orders, and how many of those starters came back within 90 days.
{%- set top_n = validated_var('top_products_n') %}

with

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

order_products as (

    select * from {{ ref('int_order_products') }}

),

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

reference_date as (

    select min(as_of_date) as as_of_date from customer_rfm

),

customer_orders as (

    -- the sale invoices of the customers of customer_rfm before the reference date
    select distinct
        line_groups.customer_id,
        line_groups.invoice_no,
        line_groups.invoiced_at
    from line_groups
    inner join reference_date
        on line_groups.invoiced_at < reference_date.as_of_date
    inner join customer_rfm
        on line_groups.customer_id = customer_rfm.customer_id
    where line_groups.line_type = 'sale'

),

numbered_orders as (

    select
        *,
        row_number() over (
            partition by customer_id order by invoiced_at asc, invoice_no asc
        ) as order_number
    from customer_orders

),

first_orders as (

    select
        customer_id,
        invoice_no,
        invoiced_at
    from numbered_orders
    where order_number = 1

),

next_orders as (

    -- each customer's first order on a later timestamp than the first order's
    select
        numbered_orders.customer_id,
        min(numbered_orders.invoiced_at) as next_order_at
    from numbered_orders
    inner join first_orders
        on
            numbered_orders.customer_id = first_orders.customer_id
            and numbered_orders.invoiced_at > first_orders.invoiced_at
    group by numbered_orders.customer_id

),

starters as (

    -- whether the first order is 90 days old, and whether a later order came within 90
    select
        first_orders.customer_id,
        first_orders.invoice_no,
        first_orders.invoiced_at
        < {{ dbt.dateadd('day', -90, 'reference_date.as_of_date') }} as is_observed_90_days,
        coalesce(
            next_orders.next_order_at
            <= {{ dbt.dateadd('day', 90, 'first_orders.invoiced_at') }},
            false
        ) as ordered_again_within_90_days
    from first_orders
    cross join reference_date
    left join next_orders
        on first_orders.customer_id = next_orders.customer_id

),

starter_products as (

    select
        order_products.stock_code,
        count(*) as first_orders,
        count(*) filter (where starters.is_observed_90_days) as first_orders_observed,
        count(*) filter (
            where starters.is_observed_90_days and starters.ordered_again_within_90_days
        ) as came_back
    from starters
    inner join order_products
        on
            starters.invoice_no = order_products.invoice_no
            and starters.customer_id = order_products.customer_id
    group by order_products.stock_code

),

starter_count as (

    select count(*) as first_orders from starters

),

ranked as (

    select
        starter_products.*,
        starter_count.first_orders as all_first_orders,
        row_number() over (
            order by starter_products.first_orders desc, starter_products.stock_code asc
        ) as product_rank
    from starter_products
    cross join starter_count

),

final as (

    select
        -- ids
        cast(ranked.product_rank as integer) as rank,
        cast(ranked.stock_code as varchar) as stock_code,
        -- attributes
        cast(products.description as varchar) as description,
        -- counts
        cast(ranked.first_orders as bigint) as first_orders,
        cast(ranked.first_orders_observed as bigint) as first_orders_observed_90_days,
        -- shares
        cast(ranked.first_orders as double) / ranked.all_first_orders as share_of_first_orders,
        cast(ranked.came_back as double)
        / nullif(ranked.first_orders_observed, 0) as returned_within_90_days,
        cast(reference_date.as_of_date as date) as as_of_date
    from ranked
    left join products
        on ranked.stock_code = products.stock_code
    cross join reference_date
    where ranked.product_rank <= {{ top_n }}
    order by rank

)

select * from final
