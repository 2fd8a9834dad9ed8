-- segment_rules: the leaves split all customers of customer_segments (each matches exactly one
-- rule), the matched customers of the right segment add up to the agreement, and no leaf
-- claims more customers of a segment than it has.
with

rules as (

    select * from {{ ref('segment_rules') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

segment_sizes as (

    select
        segment_id,
        count(*) as customers
    from segments
    group by segment_id

),

rule_totals as (

    select
        sum(customers_matched) as matched,
        sum(customers_in_segment) as in_segment,
        max(agreement) as agreement,
        min(agreement) as min_agreement
    from rules

),

over_claimed as (

    select rules.segment_id
    from rules
    inner join segment_sizes
        on rules.segment_id = segment_sizes.segment_id
    group by rules.segment_id, segment_sizes.customers
    having sum(rules.customers_in_segment) > segment_sizes.customers

)

select
    rule_totals.matched,
    rule_totals.in_segment,
    rule_totals.agreement,
    (select count(*) from segments) as customers
from rule_totals
where
    rule_totals.matched != (select count(*) from segments)
    or rule_totals.agreement != rule_totals.min_agreement
    or abs(rule_totals.in_segment - rule_totals.agreement * rule_totals.matched) > 1e-6
    or exists (select 1 from over_claimed)
