-- One row per calibration frequency bucket (0, 1, ..., 6 and 7 for 7 or more): mean predicted
-- vs actual repeat purchase days and revenue in the holdout (the standard calibration plot).
with

validation_customers as (

    select * from {{ ref('clv_validation_customers') }}

),

buckets as (

    -- every bucket has its row, with 0 customers when none falls in it
    {{ dbt.generate_series(8) }}

),

bucket_means as (

    -- doubles averaged as decimal(38, 12): exact, whatever order DuckDB's threads add them in
    select
        frequency_bucket,
        count(*) as customers,
        avg(cast(predicted_purchases as decimal(38, 12))) as mean_predicted_purchases,
        avg(cast(actual_purchases as decimal(38, 12))) as mean_actual_purchases,
        avg(cast(predicted_revenue as decimal(38, 12))) as mean_predicted_revenue,
        avg(cast(actual_revenue as decimal(38, 12))) as mean_actual_revenue
    from validation_customers
    group by frequency_bucket

),

final as (

    select
        -- ids
        cast(buckets.generated_number - 1 as {{ dbt.type_int() }}) as frequency_bucket,
        cast(
            case
                when buckets.generated_number = 8 then '7+'
                else cast(buckets.generated_number - 1 as {{ dbt.type_string() }})
            end as {{ dbt.type_string() }}
        ) as frequency_bucket_label,
        -- counts
        cast(coalesce(bucket_means.customers, 0) as {{ dbt.type_bigint() }}) as customers,
        -- means
        cast(bucket_means.mean_predicted_purchases as double) as mean_predicted_purchases,
        cast(bucket_means.mean_actual_purchases as double) as mean_actual_purchases,
        cast(bucket_means.mean_predicted_revenue as double) as mean_predicted_revenue,
        cast(bucket_means.mean_actual_revenue as double) as mean_actual_revenue
    from buckets
    left join bucket_means
        on buckets.generated_number - 1 = bucket_means.frequency_bucket

)

select * from final
