-- The products each segment buys most: for every KMeans segment and every named RFM
-- segment, the top `top_products_n` products by customers buying, with their lift over all
-- customers. Purchases are the sale lines before customer_rfm's as_of_date.
{%- set top_n = validated_var('top_products_n') %}

with

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

customer_segments as (

    select * from {{ ref('customer_segments') }}

),

order_products as (

    select * from {{ ref('int_order_products') }}

),

products as (

    select * from {{ ref('dim_products') }}

),

reference_date as (

    select min(as_of_date) as as_of_date from customer_rfm

),

customer_purchases as (

    -- what each customer of customer_rfm bought before the reference date, per product
    select
        order_products.customer_id,
        order_products.stock_code,
        sum(order_products.amount) as revenue
    from order_products
    inner join reference_date
        on order_products.invoiced_at < reference_date.as_of_date
    where order_products.customer_id is not null
    group by order_products.customer_id, order_products.stock_code

),

customer_groups as (

    -- every customer twice: in its KMeans segment and in its named RFM segment
    select
        customer_segments.customer_id,
        'kmeans' as segment_kind,
        cast(customer_segments.segment_id as varchar) as segment,
        customer_segments.segment_id,
        customer_segments.segment_name,
        cast(null as varchar) as rfm_segment
    from customer_segments
    union all
    select
        customer_rfm.customer_id,
        'rfm' as segment_kind,
        customer_rfm.rfm_segment as segment,
        cast(null as integer) as segment_id,
        customer_rfm.rfm_segment as segment_name,
        customer_rfm.rfm_segment
    from customer_rfm

),

group_sizes as (

    select
        segment_kind,
        segment,
        count(*) as segment_customers
    from customer_groups
    group by segment_kind, segment

),

all_customers as (

    select count(*) as customers from customer_rfm

),

product_reach as (

    -- customers of customer_rfm buying each product, for the lift's denominator
    select
        stock_code,
        count(*) as customers_buying
    from customer_purchases
    group by stock_code

),

group_products as (

    select
        customer_groups.segment_kind,
        customer_groups.segment,
        any_value(customer_groups.segment_id) as segment_id,
        any_value(customer_groups.segment_name) as segment_name,
        any_value(customer_groups.rfm_segment) as rfm_segment,
        customer_purchases.stock_code,
        count(*) as customers_buying,
        sum(customer_purchases.revenue) as revenue
    from customer_purchases
    inner join customer_groups
        on customer_purchases.customer_id = customer_groups.customer_id
    group by customer_groups.segment_kind, customer_groups.segment, customer_purchases.stock_code

),

ranked as (

    select
        group_products.*,
        group_sizes.segment_customers,
        cast(group_products.customers_buying as double)
        / group_sizes.segment_customers as share_of_segment_customers,
        (cast(group_products.customers_buying as double) / group_sizes.segment_customers)
        / (cast(product_reach.customers_buying as double) / all_customers.customers) as lift,
        row_number() over (
            partition by group_products.segment_kind, group_products.segment
            order by
                group_products.customers_buying desc,
                group_products.revenue desc,
                group_products.stock_code asc
        ) as product_rank
    from group_products
    inner join group_sizes
        on
            group_products.segment_kind = group_sizes.segment_kind
            and group_products.segment = group_sizes.segment
    inner join product_reach
        on group_products.stock_code = product_reach.stock_code
    cross join all_customers

),

final as (

    select
        -- ids
        cast(ranked.segment_kind as varchar) as segment_kind,
        cast(ranked.segment as varchar) as segment,
        cast(ranked.segment_id as integer) as segment_id,
        cast(ranked.segment_name as varchar) as segment_name,
        cast(ranked.rfm_segment as varchar) as rfm_segment,
        cast(ranked.product_rank as integer) as rank,
        cast(ranked.stock_code as varchar) as stock_code,
        -- attributes
        cast(products.description as varchar) as description,
        -- counts
        cast(ranked.customers_buying as bigint) as customers_buying,
        cast(ranked.segment_customers as bigint) as segment_customers,
        -- shares
        ranked.share_of_segment_customers,
        ranked.lift,
        -- amounts
        cast(ranked.revenue as decimal(38, 4)) as revenue,
        cast(reference_date.as_of_date as date) as as_of_date
    from ranked
    left join products
        on ranked.stock_code = products.stock_code
    cross join reference_date
    where ranked.product_rank <= {{ top_n }}
    order by segment_kind, segment, rank

)

select * from final
