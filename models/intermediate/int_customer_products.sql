-- Distinct products per customer over all sale lines: the one customer figure that needs the
-- lines themselves, counted in its own table while the line groups are summed, so that
-- customer_rfm reads only small tables (with an explicit as_of_date, customer_rfm counts the
-- lines before that date itself).
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

final as (

    {{ customer_distinct_products('order_lines') }}

)

select * from final
