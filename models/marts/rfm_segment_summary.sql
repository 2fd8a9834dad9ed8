-- One row per RFM segment (every segment of the playbook, and any other a customer has):
-- size, revenue and typical recency, frequency and spend, with the marketing playbook.
with

customers as (

    select * from {{ ref('customer_rfm') }}

),

segment_rules as (

    select * from {{ ref('rfm_segment_rules') }}

),

playbook as (

    select * from {{ ref('segment_playbook') }}

),

segment_stats as (

    select
        rfm_segment,
        max(as_of_date) as as_of_date,
        count(*) as customers,
        sum(monetary) as revenue,
        sum(gross_revenue) as gross_revenue,
        sum(returned_amount) as returned_amount,
        count(*) filter (where return_lines > 0) as customers_with_returns,
        avg(recency_days) as mean_recency_days,
        percentile_cont(0.5) within group (order by recency_days) as median_recency_days,
        avg(frequency) as mean_frequency,
        percentile_cont(0.5) within group (order by frequency) as median_frequency,
        avg(monetary) as mean_monetary,
        percentile_cont(0.5) within group (order by monetary) as median_monetary,
        avg(avg_order_value) as mean_avg_order_value,
        avg(distinct_products) as mean_distinct_products
    from customers
    group by rfm_segment

),

segment_first_rules as (

    select
        rfm_segment,
        min(rule_order) as first_rule_order
    from segment_rules
    group by rfm_segment

),

segment_names as (

    select rfm_segment from playbook
    union
    select rfm_segment from segment_stats

),

summary as (

    select
        segment_names.rfm_segment,
        segment_first_rules.first_rule_order,
        segment_stats.as_of_date,
        coalesce(segment_stats.customers, 0) as customers,
        coalesce(segment_stats.revenue, 0) as revenue,
        coalesce(segment_stats.gross_revenue, 0) as gross_revenue,
        coalesce(segment_stats.returned_amount, 0) as returned_amount,
        coalesce(segment_stats.customers_with_returns, 0) as customers_with_returns,
        segment_stats.mean_recency_days,
        segment_stats.median_recency_days,
        segment_stats.mean_frequency,
        segment_stats.median_frequency,
        segment_stats.mean_monetary,
        segment_stats.median_monetary,
        segment_stats.mean_avg_order_value,
        segment_stats.mean_distinct_products,
        playbook.segment_description,
        playbook.recommended_action,
        playbook.incentive
    from segment_names
    left join segment_stats
        on segment_names.rfm_segment = segment_stats.rfm_segment
    left join segment_first_rules
        on segment_names.rfm_segment = segment_first_rules.rfm_segment
    left join playbook
        on segment_names.rfm_segment = playbook.rfm_segment

),

final as (

    select
        -- ids
        cast(rfm_segment as {{ dbt.type_string() }}) as rfm_segment,
        cast(
            row_number() over (order by first_rule_order nulls last, rfm_segment)
            as {{ dbt.type_int() }}
        ) as segment_order,
        cast(max(as_of_date) over () as date) as as_of_date,
        -- size
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(customers as double) / nullif(sum(customers) over (), 0) as customer_share,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        cast(revenue as double) / nullif(cast(sum(revenue) over () as double), 0)
            as revenue_share,
        cast(gross_revenue as decimal(38, 4)) as gross_revenue,
        cast(returned_amount as decimal(38, 4)) as returned_amount,
        cast(customers_with_returns as {{ dbt.type_bigint() }}) as customers_with_returns,
        -- typical customer
        cast(mean_recency_days as double) as mean_recency_days,
        cast(median_recency_days as double) as median_recency_days,
        cast(mean_frequency as double) as mean_frequency,
        cast(median_frequency as double) as median_frequency,
        cast(mean_monetary as double) as mean_monetary,
        cast(median_monetary as double) as median_monetary,
        cast(mean_avg_order_value as double) as mean_avg_order_value,
        cast(mean_distinct_products as double) as mean_distinct_products,
        -- playbook
        cast(segment_description as {{ dbt.type_string() }}) as segment_description,
        cast(recommended_action as {{ dbt.type_string() }}) as recommended_action,
        cast(incentive as {{ dbt.type_string() }}) as incentive
    from summary

)

select * from final
