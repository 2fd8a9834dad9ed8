-- A customer present at a snapshot of customer_segment_history is present at every later one
-- (purchases only accumulate): the migration and the programme changes rely on it.
with

history as (

    select * from {{ ref('customer_segment_history') }}

),

snapshots as (

    select distinct snapshot_date from history

),

next_snapshots as (

    select
        snapshot_date,
        lead(snapshot_date) over (order by snapshot_date) as next_snapshot
    from snapshots

),

gone as (

    select
        history.snapshot_date,
        history.customer_id
    from history
    inner join next_snapshots
        on history.snapshot_date = next_snapshots.snapshot_date
    left join history as later
        on
            next_snapshots.next_snapshot = later.snapshot_date
            and history.customer_id = later.customer_id
    where
        next_snapshots.next_snapshot is not null
        and later.customer_id is null

)

select * from gone
