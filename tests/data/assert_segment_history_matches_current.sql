-- At as_of_date the history is the current build: its last snapshot is customer_rfm's
-- as_of_date, and there it holds exactly customer_rfm's customers with their recency,
-- frequency, monetary and rfm_segment and customer_segments' segment_id and segment_name.
with

history as (

    select * from {{ ref('customer_segment_history') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

reference_date as (

    select max(as_of_date) as as_of_date from customer_rfm

),

last_snapshot as (

    select history.*
    from history
    inner join reference_date
        on history.snapshot_date = reference_date.as_of_date

),

current_rows as (

    select
        customer_rfm.customer_id,
        customer_rfm.recency_days,
        customer_rfm.frequency,
        customer_rfm.monetary,
        customer_rfm.rfm_segment,
        segments.segment_id,
        segments.segment_name
    from customer_rfm
    inner join segments
        on customer_rfm.customer_id = segments.customer_id

),

mismatches as (

    select
        coalesce(last_snapshot.customer_id, current_rows.customer_id) as customer_id,
        'differs from customer_rfm or customer_segments at as_of_date' as problem
    from last_snapshot
    full outer join current_rows
        on last_snapshot.customer_id = current_rows.customer_id
    where
        last_snapshot.customer_id is null
        or current_rows.customer_id is null
        or last_snapshot.recency_days != current_rows.recency_days
        or last_snapshot.frequency != current_rows.frequency
        or last_snapshot.monetary != current_rows.monetary
        or last_snapshot.rfm_segment != current_rows.rfm_segment
        or last_snapshot.segment_id != current_rows.segment_id
        or last_snapshot.segment_name != current_rows.segment_name

),

late_snapshots as (

    select
        cast(null as bigint) as customer_id,
        'a snapshot after as_of_date' as problem
    from history
    inner join reference_date
        on history.snapshot_date > reference_date.as_of_date

)

select * from mismatches
union all
select * from late_snapshots
