-- One row per candidate model and calibration frequency bucket (0, 1, ..., 6 and 7 for 7 or
-- more): mean predicted vs actual repeat purchase days and revenue in the holdout (the
-- standard calibration plot), with the candidate clv_validation_summary selected flagged.
with

validation_customers as (

    select * from {{ ref('clv_validation_customers') }}

),

validation_summary as (

    select * from {{ ref('clv_validation_summary') }}

),

bucket_numbers as (

    {{ dbt.generate_series(8) }}

),

buckets as (

    -- every candidate has a row for every bucket, with 0 customers when none falls in it
    select
        validation_summary.model,
        validation_summary.is_selected,
        bucket_numbers.generated_number
    from validation_summary
    cross join bucket_numbers

),

bucket_means as (

    -- doubles averaged as decimal(38, 12): exact, whatever order DuckDB's threads add them in
    select
        model,
        frequency_bucket,
        count(*) as customers,
        avg(cast(predicted_purchases as decimal(38, 12))) as mean_predicted_purchases,
        avg(cast(actual_purchases as decimal(38, 12))) as mean_actual_purchases,
        avg(cast(predicted_revenue as decimal(38, 12))) as mean_predicted_revenue,
        avg(cast(actual_revenue as decimal(38, 12))) as mean_actual_revenue
    from validation_customers
    group by model, frequency_bucket

),

final as (

    select
        -- ids
        cast(buckets.model as {{ dbt.type_string() }}) as model,
        cast(buckets.generated_number - 1 as {{ dbt.type_int() }}) as frequency_bucket,
        cast(
            case
                when buckets.generated_number = 8 then '7+'
                else cast(buckets.generated_number - 1 as {{ dbt.type_string() }})
            end as {{ dbt.type_string() }}
        ) as frequency_bucket_label,
        buckets.is_selected,
        -- counts
        cast(coalesce(bucket_means.customers, 0) as {{ dbt.type_bigint() }}) as customers,
        -- means
        cast(bucket_means.mean_predicted_purchases as double) as mean_predicted_purchases,
        cast(bucket_means.mean_actual_purchases as double) as mean_actual_purchases,
        cast(bucket_means.mean_predicted_revenue as double) as mean_predicted_revenue,
        cast(bucket_means.mean_actual_revenue as double) as mean_actual_revenue
    from buckets
    left join bucket_means
        on
            buckets.model = bucket_means.model
            and buckets.generated_number - 1 = bucket_means.frequency_bucket

)

select * from final
