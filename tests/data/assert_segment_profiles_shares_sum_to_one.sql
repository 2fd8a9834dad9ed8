-- The segments split all customers and all identified revenue: shares of customers and of
-- revenue each sum to 1 (revenue only when there is any), and the customer counts and
-- revenue add up to those of customer_segments and customer_rfm.
with

profiles as (

    select * from {{ ref('segment_profiles') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

profile_totals as (

    select
        sum(share_of_customers) as total_share_of_customers,
        sum(share_of_revenue) as total_share_of_revenue,
        sum(customers) as profile_customers,
        sum(revenue) as profile_revenue
    from profiles

),

rfm_totals as (

    select
        count(*) as rfm_customers,
        cast(sum(monetary) as double) as rfm_revenue
    from customer_rfm

)

select
    profile_totals.total_share_of_customers,
    profile_totals.total_share_of_revenue,
    profile_totals.profile_customers,
    rfm_totals.rfm_customers,
    profile_totals.profile_revenue,
    rfm_totals.rfm_revenue
from profile_totals
cross join rfm_totals
where
    abs(profile_totals.total_share_of_customers - 1) > 1e-9
    or (rfm_totals.rfm_revenue > 0 and abs(profile_totals.total_share_of_revenue - 1) > 1e-9)
    or profile_totals.profile_customers != rfm_totals.rfm_customers
    or abs(profile_totals.profile_revenue - rfm_totals.rfm_revenue)
    > 1e-6 * greatest(1, rfm_totals.rfm_revenue)
