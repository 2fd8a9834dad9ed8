-- One row per calendar day from the first day of the month of the first accepted line to the
-- last day of the month of the last one: MetricFlow's time spine (models/semantic/), and a
-- calendar to join in a BI tool. Whole months at both ends, so a metric by month covers the
-- same months as monthly_kpis, partial months included.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

data_bounds as (

    select
        cast({{ dbt.date_trunc('month', 'min(invoiced_at)') }} as date) as first_month,
        cast({{ dbt.date_trunc('month', 'max(invoiced_at)') }} as date) as last_month
    from line_groups

),

days as (

    -- generate_series: DuckDB; dbt has no cross-database spine whose bounds come from data
    select
        cast(
            unnest(
                generate_series(
                    first_month,
                    cast({{ dbt.last_day('last_month', 'month') }} as date),
                    interval 1 day
                )
            ) as date
        ) as date_day
    from data_bounds

),

final as (

    select cast(date_day as date) as date_day
    from days

)

select * from final
