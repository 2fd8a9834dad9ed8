-- One row: who is eligible for the loyalty programme (segment 1 of customer_segments) and how
-- many they are, with their share of customers and of revenue (customer_rfm.monetary), and
-- the entry rule in words from segment_rules.
with

segments as (

    select * from {{ ref('customer_segments') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

segment_rules as (

    select * from {{ ref('segment_rules') }}

),

customers as (

    select
        customer_rfm.*,
        segments.segment_id,
        segments.segment_name,
        segments.k
    from customer_rfm
    left join segments
        on customer_rfm.customer_id = segments.customer_id

),

totals as (

    select
        max(as_of_date) as as_of_date,
        max(k) as k,
        max(segment_name) filter (where segment_id = 1) as segment_name,
        count(*) filter (where segment_id = 1) as members,
        count(*) as customers,
        -- exact decimal sums, one rounding to double
        coalesce(sum(monetary) filter (where segment_id = 1), 0) as revenue,
        coalesce(sum(monetary), 0) as total_revenue,
        avg(monetary) filter (where segment_id = 1) as mean_monetary,
        -- decimal(38, 5) holds the mean of the two middle values of an even count exactly
        median(cast(monetary as decimal(38, 5))) filter (where segment_id = 1)
            as median_monetary,
        avg(frequency) filter (where segment_id = 1) as mean_frequency,
        avg(recency_days) filter (where segment_id = 1) as mean_recency_days
    from customers

),

entry_rules as (

    -- the segment-1 leaves of the rules tree, each in brackets, joined with "or"
    select
        string_agg('(' || rule || ')', ' or ' order by rule_id) as entry_rule,
        sum(customers_in_segment) as entry_rule_members,
        sum(customers_matched) as entry_rule_customers
    from segment_rules
    where segment_id = 1

),

summary as (

    select
        totals.*,
        entry_rules.*
    from totals
    cross join entry_rules

),

final as (

    select
        -- ids
        cast(1 as {{ dbt.type_int() }}) as segment_id,
        cast(segment_name as {{ dbt.type_string() }}) as segment_name,
        cast(k as {{ dbt.type_int() }}) as k,
        -- size
        cast(members as {{ dbt.type_bigint() }}) as members,
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(members as double) / nullif(customers, 0) as share_of_customers,
        -- amounts
        cast(revenue as double) as revenue,
        cast(total_revenue as double) as total_revenue,
        case
            when total_revenue > 0 then cast(revenue as double) / cast(total_revenue as double)
        end as share_of_revenue,
        -- typical member
        cast(mean_monetary as double) as mean_monetary,
        cast(median_monetary as double) as median_monetary,
        cast(mean_frequency as double) as mean_frequency,
        cast(mean_recency_days as double) as mean_recency_days,
        -- rule
        cast(
            'member = customer of segment 1, the KMeans segment with the highest mean monetary '
            || '(net spend) among the k segments of customer_segments'
            as {{ dbt.type_string() }}
        ) as eligibility_rule,
        cast(as_of_date as date) as as_of_date,
        -- entry rule
        cast(entry_rule as {{ dbt.type_string() }}) as entry_rule,
        cast(entry_rule_members as double) / nullif(entry_rule_customers, 0)
            as entry_rule_precision,
        cast(entry_rule_members as double) / nullif(members, 0) as entry_rule_recall
    from summary

)

select * from final
