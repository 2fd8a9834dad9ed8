-- The lifetime summaries hold their definitions: recency <= t, one-day customers have recency
-- and monetary_value 0, and the netted spend of the repeat days never exceeds customer_rfm's
-- monetary (sales minus returns, floored at 0); the calibration's reference date is
-- customer_rfm's. Returns the offending rows.
with

lifetime_summary as (

    select * from {{ ref('customer_lifetime_summary') }}

),

calibration as (

    select * from {{ ref('int_clv_calibration') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

summary_problems as (

    select
        lifetime_summary.customer_id,
        'summary' as problem_in
    from lifetime_summary
    inner join customer_rfm
        on lifetime_summary.customer_id = customer_rfm.customer_id
    where
        lifetime_summary.recency > lifetime_summary.t
        or (
            lifetime_summary.frequency = 0
            and (lifetime_summary.recency <> 0 or lifetime_summary.monetary_value <> 0)
        )
        or lifetime_summary.monetary_value * lifetime_summary.frequency
        > cast(customer_rfm.monetary as double) + 0.0001
        or lifetime_summary.as_of_date <> customer_rfm.as_of_date

),

calibration_problems as (

    select
        calibration.customer_id,
        'calibration' as problem_in
    from calibration
    where
        calibration.recency > calibration.t
        or calibration.as_of_date not in (select customer_rfm.as_of_date from customer_rfm)

)

select * from summary_problems
union all
select * from calibration_problems
