-- One row per customer of customer_rfm who is not a guest: the inputs of the lifetime-value
-- models (BG/NBD, Gamma-Gamma) from the sale days before as_of_date, time unit days.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

customer_rfm as (

    select * from {{ ref('customer_rfm') }}

),

reference_date as (

    -- THE reference date is customer_rfm's; the summary counts the lines before it
    select distinct as_of_date as cut_date
    from customer_rfm

),

summary as (

    {{ lifetime_summary('line_groups', 'reference_date') }}

),

final as (

    select
        -- ids
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(cut_date as date) as as_of_date,
        -- dates
        cast(first_purchase_date as date) as first_purchase_date,
        cast(last_purchase_date as date) as last_purchase_date,
        -- model inputs
        cast(frequency as {{ dbt.type_bigint() }}) as frequency,
        cast(recency as {{ dbt.type_int() }}) as recency,
        cast(t as {{ dbt.type_int() }}) as t,
        cast(monetary_value as double) as monetary_value,
        -- amounts
        cast(gross_revenue as decimal(38, 4)) as gross_revenue,
        cast(returned_amount as decimal(38, 4)) as returned_amount
    from summary

)

select * from final
