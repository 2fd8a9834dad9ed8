-- One row per rejected input line, with the values as read and the one reason: the rows of
-- int_invoice_lines with a reject_reason, but not the rows of forgotten customers (they hold
-- nothing; input_reconciliation counts them as rows_forgotten).
with

invoice_lines as (

    select * from {{ ref('int_invoice_lines') }}

),

final as (

    select
        invoice_no,
        stock_code,
        description,
        quantity_text as quantity,
        unit_price_text as unit_price,
        invoice_date_text as invoiced_at,
        customer_id_text as customer_id,
        country,
        reject_reason,
        source_file,
        source_row
    from invoice_lines
    where reject_reason is not null and reject_reason != 'customer_forgotten'

)

select * from final
