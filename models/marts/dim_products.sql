-- One row per product (stock code) with at least one accepted sale line: its canonical
-- description and what it sold. One pass over the accepted lines.
with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

product_lines as (

    select
        stock_code,
        -- timestamps
        min(invoiced_at) filter (where line_type = 'sale') as first_sold_at,
        max(invoiced_at) filter (where line_type = 'sale') as last_sold_at,
        -- prices
        median(unit_price) filter (where line_type = 'sale') as median_unit_price,
        -- counts
        count(distinct customer_id) filter (
            where line_type = 'sale' and not is_guest
        ) as customers,
        count(distinct invoice_no) filter (where line_type = 'sale') as orders,
        sum(quantity) filter (where line_type = 'sale') as items_sold,
        coalesce(-sum(quantity) filter (where line_type = 'return'), 0) as items_returned,
        -- amounts
        sum(line_amount) filter (where line_type = 'sale') as revenue,
        -- texts: how often each non-empty description was used on a sale line
        histogram(description) filter (
            where line_type = 'sale' and trim(description) <> ''
        ) as description_counts
    from order_lines
    group by stock_code
    having count(*) filter (where line_type = 'sale') > 0

),

described as (

    -- the most frequent description; a tie goes to the alphabetically first
    select
        product_lines.*,
        list_sort(
            list_transform(
                map_entries(product_lines.description_counts),
                lambda e: { 'uses': -cast(e.value as bigint), 'text': e.key }  -- noqa: RF03
            )
        )[1].text as description,
        coalesce(cardinality(product_lines.description_counts), 0) as descriptions_seen
    from product_lines

),

final as (

    select
        -- ids
        cast(stock_code as varchar) as stock_code,
        -- attributes
        cast(description as varchar) as description,
        cast(descriptions_seen as bigint) as descriptions_seen,
        -- timestamps
        cast(first_sold_at as timestamp) as first_sold_at,
        cast(last_sold_at as timestamp) as last_sold_at,
        -- prices
        cast(median_unit_price as decimal(18, 4)) as median_unit_price,
        -- counts
        cast(customers as bigint) as customers,
        cast(orders as bigint) as orders,
        cast(items_sold as bigint) as items_sold,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        -- rates
        cast(items_returned as double) / items_sold as return_rate
    from described

)

select * from final
