-- The loyalty programme holds exactly the customers of segment 1, and its one-row summary
-- counts them: any customer on one side only, or a summary that disagrees, is a failure.
with

segments as (

    select * from {{ ref('customer_segments') }}

),

programme as (

    select * from {{ ref('loyalty_programme') }}

),

summary as (

    select * from {{ ref('loyalty_programme_summary') }}

),

segment_one as (

    select customer_id from segments
    where segment_id = 1

),

mismatched_customers as (

    select
        coalesce(segment_one.customer_id, programme.customer_id) as customer_id,
        'in only one of segment 1 and loyalty_programme' as problem
    from segment_one
    full outer join programme
        on segment_one.customer_id = programme.customer_id
    where segment_one.customer_id is null or programme.customer_id is null

),

summary_count as (

    select count(*) as summary_rows from summary

),

programme_count as (

    select count(*) as members from programme

),

summary_check as (

    select
        cast(null as bigint) as customer_id,
        'loyalty_programme_summary does not match' as problem
    from summary_count
    cross join programme_count
    left join summary on true
    where
        summary_count.summary_rows != 1
        or summary.members != programme_count.members

)

select * from mismatched_customers
union all
select * from summary_check
