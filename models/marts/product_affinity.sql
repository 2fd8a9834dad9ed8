-- Products bought in the same order: for each product, its related products by lift (at
-- most `affinity_max_related`), among the pairs seen together in at least
-- `affinity_min_orders` sale orders (counted by int_product_pairs).
{%- set max_related = validated_var('affinity_max_related') %}

with

product_pairs as (

    select * from {{ ref('int_product_pairs') }}

),

order_products as (

    select * from {{ ref('int_order_products') }}

),

products as (

    -- orders: the sale orders holding each product
    select * from {{ ref('dim_products') }}

),

all_orders as (

    select count(distinct invoice_no) as orders from order_products

),

both_directions as (

    select
        stock_code,
        related_stock_code,
        orders_together
    from product_pairs
    union all
    select
        related_stock_code as stock_code,
        stock_code as related_stock_code,
        orders_together
    from product_pairs

),

measured as (

    select
        both_directions.stock_code,
        both_directions.related_stock_code,
        both_directions.orders_together,
        cast(both_directions.orders_together as double) / all_orders.orders as support,
        cast(both_directions.orders_together as double) / products.orders as confidence,
        -- orders_together x all orders / (orders of each): the same float both ways
        cast(both_directions.orders_together * all_orders.orders as double)
        / cast(products.orders * related_orders.orders as double) as lift
    from both_directions
    inner join products
        on both_directions.stock_code = products.stock_code
    inner join products as related_orders
        on both_directions.related_stock_code = related_orders.stock_code
    cross join all_orders

),

code_order as (

    -- each product's place in stock_code order, for the last tie-break below
    select
        stock_code,
        row_number() over (order by stock_code) as code_position
    from products

),

best as (

    -- each product's best related products in one aggregate (a top n per product, with no
    -- sort of all the pairs): by lift, then orders_together, then the lower
    -- related_stock_code (its place negated, so that the larger key comes first). The key is
    -- unique per product, so the order is total.
    select
        measured.stock_code,
        max_by(
            {
                'related_stock_code': measured.related_stock_code,
                'orders_together': measured.orders_together,
                'support': measured.support,
                'confidence': measured.confidence,
                'lift': measured.lift
            },
            {
                'lift': measured.lift,
                'orders_together': measured.orders_together,
                'code_position': -code_order.code_position
            },
            {{ max_related }}
        ) as related
    from measured
    inner join code_order
        on measured.related_stock_code = code_order.stock_code
    group by measured.stock_code

),

ranked as (

    -- one row per kept pair: the struct's fields as columns (so no alias), and its place in
    -- the list
    select
        stock_code,
        unnest(related, recursive := true),  -- noqa: AL03
        generate_subscripts(related, 1) as related_rank
    from best

),

final as (

    select
        -- ids
        cast(stock_code as varchar) as stock_code,
        cast(related_rank as integer) as rank,
        cast(related_stock_code as varchar) as related_stock_code,
        -- counts
        cast(orders_together as bigint) as orders_together,
        -- measures
        support,
        confidence,
        lift
    from ranked
    order by stock_code, rank

)

select * from final
