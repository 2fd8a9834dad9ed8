-- Exactly one recommendation method is selected, and customer_recommendations uses it.
with

evaluation as (

    select * from {{ ref('recommendation_evaluation') }}

),

recommendations as (

    select * from {{ ref('customer_recommendations') }}

),

selected as (

    select
        count(*) filter (where is_selected) as selected_rows,
        max(method) filter (where is_selected) as selected_method
    from evaluation

),

used as (

    select distinct method
    from recommendations

)

select
    selected.selected_rows,
    selected.selected_method,
    used.method as used_method
from selected
left join used
    on true
where
    selected.selected_rows != 1
    or used.method != selected.selected_method
