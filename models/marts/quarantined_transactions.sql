-- One row per rejected input line, with the values as read and the one reason.
with

classified_lines as (

    select * from {{ ref('int_invoice_lines_classified') }}

),

final as (

    select
        -- ids
        invoice_no,
        stock_code,
        -- values as read (text)
        description,
        quantity_text as quantity,
        unit_price_text as unit_price,
        invoice_date_text as invoiced_at,
        customer_id_text as customer_id,
        country,
        -- verdict
        reject_reason,
        -- lineage
        source_file,
        source_row
    from classified_lines
    where reject_reason is not null

)

select * from final
