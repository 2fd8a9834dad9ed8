-- One row per accepted line that is an exact copy (all eight fields) of an earlier accepted
-- line in file order, with the line it copies. The exact comparison runs on the candidates
-- only (int_quarantine_candidates: accepted lines whose 64-bit hash of the eight fields
-- repeats), so no window runs over all the lines at 100M lines.
{%- set line_fields = duplicate_line_fields() %}

with

candidates as (

    select * from {{ ref('int_quarantine_candidates') }}
    where rule_reason is null

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
