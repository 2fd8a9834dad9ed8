-- One row per accepted invoice line: sales and customer returns, in GBP, with the customer
-- (guests by guest_policy), the line type and the amount. Every model that needs the
-- accepted lines reads this one (fct_order_lines, int_order_line_groups,
-- int_customer_products). A view over the rows int_invoice_lines keeps.
{{ config(materialized='view') }}
{%- set guest_policy = validated_var('guest_policy') %}
{#- per_invoice: each guest invoice is its own synthetic customer, numbered -1, -2, ...
    in invoice number order; real ids are positive, so the two never collide. -#}
{%- set guest_customer_id = (
    '-dense_rank() over (partition by customer_id is null order by invoice_no)'
    if guest_policy == 'per_invoice' else 'null'
) %}

with

invoice_lines as (

    select * from {{ ref('int_invoice_lines') }}

),

accepted as (

    select * from invoice_lines
    where reject_reason is null

),

final as (

    select
        -- ids
        invoice_no,
        stock_code,
        -- attributes
        description,
        quantity,
        unit_price,
        invoiced_at,
        coalesce(customer_id, {{ guest_customer_id }}) as customer_id,
        country,
        case when is_cancellation_invoice then 'return' else 'sale' end as line_type,
        -- amounts
        cast(quantity * unit_price as decimal(18, 4)) as line_amount,
        -- flags
        customer_id is null as is_guest,
        -- lineage
        source_file,
        source_row,
        input_file,
        hash(input_file) as input_file_id,
        lines_written_at
    from accepted

)

select * from final
