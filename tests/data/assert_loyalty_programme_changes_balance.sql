-- Members at each snapshot of customer_segment_history = members at the previous snapshot
-- (none before the first) + joined - left of loyalty_programme_changes; and the members at
-- the last snapshot are loyalty_programme's.
with

history as (

    select * from {{ ref('customer_segment_history') }}

),

changes as (

    select * from {{ ref('loyalty_programme_changes') }}

),

programme as (

    select * from {{ ref('loyalty_programme') }}

),

members as (

    select
        snapshot_date,
        count(*) filter (where is_loyalty_member) as members
    from history
    group by snapshot_date

),

change_counts as (

    select
        snapshot_date,
        count(*) filter (where change = 'joined') as joined,
        count(*) filter (where change = 'left') as left_programme
    from changes
    group by snapshot_date

),

balance as (

    select
        members.snapshot_date,
        members.members,
        coalesce(
            lag(members.members) over (order by members.snapshot_date), 0
        ) as previous_members,
        coalesce(change_counts.joined, 0) as joined,
        coalesce(change_counts.left_programme, 0) as left_programme
    from members
    left join change_counts
        on members.snapshot_date = change_counts.snapshot_date

),

unbalanced as (

    select
        snapshot_date,
        members,
        previous_members + joined - left_programme as expected_members
    from balance
    where members != previous_members + joined - left_programme

),

last_members as (

    select members
    from members
    order by snapshot_date desc
    limit 1

),

programme_size as (

    select count(*) as members from programme

),

programme_mismatch as (

    select
        cast(null as date) as snapshot_date,
        last_members.members,
        programme_size.members as expected_members
    from last_members
    cross join programme_size
    where last_members.members != programme_size.members

),

orphan_changes as (

    -- every change is on a snapshot of the history
    select
        change_counts.snapshot_date,
        cast(null as bigint) as members,
        cast(null as bigint) as expected_members
    from change_counts
    left join members
        on change_counts.snapshot_date = members.snapshot_date
    where members.snapshot_date is null

)

select * from unbalanced
union all
select * from programme_mismatch
union all
select * from orphan_changes
