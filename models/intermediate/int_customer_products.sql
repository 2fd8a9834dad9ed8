-- Distinct products per customer over all sale lines: the one customer figure that needs the
-- lines themselves, counted in its own table while the line groups are summed, so that
-- customer_rfm reads only small tables (with an explicit as_of_date, customer_rfm counts the
-- lines before that date itself).
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

final as (

    select
        customer_id,
        count(distinct stock_code) as distinct_products
    from order_lines
    where
        line_type = 'sale'
        and customer_id is not null
    group by customer_id

)

select * from final
