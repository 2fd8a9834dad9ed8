-- One row per lifetime-value candidate (the baselines and the transaction models, each with
-- Gamma-Gamma) refitted before the validation cut: its predictions against the holdout that
-- followed, in total and by mean absolute error, next to the naive baseline's error, and the
-- one candidate selected by its holdout error (the rule in selection_rule).
{%- set tie_percent = 1 %}
with

validation_customers as (

    select * from {{ ref('clv_validation_customers') }}

),

evaluation_cuts as (

    select * from {{ ref('int_evaluation_cuts') }}

),

validation_cut as (

    select
        cut_date,
        as_of_date
    from evaluation_cuts
    where cut_kind = 'clv_validation'

),

candidate_totals as (

    -- doubles summed as decimal(38, 12): exact, whatever order DuckDB's threads add them in
    select
        model,
        count(*) as customers,
        count(*) filter (where is_short_history) as short_history_customers,
        sum(cast(predicted_purchases as decimal(38, 12))) as predicted_purchases,
        sum(actual_purchases) as actual_purchases,
        sum(cast(predicted_revenue as decimal(38, 12))) as predicted_revenue,
        sum(cast(actual_revenue as decimal(38, 12))) as actual_revenue,
        avg(cast(abs(predicted_purchases - actual_purchases) as decimal(38, 12)))
            as mae_purchases,
        avg(cast(abs(predicted_revenue - actual_revenue) as decimal(38, 12)))
            as mae_revenue
    from validation_customers
    group by model

),

ranked as (

    -- simplicity: the order a tie goes in (customer_segmentation.clv.CANDIDATES)
    select
        candidate_totals.*,
        case candidate_totals.model
            when 'naive_baseline' then 1
            when 'seasonal_baseline' then 2
            when 'bg_nbd' then 3
            when 'mbg_nbd' then 4
            when 'pareto_nbd' then 5
        end as simplicity,
        min(candidate_totals.mae_revenue) over () as best_mae_revenue,
        max(candidate_totals.mae_purchases) filter (
            where candidate_totals.model = 'naive_baseline'
        ) over () as baseline_mae_purchases,
        max(candidate_totals.mae_revenue) filter (
            where candidate_totals.model = 'naive_baseline'
        ) over () as baseline_mae_revenue
    from candidate_totals

),

tied as (

    -- within {{ tie_percent }}% of the lowest error counts as a tie
    select
        *,
        mae_revenue <= best_mae_revenue * {{ 1 + tie_percent / 100 }} as is_tied_with_best
    from ranked

),

selected as (

    select
        *,
        row_number() over (
            order by is_tied_with_best desc, simplicity asc
        ) = 1 as is_selected
    from tied

),

final as (

    select
        -- ids
        cast(selected.model as {{ dbt.type_string() }}) as model,
        -- counts
        cast(selected.customers as {{ dbt.type_bigint() }}) as customers,
        cast(selected.short_history_customers as {{ dbt.type_bigint() }})
            as short_history_customers,
        -- dates
        cast({{ dbt.dateadd('day', -1, 'validation_cut.cut_date') }} as date)
            as calibration_end_date,
        cast({{ dbt.dateadd('day', -1, 'validation_cut.as_of_date') }} as date)
            as holdout_end_date,
        -- totals
        cast(selected.predicted_purchases as double) as predicted_purchases,
        cast(selected.actual_purchases as {{ dbt.type_bigint() }}) as actual_purchases,
        cast(selected.predicted_revenue as double) as predicted_revenue,
        cast(selected.actual_revenue as double) as actual_revenue,
        -- errors
        cast(selected.mae_purchases as double) as mae_purchases,
        cast(selected.baseline_mae_purchases as double) as baseline_mae_purchases,
        cast(selected.mae_revenue as double) as mae_revenue,
        cast(selected.baseline_mae_revenue as double) as baseline_mae_revenue,
        -- selection
        selected.is_selected,
        cast(
            'lowest mae_revenue (mean absolute error of holdout revenue per customer); a '
            || 'candidate within {{ tie_percent }}% of the lowest counts as tied, and a '
            || 'tie goes to the simpler, in the order naive_baseline, seasonal_baseline, '
            || 'bg_nbd, mbg_nbd, pareto_nbd'
            as {{ dbt.type_string() }}
        ) as selection_rule
    from selected
    cross join validation_cut

)

select * from final
