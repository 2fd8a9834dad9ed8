-- One row per KMeans segment and per named RFM segment: the lifetime-value forecast over the
-- next clv_horizon_days by the candidate the validation selected, the revenue of the same
-- length of time just past, and that candidate's validation error for the segment's customers.
{%- set horizon_days = validated_var('clv_horizon_days') %}
with

lifetime_value as (

    select * from {{ ref('customer_lifetime_value') }}

),

customer_segments as (

    select * from {{ ref('customer_segments') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

validation_customers as (

    select * from {{ ref('clv_validation_customers') }}

),

validation_summary as (

    select * from {{ ref('clv_validation_summary') }}

),

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

selected_validation as (

    -- the selected candidate's predictions only
    select validation_customers.*
    from validation_customers
    inner join validation_summary
        on
            validation_customers.model = validation_summary.model
            and validation_summary.is_selected

),

past_window as (

    select distinct
        as_of_date,
        cast({{ dbt.dateadd('day', -horizon_days, 'as_of_date') }} as date) as window_start_date
    from customer_rfm

),

past_revenue as (

    -- net revenue (sales minus returns, floored at 0 per customer) in the last
    -- clv_horizon_days before as_of_date
    select
        line_groups.customer_id,
        greatest(sum(line_groups.amount), 0) as past_revenue
    from line_groups
    inner join past_window
        on
            line_groups.invoiced_at >= past_window.window_start_date
            and line_groups.invoiced_at < past_window.as_of_date
    where
        line_groups.customer_id is not null
        and not line_groups.is_guest
    group by line_groups.customer_id

),

customer_labels as (

    select
        customer_rfm.customer_id,
        'kmeans' as segment_kind,
        customer_segments.segment_id,
        customer_segments.segment_name as segment
    from customer_rfm
    inner join customer_segments
        on customer_rfm.customer_id = customer_segments.customer_id

    union all

    select
        customer_id,
        'rfm' as segment_kind,
        cast(null as {{ dbt.type_int() }}) as segment_id,
        rfm_segment as segment
    from customer_rfm

),

forecast as (

    -- the doubles are summed as decimal(38, 12): exact, whatever order the threads add them in
    select
        customer_labels.segment_kind,
        customer_labels.segment,
        min(customer_labels.segment_id) as segment_id,
        min(lifetime_value.model) as model,
        count(*) as customers,
        avg(cast(lifetime_value.p_alive as decimal(38, 12))) as mean_p_alive,
        sum(cast(lifetime_value.expected_purchases as decimal(38, 12))) as expected_purchases,
        sum(cast(lifetime_value.expected_revenue as decimal(38, 12))) as expected_revenue,
        coalesce(sum(past_revenue.past_revenue), 0) as past_revenue
    from customer_labels
    inner join lifetime_value
        on customer_labels.customer_id = lifetime_value.customer_id
    left join past_revenue
        on customer_labels.customer_id = past_revenue.customer_id
    group by customer_labels.segment_kind, customer_labels.segment

),

validation as (

    -- validation customers by their segment as of as_of_date (doubles summed as decimals, as
    -- in forecast, so the sums do not depend on the order DuckDB's threads add them in)
    select
        customer_labels.segment_kind,
        customer_labels.segment,
        count(*) as validation_customers,
        sum(cast(selected_validation.predicted_revenue as decimal(38, 12)))
            as validation_predicted_revenue,
        sum(cast(selected_validation.actual_revenue as decimal(38, 12)))
            as validation_actual_revenue,
        avg(cast(
            abs(selected_validation.predicted_purchases - selected_validation.actual_purchases)
            as decimal(38, 12)
        )) as validation_mae_purchases,
        avg(cast(
            abs(selected_validation.predicted_revenue - selected_validation.actual_revenue)
            as decimal(38, 12)
        )) as validation_mae_revenue
    from customer_labels
    inner join selected_validation
        on customer_labels.customer_id = selected_validation.customer_id
    group by customer_labels.segment_kind, customer_labels.segment

),

final as (

    select
        -- ids
        cast(forecast.segment_kind as {{ dbt.type_string() }}) as segment_kind,
        cast(forecast.segment as {{ dbt.type_string() }}) as segment,
        cast(forecast.segment_id as {{ dbt.type_int() }}) as segment_id,
        cast(forecast.model as {{ dbt.type_string() }}) as model,
        -- forecast
        cast(forecast.customers as {{ dbt.type_bigint() }}) as customers,
        cast(forecast.mean_p_alive as double) as mean_p_alive,
        cast(forecast.expected_purchases as double) as expected_purchases,
        cast(forecast.expected_revenue as double) as expected_revenue,
        cast(forecast.past_revenue as decimal(38, 4)) as past_revenue,
        -- validation
        cast(coalesce(validation.validation_customers, 0) as {{ dbt.type_bigint() }})
            as validation_customers,
        cast(validation.validation_predicted_revenue as double) as validation_predicted_revenue,
        cast(validation.validation_actual_revenue as double) as validation_actual_revenue,
        cast(validation.validation_mae_purchases as double) as validation_mae_purchases,
        cast(validation.validation_mae_revenue as double) as validation_mae_revenue
    from forecast
    left join validation
        on
            forecast.segment_kind = validation.segment_kind
            and forecast.segment = validation.segment

)

select * from final
