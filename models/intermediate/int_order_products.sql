-- One row per sale invoice and product: the accepted sale lines of a product on one invoice
-- summed (an invoice lists a product on one line, rarely more). The baskets and purchases
-- the product marts read, without reading the input files again.
with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

final as (

    select
        -- ids
        invoice_no,
        stock_code,
        customer_id,
        -- timestamps
        invoiced_at,
        -- flags
        is_guest,
        -- counts
        count(*) as lines,
        sum(quantity) as items,
        -- amounts
        sum(line_amount) as amount
    from order_lines
    where line_type = 'sale'
    group by invoice_no, stock_code, customer_id, invoiced_at, is_guest

)

select * from final
