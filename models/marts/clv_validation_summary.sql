-- One row: the lifetime-value models refitted before the validation cut, against the holdout
-- that followed, in total and by mean absolute error, next to the naive baseline.
with

validation_customers as (

    select * from {{ ref('clv_validation_customers') }}

),

totals as (

    -- doubles summed as decimal(38, 12): exact, whatever order DuckDB's threads add them in
    select
        count(*) as customers,
        count(*) filter (where is_short_history) as short_history_customers,
        max(calibration_end_date) as calibration_end_date,
        max(holdout_end_date) as holdout_end_date,
        sum(cast(predicted_purchases as decimal(38, 12))) as predicted_purchases,
        sum(actual_purchases) as actual_purchases,
        sum(cast(predicted_revenue as decimal(38, 12))) as predicted_revenue,
        sum(cast(actual_revenue as decimal(38, 12))) as actual_revenue,
        avg(cast(abs(predicted_purchases - actual_purchases) as decimal(38, 12)))
            as mae_purchases,
        avg(cast(abs(baseline_purchases - actual_purchases) as decimal(38, 12)))
            as baseline_mae_purchases,
        avg(cast(abs(predicted_revenue - actual_revenue) as decimal(38, 12)))
            as mae_revenue,
        avg(cast(abs(baseline_revenue - actual_revenue) as decimal(38, 12)))
            as baseline_mae_revenue
    from validation_customers

),

final as (

    select
        -- counts
        cast(customers as {{ dbt.type_bigint() }}) as customers,
        cast(short_history_customers as {{ dbt.type_bigint() }}) as short_history_customers,
        -- dates
        cast(calibration_end_date as date) as calibration_end_date,
        cast(holdout_end_date as date) as holdout_end_date,
        -- totals
        cast(predicted_purchases as double) as predicted_purchases,
        cast(actual_purchases as {{ dbt.type_bigint() }}) as actual_purchases,
        cast(predicted_revenue as double) as predicted_revenue,
        cast(actual_revenue as double) as actual_revenue,
        -- errors
        cast(mae_purchases as double) as mae_purchases,
        cast(baseline_mae_purchases as double) as baseline_mae_purchases,
        cast(mae_revenue as double) as mae_revenue,
        cast(baseline_mae_revenue as double) as baseline_mae_revenue
    from totals

)

select * from final
