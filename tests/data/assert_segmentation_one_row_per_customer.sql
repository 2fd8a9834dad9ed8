-- customer_segments and customer_value_tiers hold exactly one row per customer_rfm row:
-- a customer missing from either, or one that is not in customer_rfm, is a failure
-- (duplicates are caught by the unique tests on customer_id).
with

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

value_tiers as (

    select * from {{ ref('customer_value_tiers') }}

),

segment_mismatches as (

    select
        coalesce(customer_rfm.customer_id, segments.customer_id) as customer_id,
        'customer_segments' as model_name
    from customer_rfm
    full outer join segments
        on customer_rfm.customer_id = segments.customer_id
    where customer_rfm.customer_id is null or segments.customer_id is null

),

tier_mismatches as (

    select
        coalesce(customer_rfm.customer_id, value_tiers.customer_id) as customer_id,
        'customer_value_tiers' as model_name
    from customer_rfm
    full outer join value_tiers
        on customer_rfm.customer_id = value_tiers.customer_id
    where customer_rfm.customer_id is null or value_tiers.customer_id is null

)

select * from segment_mismatches
union all
select * from tier_mismatches
