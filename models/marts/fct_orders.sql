-- One row per invoice (sale or cancellation) of the accepted order lines.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

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
        cast(sum(lines) as bigint) as lines,
        cast(sum(items) as bigint) as items,
        cast(sum(amount) as decimal(38, 4)) as amount
    from line_groups
    group by invoice_no

)

select * from final
