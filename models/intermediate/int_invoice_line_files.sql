-- One row per input file int_invoice_lines holds, and per input file it held once and no
-- longer does: when its rows were last written or were found gone (the incremental models
-- after int_invoice_lines compare this with what they hold, to know which files to take
-- again), its rows and the span of its accepted lines' timestamps. The gone files are kept
-- from this table as the last build left it (they are few: one row per file name), so that a
-- model that missed a build still learns which files went.
{%- set previous = previous_build(this) %}

with

invoice_lines as (

    select * from {{ ref('int_invoice_lines') }}

),

held_files as (

    select
        input_file,
        hash(input_file) as input_file_id,
        true as is_held,
        max(lines_written_at) as lines_written_at,
        count(*) as input_rows,
        count(*) filter (where reject_reason is null) as accepted_rows,
        min(invoiced_at) filter (where reject_reason is null) as first_invoiced_at,
        max(invoiced_at) filter (where reject_reason is null) as last_invoiced_at
    from invoice_lines
    group by input_file

),

gone_files as (

    -- gone since the last build: found gone now; gone before: as found then
    {%- if previous is not none %}
        select
            input_file,
            input_file_id,
            false as is_held,
            case when is_held then {{ build_started_at() }} else lines_written_at end
                as lines_written_at,
            0 as input_rows,
            0 as accepted_rows,
            cast(null as timestamp) as first_invoiced_at,
            cast(null as timestamp) as last_invoiced_at
        from {{ previous }}
        where input_file not in (select held_files.input_file from held_files)
    {%- else %}
        select *
        from held_files
        where false
    {%- endif %}

),

files as (

    select * from held_files
    union all
    select * from gone_files

),

final as (

    -- what this build did to each file, against this table as the last build left it
    select
        files.*,
        -- the earliest accepted line the file has had in any build (a change to the file can
        -- change what is known at any date after it)
        {%- if previous is not none %}
            least(files.first_invoiced_at, previous.earliest_invoiced_at)
                as earliest_invoiced_at,
        {%- else %}
            files.first_invoiced_at as earliest_invoiced_at,
        {%- endif %}
        case
            {%- if previous is not none %}
                when files.is_held and previous.is_held is not true then 'added'
                when files.is_held and files.lines_written_at != previous.lines_written_at
                    then 'changed'
                when files.is_held then 'unchanged'
                when previous.is_held then 'removed'
            {%- else %}
                when files.is_held then 'added'
            {%- endif %}
            else 'gone'
        end as build_change
    from files
    {%- if previous is not none %}
    left join {{ previous }} as previous
        on files.input_file = previous.input_file
    {%- endif %}

)

select * from final
