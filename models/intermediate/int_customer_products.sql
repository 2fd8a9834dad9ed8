-- One row per customer and product bought: when the customer first bought it. The customer
-- figures that need products count these pairs before their reference date (customer_rfm's
-- distinct_products), so one table serves any as_of_date.
with

order_products as (

    select * from {{ ref('int_order_products') }}

),

final as (

    select
        -- ids
        customer_id,
        stock_code,
        -- flags
        is_guest,
        -- timestamps
        min(invoiced_at) as first_purchased_at
    from order_products
    where customer_id is not null
    group by customer_id, stock_code, is_guest

)

select * from final
