-- The few lines that may go to quarantine, read from the files once for both models that need
-- them: every line a rule rejects, and every line no rule rejects whose 64-bit hash of the
-- eight fields occurs more than once (a possible exact duplicate). int_duplicate_invoice_lines
-- compares the candidates exactly; quarantined_transactions takes the rejected lines and the
-- copies found. Two scans: the first keeps only the hashes of the accepted lines and counts
-- them, the second keeps these lines (a few percent), so no scan of all lines is held.
{%- set drop_duplicates = validated_var('drop_exact_duplicates') %}
{%- set line_fields = duplicate_line_fields() %}

with

repeated_hashes as (

    select hash({{ line_fields | join(', ') }}) as line_hash
    from {{ ref('int_invoice_lines_rule_checked') }}
    where
        rule_reason is null
        and {{ 'true' if drop_duplicates else 'false' }}
    group by line_hash
    having count(*) > 1

),

final as (

    select
        source_file,
        source_row,
        {{ line_fields | join(',\n        ') }},
        quantity_text,
        unit_price_text,
        invoice_date_text,
        customer_id_text,
        rule_reason
    from {{ ref('int_invoice_lines_rule_checked') }}
    where
        rule_reason is not null
        or hash({{ line_fields | join(', ') }})
        in (select repeated_hashes.line_hash from repeated_hashes)

)

select * from final
