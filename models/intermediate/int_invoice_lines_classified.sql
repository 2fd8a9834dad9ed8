-- Every input line with its verdict: reject_reason is null for lines that go into
-- fct_order_lines, else the first rule that rejects it, or duplicate_line for an exact copy
-- of an earlier accepted line. A view: it reads the input files (through staging) each time.
{{ config(materialized='view') }}

with

rule_checked as (

    select * from {{ ref('int_invoice_lines_rule_checked') }}

),

duplicates as (

    select * from {{ ref('int_duplicate_invoice_lines') }}

),

final as (

    select
        rule_checked.* exclude (rule_reason),  -- noqa: RF02
        {{ reject_reason('rule_checked', 'duplicates') }} as reject_reason
    from rule_checked
    left join duplicates
        on
            rule_checked.source_file = duplicates.source_file
            and rule_checked.source_row = duplicates.source_row

)

select * from final
