-- overall_score is the sum of the three cluster numbers, each within 1..clusters_per_dimension,
-- and value_tier follows the documented cut (Low <= n + 1 < Mid <= 2n < High).
with

value_tiers as (

    select * from {{ ref('customer_value_tiers') }}

)

select
    customer_id,
    recency_cluster,
    frequency_cluster,
    monetary_cluster,
    overall_score,
    value_tier,
    clusters_per_dimension
from value_tiers
where
    overall_score != recency_cluster + frequency_cluster + monetary_cluster
    or greatest(recency_cluster, frequency_cluster, monetary_cluster) > clusters_per_dimension
    or least(recency_cluster, frequency_cluster, monetary_cluster) < 1
    or value_tier != case
        when overall_score <= clusters_per_dimension + 1 then 'Low'
        when overall_score <= 2 * clusters_per_dimension then 'Mid'
        else 'High'
    end
