-- One row per accepted invoice line: sales and customer returns, in GBP (int_order_lines as
-- users query it; the enforced contract in fct_order_lines.yml fixes its columns and types).
-- A view over the rows int_invoice_lines keeps; the serving file holds it as a table. The
-- refresh's bookkeeping columns stay in the intermediate layer.
{{ config(materialized='view') }}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

final as (

    select * exclude (input_file, input_file_id, lines_written_at)
    from order_lines

)

select * from final
