-- One row per check that refits a model on the lines before a cut and scores the days after
-- it: the lifetime-value validation, the recommendation holdout and the segment backtest. The
-- one place each cut is computed (as_of_date minus the check's horizon var); the SQL and
-- Python models of each check read their cut from here.
{%- set clv_days = validated_var('clv_horizon_days') %}
{%- set holdout_days = validated_var('recommendation_holdout_days') %}
{%- set backtest_days = validated_var('backtest_horizon_days') %}
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

reference_date as (

    -- customer_rfm's reference date, by the same macro (an intermediate model may not read
    -- the mart; a singular test holds the two equal)
    {{ rfm_reference_date('line_groups') }}

),

horizons as (

    select
        'clv_validation' as cut_kind,
        {{ clv_days }} as horizon_days
    union all
    select
        'recommendation_holdout' as cut_kind,
        {{ holdout_days }} as horizon_days
    union all
    select
        'segment_backtest' as cut_kind,
        {{ backtest_days }} as horizon_days

),

final as (

    select
        -- ids
        cast(horizons.cut_kind as {{ dbt.type_string() }}) as cut_kind,
        -- dates
        cast(
            {{ dbt.dateadd('day', '-horizons.horizon_days', 'reference_date.as_of_date') }}
            as date
        ) as cut_date,
        cast(reference_date.as_of_date as date) as as_of_date,
        -- settings
        cast(horizons.horizon_days as {{ dbt.type_int() }}) as horizon_days
    from horizons
    cross join reference_date

)

select * from final
