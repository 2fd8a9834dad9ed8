-- One row per loyalty-programme member: the customers of segment 1 of customer_segments with
-- their customer_rfm figures, by customer_id.
with

segments as (

    select * from {{ ref('customer_segments') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

members as (

    select * from segments
    where segment_id = 1

),

final as (

    select
        -- ids
        members.customer_id,
        members.segment_id,
        members.segment_name,
        members.k,
        customer_rfm.country,
        -- timestamps
        customer_rfm.first_purchase_at,
        customer_rfm.last_purchase_at,
        -- rfm
        customer_rfm.recency_days,
        customer_rfm.frequency,
        customer_rfm.monetary,
        -- amounts
        customer_rfm.gross_revenue,
        customer_rfm.returned_amount,
        customer_rfm.avg_order_value,
        -- counts
        customer_rfm.total_items,
        customer_rfm.distinct_products,
        customer_rfm.return_lines,
        customer_rfm.tenure_days,
        -- scores
        customer_rfm.r_score,
        customer_rfm.f_score,
        customer_rfm.m_score,
        customer_rfm.rfm_cell,
        customer_rfm.rfm_segment,
        customer_rfm.as_of_date,
        -- fit
        members.distance_to_centroid
    from members
    inner join customer_rfm
        on members.customer_id = customer_rfm.customer_id

)

select * from final
order by customer_id
