-- One row per invoice (sale or cancellation) of the accepted order lines.
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

final as (

    select
        -- ids
        invoice_no,
        min(customer_id) as customer_id,
        -- attributes
        min(invoiced_at) as invoiced_at,
        min(country) as country,
        bool_or(line_type = 'return') as is_cancellation,
        bool_and(is_guest) as is_guest,
        -- amounts
        count(*) as lines,
        cast(sum(quantity) as bigint) as items,
        cast(sum(line_amount) as decimal(18, 4)) as amount
    from order_lines
    group by invoice_no

)

select * from final
