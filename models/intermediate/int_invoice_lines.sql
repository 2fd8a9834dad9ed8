-- Every input row with its one verdict, kept from build to build: a build reads only the
-- files that are new, changed or read under other rules since the last (macro
-- invoice_lines_changes), and keeps the rows of the others (docs/refresh.md). The verdict is
-- the first cleaning rule that rejects the row (int_invoice_lines_rule_checked), else
-- duplicate_line for an exact copy of an earlier accepted row in (source_file, source_row)
-- order, else null (accepted). A row of a customer on the forget list (var
-- forget_customers_path) is stored as customer_forgotten with no content: its file and row
-- number only, so that it is still accounted for (docs/privacy.md). Copies are looked for
-- among the rows whose hash a changed file brings or takes away; a file whose copies change is
-- written again from this table, not read again. Incremental by input file: its rows are
-- replaced together, and those of a file no longer read are deleted (post-hook).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='input_file',
    on_schema_change='fail',
    post_hook="delete from {{ this }} where input_file not in "
        "(select source_file from {{ ref('stg_input_files') }})",
) }}
{%- set drop_duplicates = validated_var('drop_exact_duplicates') %}
{%- set line_fields = duplicate_line_fields() %}
{%- set changes = invoice_lines_changes() %}
{%- set forgotten = forget_list(check=false) %}
{#- when a list is set and every file is read (as after a change of the list): how many of its
    ids are in no line of the CSV and Parquet files, in the build log (never the ids) -#}
{%- if execute and forgotten.sql and (
    changes.to_read is none
    or changes.to_read | length == run_query(
        'select count(*) from ' ~ ref('stg_input_files')).columns[0].values()[0]
) %}
    {%- set counted = run_query(
        'with list as (' ~ forgotten.sql ~ '), found as (select distinct customer_id from '
        ~ ref('int_invoice_lines_rule_checked')
        ~ ' where customer_id in (select customer_id from list)) '
        ~ 'select count(*), count(*) filter (where customer_id not in '
        ~ '(select customer_id from found)) from list'
    ).rows[0] %}
    {%- do log(
        'forget list ' ~ forgotten.path ~ ': ' ~ counted[0] ~ ' customer id(s), '
        ~ counted[1] ~ ' of them in no line of the input files read',
        info=true
    ) %}
{%- endif %}
{%- set incremental = is_incremental() %}
{%- set replaced = (changes.to_read or []) + changes.removed %}
{%- set stored_columns = [
    'input_file', 'file_version', 'lines_written_at', 'source_file', 'source_row',
    'invoice_no', 'stock_code', 'description', 'country', 'quantity', 'unit_price',
    'invoiced_at', 'customer_id', 'is_cancellation_invoice', 'quantity_text',
    'unit_price_text', 'invoice_date_text', 'customer_id_text', 'reject_reason', 'line_hash',
] %}
{#- what a forgotten customer's row does not keep -#}
{%- set content_columns = [
    'invoice_no', 'stock_code', 'description', 'country', 'quantity', 'unit_price',
    'invoiced_at', 'customer_id', 'is_cancellation_invoice', 'quantity_text',
    'unit_price_text', 'invoice_date_text', 'customer_id_text',
] %}

with

versions as (

    {{ changes.versions }}

),

input_files as (

    select * from {{ ref('stg_input_files') }}

),

rule_checked as not materialized (

    -- the files to read, and only those: the filter names them, so the views read no other
    select * from {{ ref('int_invoice_lines_rule_checked') }}
    {%- if changes.to_read is not none %}
    where {{ in_files('source_file', changes.to_read) }}
    {%- endif %}

),

{%- if forgotten.sql %}

forgotten_customers as (

    -- the forget list's ids, read from its file as the query runs (macros/forget_list.sql)
    {{ forgotten.sql }}

),
{%- endif %}

forget_checked as not materialized (

    -- a row blanked before it got here (an Excel row), or a listed customer's
    select
        * exclude (is_forgotten),
        {%- if forgotten.sql %}
            coalesce(is_forgotten, false)
            or coalesce(
                customer_id in (select forgotten_customers.customer_id from forgotten_customers),
                false
            ) as is_forgotten
        {%- else %}
            coalesce(is_forgotten, false) as is_forgotten
        {%- endif %}
    from rule_checked

),

read_lines as not materialized (

    -- read where it is used (the repeated hashes, their rows, the verdicts), as are the CTEs
    -- it reads: three narrow scans of the input files, where DuckDB stored every column of
    -- every row read (a full 100M-line build spilled 52 GB to disk in this model)
    select
        -- the input file (a workbook, for a sheet's row) and its version
        input_files.source_file as input_file,
        versions.file_version,
        {{ build_started_at() }} as lines_written_at,
        rule_checked.source_file,
        rule_checked.source_row,
        {%- for column in content_columns %}
            case
                when not rule_checked.is_forgotten then rule_checked.{{ column }}
            end as {{ column }},
        {%- endfor %}
        case
            when rule_checked.is_forgotten then 'customer_forgotten'
            else rule_checked.rule_reason
        end as rule_reason,
        case
            when rule_checked.rule_reason is null and not rule_checked.is_forgotten
                then hash({{ line_fields | join(', ') }})
        end as line_hash
    from forget_checked as rule_checked
    inner join input_files
        on
            rule_checked.source_file = input_files.source_file
            or starts_with(rule_checked.source_file, input_files.source_file || '[')
    inner join versions
        on input_files.source_file = versions.input_file
    -- the file DuckDB read must be the one meant (its name escapes glob characters); a
    -- filter, so that it is evaluated on every row; it repeats the join's condition, as DuckDB
    -- may evaluate it on pairs the join does not keep
    where
        case
            when not (
                    rule_checked.source_file = input_files.source_file
                    or starts_with(rule_checked.source_file, input_files.source_file || '[')
                )
                then false
            when input_files.file_format = 'xlsx'
                or rule_checked.read_path = input_files.read_path
                then true
            else error(
                    'read ' || coalesce(rule_checked.read_path, 'nothing') || ' for '
                    || input_files.source_file || ', not ' || input_files.read_path
                )
        end

),

{%- if incremental %}

kept_lines as not materialized (

    -- the rows of the files neither read again nor gone, as this table holds them
    select * from {{ this }}
    {%- if replaced %}
    where not {{ in_files('input_file', replaced) }}
    {%- endif %}

),

replaced_lines as not materialized (

    -- the rows of the files read again or gone, as this table holds them
    select * from {{ this }}
    where {{ in_files('input_file', replaced) }}

),

affected_hashes as (

    -- the lines whose copies may change: those of the rows read, and of the rows replaced (in
    -- a full build, every accepted row read: the pool takes them without this list)
    select line_hash from read_lines
    where rule_reason is null and {{ 'true' if drop_duplicates else 'false' }}
    union
    select line_hash from replaced_lines
    where line_hash is not null and {{ 'true' if drop_duplicates else 'false' }}

),
{%- endif %}

pool as not materialized (

    -- every accepted line with an affected hash: the rows read and the rows kept (in a full
    -- build, every accepted row read)
    select source_file, source_row, line_hash, {{ line_fields | join(', ') }}
    from read_lines
    where
        {%- if incremental %}
            line_hash in (select affected_hashes.line_hash from affected_hashes)
        {%- else %}
            rule_reason is null and {{ 'true' if drop_duplicates else 'false' }}
        {%- endif %}
    {%- if incremental %}
    union all
    select source_file, source_row, line_hash, {{ line_fields | join(', ') }}
    from kept_lines
    where line_hash in (select affected_hashes.line_hash from affected_hashes)
    {%- endif %}

),

repeated_hashes as (

    select line_hash
    from pool
    group by line_hash
    having count(*) > 1

),

copies as (

    -- every copy after the first of the same eight fields, in (source_file, source_row) order
    select
        source_file,
        source_row
    from (
        select
            source_file,
            source_row,
            row_number() over (
                partition by {{ line_fields | join(', ') }}
                order by source_file, source_row
            ) as copy_number
        from pool
        where line_hash in (select repeated_hashes.line_hash from repeated_hashes)
    )
    where copy_number > 1

),

read_verdicts as (

    select
        read_lines.* exclude (read_lines.rule_reason),
        coalesce(
            read_lines.rule_reason,
            case when copies.source_row is not null then 'duplicate_line' end
        ) as reject_reason
    from read_lines
    left join copies
        on
            read_lines.source_file = copies.source_file
            and read_lines.source_row = copies.source_row

),

{%- if incremental %}

kept_verdicts as (

    -- the kept rows whose copies were looked at, with the verdict they now get
    select
        kept_lines.input_file,
        kept_lines.source_file,
        kept_lines.source_row,
        kept_lines.reject_reason,
        case when copies.source_row is not null then 'duplicate_line' end as new_reject_reason
    from kept_lines
    left join copies
        on
            kept_lines.source_file = copies.source_file
            and kept_lines.source_row = copies.source_row
    where kept_lines.line_hash in (select affected_hashes.line_hash from affected_hashes)

),

rewritten_files as (

    -- kept files with a row whose verdict changes: written again, from this table
    select distinct input_file
    from kept_verdicts
    where reject_reason is distinct from new_reject_reason

),

rewritten_lines as (

    select
        kept_lines.* exclude (reject_reason, lines_written_at),
        {{ build_started_at() }} as lines_written_at,
        case
            when kept_verdicts.source_row is not null then kept_verdicts.new_reject_reason
            else kept_lines.reject_reason
        end as reject_reason
    from kept_lines
    left join kept_verdicts
        on
            kept_lines.source_file = kept_verdicts.source_file
            and kept_lines.source_row = kept_verdicts.source_row
    where kept_lines.input_file in (select rewritten_files.input_file from rewritten_files)

),
{%- endif %}

final as (

    -- the rows read, and the kept rows of the files written again (the same columns)
    select {{ stored_columns | join(', ') }} from read_verdicts
    {%- if incremental %}
    union all
    select {{ stored_columns | join(', ') }} from rewritten_lines
    {%- endif %}

)

select * from final
