-- One row per accepted invoice line: sales and customer returns, in GBP (int_order_lines as
-- users query it). A view: the input files are read where they lie, never copied; the
-- serving file holds it as a table.
{{ config(materialized='view') }}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}

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
        customer_id,
        country,
        line_type,
        -- amounts
        line_amount,
        -- flags
        is_guest,
        -- lineage
        source_file,
        source_row
    from order_lines

)

select * from final
