-- One row per snapshot and customer whose loyalty-programme membership changed since the
-- previous snapshot (at the first snapshot: every member, who joined from nothing), with the
-- KMeans segment before ('new' if not yet a customer) and after.
with

history as (

    select * from {{ ref('customer_segment_history') }}

),

snapshots as (

    select distinct snapshot_date from history

),

snapshot_pairs as (

    -- the first snapshot has no previous one: its members all joined
    select
        lag(snapshot_date) over (order by snapshot_date) as previous_snapshot,
        snapshot_date
    from snapshots

),

states as (

    select
        snapshot_pairs.snapshot_date,
        current_states.customer_id,
        coalesce(previous_states.is_loyalty_member, false) as was_member,
        current_states.is_loyalty_member as is_member,
        coalesce(previous_states.segment_name, 'new') as previous_segment,
        current_states.segment_name as new_segment
    from snapshot_pairs
    inner join history as current_states
        on snapshot_pairs.snapshot_date = current_states.snapshot_date
    left join history as previous_states
        on
            snapshot_pairs.previous_snapshot = previous_states.snapshot_date
            and current_states.customer_id = previous_states.customer_id

),

final as (

    select
        -- keys
        cast(snapshot_date as date) as snapshot_date,
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        -- change
        cast(
            case when is_member then 'joined' else 'left' end as {{ dbt.type_string() }}
        ) as change,
        cast(previous_segment as {{ dbt.type_string() }}) as previous_segment,
        cast(new_segment as {{ dbt.type_string() }}) as new_segment
    from states
    where was_member != is_member

)

select * from final
order by snapshot_date, customer_id
