-- One row per tenth of p_alive (0-0.1, ..., 0.9-1): how many customers the selected model
-- thinks are still active, for the report and BI tools (a small table, not one per customer).
-- A baseline publishes no p_alive: every bin then holds 0 customers.
with

lifetime_value as (

    select * from {{ ref('customer_lifetime_value') }}

),

bins as (

    {{ dbt.generate_series(10) }}

),

binned as (

    -- p_alive = 1 falls in the last bin; a null p_alive (a baseline) in none
    select
        least(floor(p_alive * 10), 9) + 1 as bin_number,
        expected_revenue
    from lifetime_value
    where p_alive is not null

),

bin_totals as (

    -- doubles summed as decimal(38, 12): exact, whatever order DuckDB's threads add them in
    select
        bin_number,
        count(*) as customers,
        sum(cast(expected_revenue as decimal(38, 12))) as expected_revenue
    from binned
    group by bin_number

),

final as (

    select
        -- ids
        cast(bins.generated_number as {{ dbt.type_int() }}) as bin_number,
        cast((bins.generated_number - 1) / 10.0 as double) as p_alive_from,
        cast(bins.generated_number / 10.0 as double) as p_alive_to,
        -- counts
        cast(coalesce(bin_totals.customers, 0) as {{ dbt.type_bigint() }}) as customers,
        -- amounts
        cast(coalesce(bin_totals.expected_revenue, 0) as double) as expected_revenue
    from bins
    left join bin_totals
        on bins.generated_number = bin_totals.bin_number

)

select * from final
