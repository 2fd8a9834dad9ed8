-- How each input file writes its invoice dates with slashes: month first (`12/1/2010 8:26`,
-- the Kaggle CSV) or day first (`01/12/2010 08:26`, a UK export). Var `invoice_date_format`
-- fixes it for every file; `auto` decides per file from the values: a row whose first
-- number is above 12 can only be day first, one whose second number is above 12 only month
-- first; the reading with more such rows wins (the other's rows fail as invalid dates). A
-- file where every row reads both ways and the readings disagree fails the build.
{{ config(materialized='table') }}
{%- set date_format = validated_var('invoice_date_format') %}

with

raw_lines as (

    select * from {{ ref('stg_raw_invoice_lines') }}

),

date_parts as (

    -- the two leading numbers of `n/n/yyyy ...` (nulls for other forms), as text; the
    -- regular expression runs only on dates with a slash (an ISO or typed date has none)
    select
        source_file,
        case
            when contains(invoice_date, '/')
                then regexp_extract(
                        trim(invoice_date),
                        '^([0-9]{1,2})/([0-9]{1,2})/[0-9]{4}',
                        ['first_number', 'second_number']
                    )
        end as parts
    from raw_lines

),

slash_dates as (

    select
        date_parts.source_file,
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
        ) as ambiguous_rows
    from slash_dates
    group by source_file

),

decided as (

    select
        source_file,
        month_first_only_rows,
        day_first_only_rows,
        ambiguous_rows,
        {%- if date_format != 'auto' %}
            {{ sql_string_literal(date_format) }} as invoice_date_format,
            false as is_detected
        {%- else %}
            case
                when month_first_only_rows > day_first_only_rows then 'month_first'
                when day_first_only_rows > month_first_only_rows then 'day_first'
                when month_first_only_rows > 0
                    then error(
                            'Invoice dates of ' || source_file || ' read month first in '
                            || month_first_only_rows || ' rows and day first in as many: cannot '
                            || 'tell which; set the dbt var invoice_date_format (month_first, '
                            || 'day_first or iso)'
                        )
                when ambiguous_rows > 0
                    then error(
                            'Invoice dates of ' || source_file || ' read both month first and day '
                            || 'first in every row, and the two readings differ in '
                            || ambiguous_rows || ' rows: set the dbt var invoice_date_format '
                            || '(month_first for 12/1/2010 = 1 December, day_first for '
                            || '1/12/2010 = 1 December, or iso)'
                        )
                -- no slash dates, or each reads the same both ways (1/1, 2/2, ...)
                else 'month_first'
            end as invoice_date_format,
            true as is_detected
        {%- endif %}
    from evidence

),

final as (

    select
        cast(source_file as varchar) as source_file,
        cast(invoice_date_format as varchar) as invoice_date_format,
        is_detected,
        month_first_only_rows,
        day_first_only_rows,
        ambiguous_rows
    from decided

)

select * from final
