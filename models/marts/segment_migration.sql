-- One row per pair of consecutive snapshots, segment kind (kmeans, rfm), from-segment and
-- to-segment: how many customers of the later snapshot came from each segment of the earlier
-- one ('new' for customers without a purchase before it), and their share of the from-segment.
with

history as (

    select * from {{ ref('customer_segment_history') }}

),

snapshots as (

    select distinct snapshot_date from history

),

snapshot_pairs as (

    select
        lag(snapshot_date) over (order by snapshot_date) as from_snapshot,
        snapshot_date as to_snapshot
    from snapshots

),

consecutive_pairs as (

    select * from snapshot_pairs
    where from_snapshot is not null

),

customer_states as (

    -- each customer's segment at each snapshot, once per kind
    select
        snapshot_date,
        customer_id,
        'kmeans' as segment_kind,
        segment_name as segment
    from history
    union all
    select
        snapshot_date,
        customer_id,
        'rfm' as segment_kind,
        rfm_segment as segment
    from history

),

moves as (

    -- a customer never leaves the history once present (frequency only grows), so every
    -- customer of the earlier snapshot is in the later one
    select
        consecutive_pairs.from_snapshot,
        consecutive_pairs.to_snapshot,
        to_states.segment_kind,
        coalesce(from_states.segment, 'new') as from_segment,
        to_states.segment as to_segment
    from consecutive_pairs
    inner join customer_states as to_states
        on consecutive_pairs.to_snapshot = to_states.snapshot_date
    left join customer_states as from_states
        on
            consecutive_pairs.from_snapshot = from_states.snapshot_date
            and to_states.customer_id = from_states.customer_id
            and to_states.segment_kind = from_states.segment_kind

),

counted as (

    select
        from_snapshot,
        to_snapshot,
        segment_kind,
        from_segment,
        to_segment,
        count(*) as customers
    from moves
    group by from_snapshot, to_snapshot, segment_kind, from_segment, to_segment

),

final as (

    select
        -- keys
        cast(from_snapshot as date) as from_snapshot,
        cast(to_snapshot as date) as to_snapshot,
        cast(segment_kind as {{ dbt.type_string() }}) as segment_kind,
        cast(from_segment as {{ dbt.type_string() }}) as from_segment,
        cast(to_segment as {{ dbt.type_string() }}) as to_segment,
        -- counts
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(customers as double) / sum(customers) over (
            partition by from_snapshot, segment_kind, from_segment
        ) as share_of_from
    from counted

)

select * from final
order by from_snapshot, segment_kind, from_segment, to_segment
