-- One row per customer with at least one sale before the reference date: RFM metrics,
-- tie-safe quantile scores and the named segment of seeds/rfm_segment_rules.csv. The body is
-- the macro customer_rfm_at, which customer_segment_history's snapshots share.
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

reference_date as (

    -- the one place as_of_date is applied (macro rfm_reference_date): the var, or by default
    -- the day after the last line of all (sale or return, guest or not)
    {{ rfm_reference_date('line_groups') }}

),

final as (

    {{ customer_rfm_at('reference_date', 'line_groups', 'customer_products', 'segment_rules') }}

)

select * from final
