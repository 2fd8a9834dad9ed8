-- How each input file writes its invoice dates with slashes: month first (`12/1/2010 8:26`,
-- the Kaggle CSV) or day first (`01/12/2010 08:26`, a UK export), with a four- or two-digit
-- year. Var `invoice_date_format` fixes it for every file; `auto` decides per file from the
-- values: a row whose first number is above 12 can only be day first, one whose second number
-- is above 12 only month first. A file with rows of only one kind takes that reading; a file
-- with rows of both kinds fails the build (it cannot be read by one rule). A file in which
-- every date reads both ways (an export of a month's first twelve days) takes the reading the
-- files that decide for themselves share; when none does, the build fails naming the file.
-- The evidence of a file read by an earlier build (same name and SHA-256) is taken from this
-- table as that build left it: only new and changed files are read (docs/refresh.md).
{{ config(materialized='table') }}
{%- set date_format = validated_var('invoice_date_format') %}
{%- set fix = 'set the dbt var invoice_date_format (month_first for 12/1/2010 = 1 December, '
    ~ 'day_first for 1/12/2010 = 1 December, or iso)' %}

{%- set cached = previous_build(this) %}
{%- set to_read = none %}
{%- if cached is not none %}
    {%- set to_read = run_query(
        'select source_file from ' ~ ref('stg_input_files') ~ ' as input_files '
        ~ 'where not exists (select 1 from ' ~ cached ~ ' as cached '
        ~ 'where cached.sha256 = input_files.sha256 and (cached.source_file = '
        ~ 'input_files.source_file or starts_with(cached.source_file, '
        ~ "input_files.source_file || '[')))"
    ).columns[0].values() | list %}
{%- endif %}

with

input_files as (

    select * from {{ ref('stg_input_files') }}

),

raw_lines as (

    -- the rows of the files without evidence kept from the last build (the filter names the
    -- files, so the view reads those only)
    select * from {{ ref('stg_raw_invoice_lines') }}
    {%- if to_read is not none %}
    where {{ in_files('source_file', to_read) }}
    {%- endif %}

),

date_parts as (

    -- the two leading numbers of `n/n/yyyy ...` or `n/n/yy ...` (nulls for other forms), as
    -- text; the regular expression runs only on dates with a slash (an ISO or typed date has
    -- none)
    select
        source_file,
        source_row,
        case
            when contains(invoice_date, '/')
                then regexp_extract(
                        trim(invoice_date),
                        '^([0-9]{1,2})/([0-9]{1,2})/(?:[0-9]{4}|[0-9]{2})(?:[^0-9]|$)',
                        ['first_number', 'second_number']
                    )
        end as parts
    from raw_lines

),

slash_dates as (

    select
        date_parts.source_file,
        date_parts.source_row,
        try_cast(date_parts.parts.first_number as integer) as first_number,
        try_cast(date_parts.parts.second_number as integer) as second_number
    from date_parts

),

evidence as (

    select
        source_file,
        count(*) filter (
            where second_number > 12 and first_number between 1 and 12
        ) as month_first_only_rows,
        count(*) filter (
            where first_number > 12 and second_number between 1 and 12
        ) as day_first_only_rows,
        count(*) filter (
            where first_number between 1 and 12
            and second_number between 1 and 12
            and first_number != second_number
        ) as ambiguous_rows,
        min(source_row) filter (
            where second_number > 12 and first_number between 1 and 12
        ) as first_month_first_only_row,
        min(source_row) filter (
            where first_number > 12 and second_number between 1 and 12
        ) as first_day_first_only_row
    from slash_dates
    group by source_file

),

file_evidence as (

    -- with the SHA-256 of the file (of the workbook, for a sheet) it was found in
    select
        evidence.*,
        input_files.sha256
    from evidence
    inner join input_files
        on
            evidence.source_file = input_files.source_file
            or starts_with(evidence.source_file, input_files.source_file || '[')
    {%- if cached is not none %}
    union all
    select
        cached.source_file,
        cached.month_first_only_rows,
        cached.day_first_only_rows,
        cached.ambiguous_rows,
        cached.first_month_first_only_row,
        cached.first_day_first_only_row,
        cached.sha256
    from {{ cached }} as cached
    inner join input_files
        on
            cached.sha256 = input_files.sha256
            and (
                cached.source_file = input_files.source_file
                or starts_with(cached.source_file, input_files.source_file || '[')
            )
    {%- endif %}

),

own_readings as (

    -- what the file's own rows say: one reading, both (a conflict), or nothing
    select
        *,
        case
            when month_first_only_rows > 0 and day_first_only_rows > 0 then 'both'
            when month_first_only_rows > 0 then 'month_first'
            when day_first_only_rows > 0 then 'day_first'
        end as own_reading
    from file_evidence

),

shared_reading as (

    -- the reading every file that decides for itself shares (null when none decides, or
    -- when they disagree), for the files whose every date reads both ways
    select
        case
            when count(distinct own_reading) = 1 then min(own_reading)
        end as shared_format,
        string_agg(distinct own_reading, ' and ' order by own_reading) as readings_found
    from own_readings
    where own_reading in ('month_first', 'day_first')

),

decided as (

    select
        own_readings.source_file,
        own_readings.sha256,
        own_readings.month_first_only_rows,
        own_readings.day_first_only_rows,
        own_readings.ambiguous_rows,
        own_readings.first_month_first_only_row,
        own_readings.first_day_first_only_row,
        {%- if date_format != 'auto' %}
            {{ sql_string_literal(date_format) }} as invoice_date_format,
            'var' as decided_by
        {%- else %}
            case
                when own_readings.own_reading = 'both'
                    then error(
                            'Invoice dates of ' || own_readings.source_file || ' read only month '
                            || 'first in ' || own_readings.month_first_only_rows || ' rows (the '
                            || 'first is row ' || own_readings.first_month_first_only_row
                            || ') and only day first in ' || own_readings.day_first_only_rows
                            || ' rows (the first is row ' || own_readings.first_day_first_only_row
                            || '): the file mixes two date orders and cannot be read by one '
                            || 'rule. Split it by date order, or set the dbt var '
                            || 'invoice_date_format (month_first or day_first) to read every row '
                            || 'that way and quarantine the rows that do not fit'
                        )
                when own_readings.own_reading is not null then own_readings.own_reading
                -- each slash date reads the same both ways (1/1, 2/2, ...), or there is none
                when own_readings.ambiguous_rows = 0 then 'month_first'
                when shared_reading.shared_format is not null then shared_reading.shared_format
                else error(
                        'Invoice dates of ' || own_readings.source_file || ' read both month '
                        || 'first and day first in every row, and the two readings differ in '
                        || own_readings.ambiguous_rows || ' rows; '
                        || coalesce(
                            'the other input files read ' || shared_reading.readings_found
                            || ', so they do not decide it either',
                            'no other input file decides it'
                        )
                        || ': ' || {{ sql_string_literal(fix) }}
                    )
            end as invoice_date_format,
            case
                when own_readings.own_reading is not null then 'this_file'
                when own_readings.ambiguous_rows = 0 then 'no_difference'
                else 'other_files'
            end as decided_by
        {%- endif %}
    from own_readings
    cross join shared_reading

),

final as (

    select
        cast(source_file as varchar) as source_file,
        cast(invoice_date_format as varchar) as invoice_date_format,
        cast(decided_by as varchar) as decided_by,
        month_first_only_rows,
        day_first_only_rows,
        ambiguous_rows,
        first_month_first_only_row,
        first_day_first_only_row,
        sha256
    from decided

)

select * from final
