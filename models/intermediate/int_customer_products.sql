-- One row per customer and product bought: when the customer first bought it. The customer
-- figures that need products count these pairs before their reference date (customer_rfm's
-- distinct_products), so one table serves any as_of_date. Read from the lines, not from
-- int_order_products: the path to the segments then waits for one aggregate of the lines, not
-- for the table of order products. The grouping keys are the grain.
-- Incremental by pair (docs/refresh.md): a build takes again the pairs on the lines of the
-- input files written since its last, and those whose first purchase came from a file written
-- or gone since (first_input_file_id); it aggregates their lines over every file and deletes the
-- pairs left with no line (written as a null first purchase, deleted by the post-hook).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['customer_id', 'stock_code'],
    on_schema_change='fail',
    post_hook="delete from {{ this }} where first_purchased_at is null",
) }}
{%- set files = input_files_written_since(ref('int_invoice_line_files'), 'watermark') %}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}

),

input_files as (

    select * from {{ ref('int_invoice_line_files') }}

),

purchases as (

    select
        customer_id,
        stock_code,
        is_guest,
        invoiced_at,
        input_file,
        input_file_id
    from order_lines
    where line_type = 'sale' and customer_id is not null

),

{%- if is_incremental() %}

taken_pairs as (

    -- the pairs on the lines written since, and those whose first purchase was in a file
    -- written or gone since; every pair, held or not, when the model is made again in full
    select distinct customer_id, stock_code
    from purchases
    {%- if files is not none %}
    where {{ in_files('input_file', files) }}
    {%- endif %}
    union
    select customer_id, stock_code
    from {{ this }}
    {%- if files is not none %}
    where
        first_input_file_id in (
            select input_files.input_file_id from input_files
            where {{ in_files('input_files.input_file', files) }}
        )
        or first_input_file_id not in (
            select input_files.input_file_id from input_files where input_files.is_held
        )
    {%- endif %}

),

{%- endif %}

taken_purchases as (

    select purchases.*
    from purchases
    {%- if files is not none %}
    semi join taken_pairs
        on
            purchases.customer_id = taken_pairs.customer_id
            and purchases.stock_code = taken_pairs.stock_code
    {%- endif %}

),

pairs as (

    select
        customer_id,
        stock_code,
        -- a guest's synthetic id is negative, a real one positive: one flag per customer
        bool_and(is_guest) as is_guest,
        -- the first purchase and its input file (the smaller file id on a tie)
        min({'invoiced_at': invoiced_at, 'input_file_id': input_file_id})  -- noqa: LT01
            as first_purchase
    from taken_purchases
    group by customer_id, stock_code

),

gone_pairs as (

    -- the pairs taken whose lines are all gone: written with a null first purchase, which
    -- the post-hook deletes
    {%- if is_incremental() %}
        select customer_id, stock_code from taken_pairs
        except
        select customer_id, stock_code from pairs
    {%- else %}
        select
            customer_id,
            stock_code
        from pairs
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
        pairs.customer_id,
        pairs.stock_code,
        pairs.is_guest,
        pairs.first_purchase['invoiced_at'] as first_purchased_at,
        pairs.first_purchase['input_file_id'] as first_input_file_id,
        written.written_through
    from pairs
    cross join written
    union all
    select
        gone_pairs.customer_id,
        gone_pairs.stock_code,
        null as is_guest,
        null as first_purchased_at,
        null as first_input_file_id,
        written.written_through
    from gone_pairs
    cross join written

)

select * from final
