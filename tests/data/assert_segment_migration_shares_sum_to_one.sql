-- segment_migration: the shares of each from-segment sum to 1, and for each pair and kind the
-- customers add up to customer_segment_history's customers at to_snapshot.
with

migration as (

    select * from {{ ref('segment_migration') }}

),

history as (

    select * from {{ ref('customer_segment_history') }}

),

share_sums as (

    select
        from_snapshot,
        segment_kind,
        from_segment,
        sum(share_of_from) as total_share
    from migration
    group by from_snapshot, segment_kind, from_segment

),

bad_shares as (

    select
        from_snapshot,
        segment_kind,
        from_segment,
        'shares do not sum to 1' as problem
    from share_sums
    where abs(total_share - 1) > 1e-9

),

migrated_customers as (

    select
        from_snapshot,
        to_snapshot,
        segment_kind,
        sum(customers) as customers
    from migration
    group by from_snapshot, to_snapshot, segment_kind

),

snapshot_customers as (

    select
        snapshot_date,
        count(*) as customers
    from history
    group by snapshot_date

),

bad_totals as (

    select
        migrated_customers.from_snapshot,
        migrated_customers.segment_kind,
        cast(null as varchar) as from_segment,
        'customers do not add up to the snapshot' as problem
    from migrated_customers
    left join snapshot_customers
        on migrated_customers.to_snapshot = snapshot_customers.snapshot_date
    where
        snapshot_customers.customers is null
        or migrated_customers.customers != snapshot_customers.customers

)

select * from bad_shares
union all
select * from bad_totals
