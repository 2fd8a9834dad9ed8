-- One row per accepted line that is an exact copy (all eight fields) of an earlier accepted
-- line in file order, with the line it copies. Found in two steps so that the work stays
-- one scan at 100M lines: a 64-bit hash of the eight fields picks the candidate lines (a
-- hash seen more than once), then the exact comparison runs on those candidates only.
{%- set drop_duplicates = validated_var('drop_exact_duplicates') %}
{%- set line_fields = [
    'invoice_no', 'stock_code', 'description', 'quantity',
    'invoiced_at', 'unit_price', 'customer_id', 'country'
] %}

with

repeated_hashes as (

    -- first scan: only the 64-bit hash of each accepted line is kept and counted
    select hash({{ line_fields | join(', ') }}) as line_hash
    from {{ ref('int_invoice_lines_rule_checked') }}
    where
        rule_reason is null
        and {{ 'true' if drop_duplicates else 'false' }}
    group by line_hash
    having count(*) > 1

),

candidates as (

    -- second scan: the lines whose hash repeats (a separate scan, not a shared CTE, so that
    -- the accepted lines are never held in memory)
    select
        source_file,
        source_row,
        {{ line_fields | join(',\n        ') }}
    from {{ ref('int_invoice_lines_rule_checked') }}
    where
        rule_reason is null
        and hash({{ line_fields | join(', ') }})
        in (select repeated_hashes.line_hash from repeated_hashes)

),

numbered as (

    select
        source_file,
        source_row,
        row_number() over copies as copy_number,
        first_value(source_file) over copies as original_source_file,
        first_value(source_row) over copies as original_source_row
    from candidates
    window copies as (
        partition by {{ line_fields | join(', ') }}
        order by source_file, source_row
    )

),

final as (

    select
        source_file,
        source_row,
        original_source_file,
        original_source_row
    from numbered
    where copy_number > 1

)

select * from final
