-- Every order line has its required values, a line type that matches its invoice and the
-- sign of its quantity, and an amount of quantity x unit price: one scan of the lines, one
-- row per broken line and problem.
with

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

problems as (

    select
        source_file,
        source_row,
        case
            when invoice_no is null
                or stock_code is null
                or quantity is null
                or unit_price is null
                or invoiced_at is null
                or country is null
                or line_amount is null
                or is_guest is null
                or source_file is null
                or source_row is null
                then 'missing required value'
            when line_type not in ('sale', 'return') or line_type is null
                then 'unknown line_type'
            when (line_type = 'sale') != (quantity > 0)
                then 'line_type does not match the sign of quantity'
            when (line_type = 'return') != starts_with(upper(invoice_no), 'C')
                then 'line_type does not match the invoice'
            when line_amount != cast(quantity * unit_price as decimal(18, 4))
                then 'line_amount is not quantity x unit_price'
            when not is_guest and customer_id is null
                then 'identified line without customer_id'
        end as problem
    from order_lines

)

select * from problems
where problem is not null
