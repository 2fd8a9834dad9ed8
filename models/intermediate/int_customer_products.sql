-- One row per customer and product bought: when the customer first bought it. The customer
-- figures that need products count these pairs before their reference date (customer_rfm's
-- distinct_products), so one table serves any as_of_date. Read from the lines, not from
-- int_order_products: the path to the segments then waits for one aggregate of the lines, not
-- for the 10M-row table of order products (issue 16). The grouping keys are the grain.
with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

final as (

    select
        customer_id,
        stock_code,
        -- a guest's synthetic id is negative, a real one positive: one flag per customer
        bool_and(is_guest) as is_guest,
        min(invoiced_at) as first_purchased_at
    from order_lines
    where line_type = 'sale' and customer_id is not null
    group by customer_id, stock_code

)

select * from final
