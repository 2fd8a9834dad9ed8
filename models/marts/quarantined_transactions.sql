-- One row per rejected input line, with the values as read and the one reason: the lines a
-- rule rejects and the duplicate copies, both among int_quarantine_candidates (the same
-- verdict as int_invoice_lines_classified, without reading every line again).
with

candidates as (

    select * from {{ ref('int_quarantine_candidates') }}

),

duplicates as (

    select * from {{ ref('int_duplicate_invoice_lines') }}

),

rejected as (

    select
        candidates.*,
        {{ reject_reason('candidates', 'duplicates') }} as reject_reason
    from candidates
    left join duplicates
        on
            candidates.source_file = duplicates.source_file
            and candidates.source_row = duplicates.source_row

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
    from rejected
    where reject_reason is not null

)

select * from final
