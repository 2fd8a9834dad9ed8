-- The accepted lines summed per invoice, customer, timestamp, country, line type and input
-- file: every aggregate mart reads this instead of the lines (in practice one row per
-- invoice, about 20x fewer rows). The row-number checksums let input_reconciliation check,
-- without reading the lines again, that each input row is summed here exactly once.
-- Incremental by input file: a build sums again only the files int_invoice_lines wrote since
-- (their rows are replaced together) and deletes those no longer read (docs/refresh.md).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='input_file',
    on_schema_change='fail',
    post_hook="delete from {{ this }} where input_file not in "
        "(select input_file from {{ ref('int_invoice_line_files') }} where is_held)",
) }}
{%- set files = input_files_written_since(ref('int_invoice_line_files'), 'per_file') %}

with

order_lines as (

    select * from {{ ref('int_order_lines') }}
    {%- if files is not none %}
    where {{ in_files('input_file', files) }}
    {%- endif %}

),

final as (

    select
        -- keys
        invoice_no,
        customer_id,
        invoiced_at,
        country,
        line_type,
        is_guest,
        source_file,
        input_file,
        lines_written_at,
        -- counts
        count(*) as lines,
        sum(quantity) as items,
        -- amounts
        sum(line_amount) as amount,
        -- lineage checksums
        min(source_row) as first_source_row,
        max(source_row) as last_source_row,
        sum(cast(source_row as hugeint)) as source_row_sum,
        sum(cast(source_row as hugeint) * source_row) as source_row_square_sum
    from order_lines
    group by
        invoice_no,
        customer_id,
        invoiced_at,
        country,
        line_type,
        is_guest,
        source_file,
        input_file,
        lines_written_at

)

select * from final
