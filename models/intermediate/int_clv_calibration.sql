-- One row per customer with a sale before the validation cut (as_of_date - clv_horizon_days),
-- guests excluded: the lifetime summary at the cut and what the customer did in the holdout
-- [cut, as_of_date) that followed. clv_validation_customers refits the candidates on it.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

evaluation_cuts as (

    select * from {{ ref('int_evaluation_cuts') }}

),

validation_cut as (

    -- the cut, as_of_date - clv_horizon_days (int_evaluation_cuts, the one place)
    select
        as_of_date,
        cut_date
    from evaluation_cuts
    where cut_kind = 'clv_validation'

),

calibration_summary as (

    {{ lifetime_summary('line_groups', 'validation_cut') }}

),

holdout_lines as (

    select
        line_groups.customer_id,
        cast(line_groups.invoiced_at as date) as invoiced_date,
        line_groups.line_type,
        line_groups.amount
    from line_groups
    inner join validation_cut
        on
            line_groups.invoiced_at >= validation_cut.cut_date
            and line_groups.invoiced_at < validation_cut.as_of_date
    where
        line_groups.customer_id is not null
        and not line_groups.is_guest

),

holdout_totals as (

    -- every holdout purchase day of a calibration customer is a repeat purchase day
    select
        customer_id,
        count(distinct invoiced_date) filter (where line_type = 'sale') as holdout_purchase_days,
        greatest(sum(amount), 0) as holdout_revenue
    from holdout_lines
    group by customer_id

),

final as (

    select
        -- ids
        cast(calibration_summary.customer_id as {{ dbt.type_bigint() }}) as customer_id,
        -- dates
        cast({{ dbt.dateadd('day', -1, 'validation_cut.cut_date') }} as date)
            as calibration_end_date,
        cast(validation_cut.cut_date as date) as holdout_start_date,
        cast({{ dbt.dateadd('day', -1, 'validation_cut.as_of_date') }} as date)
            as holdout_end_date,
        cast(validation_cut.as_of_date as date) as as_of_date,
        -- calibration summary
        cast(calibration_summary.frequency as {{ dbt.type_bigint() }}) as frequency,
        cast(calibration_summary.recency as {{ dbt.type_int() }}) as recency,
        cast(calibration_summary.t as {{ dbt.type_int() }}) as t,
        cast(calibration_summary.monetary_value as double) as monetary_value,
        -- holdout actuals
        cast(coalesce(holdout_totals.holdout_purchase_days, 0) as {{ dbt.type_bigint() }})
            as holdout_purchase_days,
        cast(coalesce(holdout_totals.holdout_revenue, 0) as decimal(38, 4)) as holdout_revenue
    from calibration_summary
    cross join validation_cut
    left join holdout_totals
        on calibration_summary.customer_id = holdout_totals.customer_id

)

select * from final
