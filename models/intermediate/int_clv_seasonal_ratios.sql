-- One row per window the lifetime-value forecast covers: the holdout of the validation
-- (validation) and the clv_horizon_days after as_of_date (forecast). The seasonal baseline
-- scales each customer's past rate by how much busier the same window was 52 weeks earlier
-- than the 52 weeks it starts: purchase days per day in [year_start, year_start + horizon)
-- over purchase days per day in [year_start, window_start). Null when the data do not reach
-- back to year_start (the baseline is then no candidate).
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

evaluation_cuts as (

    select * from {{ ref('int_evaluation_cuts') }}

),

clv_cut as (

    select
        cut_date,
        as_of_date,
        horizon_days
    from evaluation_cuts
    where cut_kind = 'clv_validation'

),

window_starts as (

    select
        'validation' as window_kind,
        cut_date as window_start_date,
        horizon_days
    from clv_cut
    union all
    select
        'forecast' as window_kind,
        as_of_date as window_start_date,
        horizon_days
    from clv_cut

),

windows as (

    -- 52 weeks (364 days) back, so that the weekdays of the two windows line up
    select
        window_kind,
        window_start_date,
        horizon_days,
        cast({{ dbt.dateadd('day', -364, 'window_start_date') }} as date) as year_start_date,
        cast(
            {{ dbt.dateadd('day', 'horizon_days - 364', 'window_start_date') }} as date
        ) as season_end_date
    from window_starts

),

purchase_days as (

    -- a purchase day: an identified customer's day with a sale invoice (as the summaries count)
    select distinct
        customer_id,
        cast(invoiced_at as date) as purchase_date
    from line_groups
    where
        line_type = 'sale'
        and customer_id is not null
        and not is_guest

),

first_purchase as (

    select min(purchase_date) as first_purchase_date
    from purchase_days

),

window_counts as (

    select
        windows.window_kind,
        count(*) filter (
            where purchase_days.purchase_date < windows.window_start_date
        ) as year_purchase_days,
        count(*) filter (
            where purchase_days.purchase_date < windows.season_end_date
        ) as season_purchase_days
    from windows
    inner join purchase_days
        on windows.year_start_date <= purchase_days.purchase_date
    group by windows.window_kind

),

final as (

    select
        -- ids
        cast(windows.window_kind as {{ dbt.type_string() }}) as window_kind,
        -- dates
        cast(windows.window_start_date as date) as window_start_date,
        cast(windows.year_start_date as date) as year_start_date,
        cast(first_purchase.first_purchase_date <= windows.year_start_date as boolean)
            as has_last_year,
        -- counts
        cast(coalesce(window_counts.year_purchase_days, 0) as {{ dbt.type_bigint() }})
            as year_purchase_days,
        cast(coalesce(window_counts.season_purchase_days, 0) as {{ dbt.type_bigint() }})
            as season_purchase_days,
        -- the ratio of the two daily rates
        cast(
            case
                when
                    first_purchase.first_purchase_date <= windows.year_start_date
                    and window_counts.year_purchase_days > 0
                    then
                        (window_counts.season_purchase_days / windows.horizon_days)
                        / (window_counts.year_purchase_days / 364.0)
            end as double
        ) as seasonal_ratio
    from windows
    cross join first_purchase
    left join window_counts
        on windows.window_kind = window_counts.window_kind

)

select * from final
