-- segment_backtest, unless empty (the customers before the cut could not be segmented): one
-- segment 1 row, the ratio and its interval on no other row, the interval in order, at most k
-- rows, and the revenue shares summing to 1 when there is revenue.
with

backtest as (

    select * from {{ ref('segment_backtest') }}

),

totals as (

    select
        sum(share_of_revenue_after) as total_share,
        sum(revenue_after) as total_revenue,
        count(*) filter (where segment_id = 1) as first_rows,
        count(*) filter (where segment_id != 1 and ratio_vs_rest is not null) as other_ratios,
        count(*) filter (
            where ratio_vs_rest_ci_low > ratio_vs_rest_ci_high
        ) as reversed_intervals,
        max(k) as k,
        count(*) as segments
    from backtest

)

select *
from totals
where
    (total_revenue != 0 and abs(total_share - 1) > 1e-9)
    or (segments > 0 and first_rows != 1)
    or other_ratios > 0
    or reversed_intervals > 0
    or segments > k
