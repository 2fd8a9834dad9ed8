-- One row per segment of customer_segments (k rows): size, revenue and their shares, means and
-- medians in original units, the persona, the centroid and the silhouette of its customers.
{%- set features = validated_var('segment_features') %}
with

segments as (

    select * from {{ ref('customer_segments') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

selection as (

    select * from {{ ref('segment_model_selection') }}

),

silhouettes as (

    select * from {{ ref('segment_silhouettes') }}

),

personas as (

    select * from {{ ref('segment_personas') }}

),

segment_ids as (

    select
        unnest(range(1, k + 1)) as segment_id,
        k
    from selection
    where is_selected

),

totals as (

    select
        max(as_of_date) as as_of_date,
        count(*) as customers,
        sum(monetary) as revenue
    from customer_rfm

),

segment_customers as (

    select
        customer_rfm.*,
        segments.segment_id
    from customer_rfm
    inner join segments
        on customer_rfm.customer_id = segments.customer_id

),

segment_stats as (

    select
        segment_id,
        -- the KMeans centroid with the standardisation undone: log1p and expm1 spelled out,
        -- the mean a compensated (Kahan) sum over the values in ascending order, so that the
        -- order of the rows (a refresh writes them in another) cannot move its last digit
        {%- for feature in features %}
            {%- set logged = 'ln(1 + greatest(cast(' ~ feature ~ ' as double), 0))' %}
            exp(favg({{ logged }} order by {{ logged }})) - 1 as centroid_{{ feature }},
        {%- endfor %}
        count(*) as customers,
        sum(monetary) as revenue,
        avg(recency_days) as mean_recency_days,
        median(recency_days) as median_recency_days,
        avg(frequency) as mean_frequency,
        median(frequency) as median_frequency,
        avg(monetary) as mean_monetary,
        -- decimal(38, 5) holds the mean of the two middle values of an even count exactly
        median(cast(monetary as decimal(38, 5))) as median_monetary,
        avg(avg_order_value) as mean_avg_order_value,
        median(cast(avg_order_value as decimal(38, 5))) as median_avg_order_value,
        avg(distinct_products) as mean_distinct_products,
        median(distinct_products) as median_distinct_products,
        avg(returned_amount) as mean_returned_amount,
        median(cast(returned_amount as decimal(38, 5))) as median_returned_amount,
        avg(return_lines) as mean_return_lines,
        median(return_lines) as median_return_lines
    from segment_customers
    group by segment_id

),

final as (

    select
        -- ids
        cast(segment_ids.segment_id as {{ dbt.type_int() }}) as segment_id,
        cast(
            coalesce(personas.segment_name, 'Segment ' || segment_ids.segment_id)
            as {{ dbt.type_string() }}
        ) as segment_name,
        cast(personas.description as {{ dbt.type_string() }}) as persona_description,
        cast(personas.marketing_action as {{ dbt.type_string() }}) as marketing_action,
        cast(segment_ids.k as {{ dbt.type_int() }}) as k,
        -- size
        cast(coalesce(segment_stats.customers, 0) as {{ dbt.type_bigint() }}) as customers,
        cast(coalesce(segment_stats.customers, 0) as double) / nullif(totals.customers, 0)
            as share_of_customers,
        -- amounts: exact decimal sums, one rounding to double
        cast(coalesce(segment_stats.revenue, 0) as double) as revenue,
        case
            when totals.revenue > 0
                then
                    cast(coalesce(segment_stats.revenue, 0) as double)
                    / cast(totals.revenue as double)
        end as share_of_revenue,
        -- typical customer
        cast(segment_stats.mean_recency_days as double) as mean_recency_days,
        cast(segment_stats.median_recency_days as double) as median_recency_days,
        cast(segment_stats.mean_frequency as double) as mean_frequency,
        cast(segment_stats.median_frequency as double) as median_frequency,
        cast(segment_stats.mean_monetary as double) as mean_monetary,
        cast(segment_stats.median_monetary as double) as median_monetary,
        cast(segment_stats.mean_avg_order_value as double) as mean_avg_order_value,
        cast(segment_stats.median_avg_order_value as double) as median_avg_order_value,
        cast(segment_stats.mean_distinct_products as double) as mean_distinct_products,
        cast(segment_stats.median_distinct_products as double) as median_distinct_products,
        cast(segment_stats.mean_returned_amount as double) as mean_returned_amount,
        cast(segment_stats.median_returned_amount as double) as median_returned_amount,
        cast(segment_stats.mean_return_lines as double) as mean_return_lines,
        cast(segment_stats.median_return_lines as double) as median_return_lines,
        -- centroid in original units, one column per feature of the var segment_features
        {%- for feature in features %}
            cast(segment_stats.centroid_{{ feature }} as double) as centroid_{{ feature }},
        {%- endfor %}
        -- silhouette
        cast(silhouettes.mean_silhouette as double) as mean_silhouette,
        cast(coalesce(silhouettes.silhouette_sample_customers, 0) as {{ dbt.type_bigint() }})
            as silhouette_sample_customers,
        cast(totals.as_of_date as date) as as_of_date
    from segment_ids
    cross join totals
    left join segment_stats
        on segment_ids.segment_id = segment_stats.segment_id
    left join silhouettes
        on segment_ids.segment_id = silhouettes.segment_id
    left join personas
        on segment_ids.k = personas.k and segment_ids.segment_id = personas.rank

)

select * from final
order by segment_id
