-- One row per sale invoice and product: the accepted sale lines of a product on one invoice
-- summed (an invoice lists a product on one line, rarely more). The baskets and purchases
-- the product marts read, without reading the input files again. The invoice's customer,
-- time and guest flag are taken as fct_orders takes them (the smallest customer id, the
-- earliest time; a guest invoice only when every line is a guest's), so an invoice whose
-- lines straddle a minute is still one order, and the grouping keys alone make the grain.
with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

final as (

    select
        -- ids
        invoice_no,
        stock_code,
        min(customer_id) as customer_id,
        -- timestamps
        min(invoiced_at) as invoiced_at,
        -- flags
        bool_and(is_guest) as is_guest,
        -- counts
        count(*) as lines,
        sum(quantity) as items,
        -- amounts
        sum(line_amount) as amount
    from order_lines
    where line_type = 'sale'
    group by invoice_no, stock_code

)

select * from final
