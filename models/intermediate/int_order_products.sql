-- One row per sale invoice and product: the accepted sale lines of a product on one invoice
-- summed (an invoice lists a product on one line, rarely more). The baskets and purchases
-- the product marts read, without reading the input files again. The invoice's customer,
-- time and guest flag are taken as fct_orders takes them (the smallest customer id, the
-- earliest time; a guest invoice only when every line is a guest's), so an invoice whose
-- lines straddle a minute is still one order, and the grouping keys alone make the grain.
-- Incremental by invoice and product (docs/refresh.md): a build takes again the keys on the
-- lines of the input files written since its last, and those whose lines came from a file
-- written or gone since (a file id from min_input_file_id to max_input_file_id: almost always
-- one file); it sums their lines over every file and deletes the keys left with no line
-- (written as null lines, deleted by the post-hook).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['invoice_no', 'stock_code'],
    on_schema_change='fail',
    post_hook="delete from {{ this }} where lines is null",
) }}
{%- set files = input_files_written_since(ref('int_invoice_line_files'), 'watermark') %}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

input_files as (

    select * from {{ ref('int_invoice_line_files') }}

),

sale_lines as (

    select * from order_lines
    where line_type = 'sale'

),

{%- if is_incremental() %}

taken_keys as (

    -- the keys on the lines written since, and those with a line in a file written or gone
    -- since (a file whose id lies between the smallest and largest of the key's file ids);
    -- every key, held or not, when the model is made again in full
    select distinct invoice_no, stock_code
    from sale_lines
    {%- if files is not none %}
    where {{ in_files('input_file', files) }}
    {%- endif %}
    union
    select held.invoice_no, held.stock_code
    from {{ this }} as held
    {%- if files is not none %}
    inner join (
        -- the files written or gone since (int_invoice_line_files keeps the gone ones)
        select input_files.input_file_id
        from input_files
        where {{ in_files('input_files.input_file', files) }}
    ) as touched
        on touched.input_file_id between held.min_input_file_id and held.max_input_file_id
    {%- endif %}

),

{%- endif %}

taken_lines as (

    select sale_lines.*
    from sale_lines
    {%- if files is not none %}
    semi join taken_keys
        on
            sale_lines.invoice_no = taken_keys.invoice_no
            and sale_lines.stock_code = taken_keys.stock_code
    {%- endif %}

),

sums as (

    select
        -- ids
        invoice_no,
        stock_code,
        min(customer_id) as customer_id,
        -- timestamps
        min(invoiced_at) as invoiced_at,
        -- flags
        bool_and(is_guest) as is_guest,
        -- counts
        count(*) as lines,
        sum(quantity) as items,
        -- amounts
        sum(line_amount) as amount,
        -- the input files of its lines, as the smallest and largest file id
        min(input_file_id) as min_input_file_id,
        max(input_file_id) as max_input_file_id
    from taken_lines
    group by invoice_no, stock_code

),

gone_keys as (

    -- the keys taken whose lines are all gone: written with null lines, which the post-hook
    -- deletes
    {%- if is_incremental() %}
        select invoice_no, stock_code from taken_keys
        except
        select invoice_no, stock_code from sums
    {%- else %}
        select
            invoice_no,
            stock_code
        from sums
        where false
    {%- endif %}

),

written as (

    -- the latest input file write taken (what the next build compares with)
    select max(lines_written_at) as written_through
    from input_files

),

final as (

    select
        sums.invoice_no,
        sums.stock_code,
        sums.customer_id,
        sums.invoiced_at,
        sums.is_guest,
        sums.lines,
        sums.items,
        sums.amount,
        sums.min_input_file_id,
        sums.max_input_file_id,
        written.written_through
    from sums
    cross join written
    union all
    select
        gone_keys.invoice_no,
        gone_keys.stock_code,
        null as customer_id,
        null as invoiced_at,
        null as is_guest,
        null as lines,
        null as items,
        null as amount,
        null as min_input_file_id,
        null as max_input_file_id,
        written.written_through
    from gone_keys
    cross join written

)

select * from final
