-- One row per cut date (the recommendation holdout's and the segment backtest's, one row each
-- when they fall on the same day) and customer with a sale line before it: every
-- customer_rfm column as of the cut, by the macro customer_rfm_at (customer_rfm's one
-- definition). segment_backtest and recommendation_evaluation refit the segments on it.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

customer_products as (

    select * from {{ ref('int_customer_products') }}

),

segment_rules as (

    select * from {{ ref('rfm_segment_rules') }}

),

evaluation_cuts as (

    select * from {{ ref('int_evaluation_cuts') }}

),

cut_dates as (

    select distinct cut_date as as_of_date
    from evaluation_cuts
    where cut_kind in ('recommendation_holdout', 'segment_backtest')

),

cut_rfm as (

    {{ customer_rfm_at('cut_dates', 'line_groups', 'customer_products', 'segment_rules') }}

),

final as (

    select
        as_of_date as cut_date,
        * exclude (as_of_date)
    from cut_rfm

)

select * from final
