-- Exactly one method per list is selected, customer_recommendations uses the new list's and
-- customer_reorder_recommendations the re-order list's (or most_ordered, when the last window
-- left reorder_timing nothing to learn from).
with

evaluation as (

    select * from {{ ref('recommendation_evaluation') }}

),

recommendations as (

    select * from {{ ref('customer_recommendations') }}

),

reorder_recommendations as (

    select * from {{ ref('customer_reorder_recommendations') }}

),

selected as (

    select
        list_kind,
        count(*) filter (where is_selected) as selected_rows,
        max(method) filter (where is_selected) as selected_method
    from evaluation
    group by list_kind

),

used as (

    select distinct
        'new' as list_kind,
        method
    from recommendations
    union all
    select distinct
        'reorder' as list_kind,
        method
    from reorder_recommendations

),

checked as (

    select
        selected.list_kind,
        selected.selected_rows,
        selected.selected_method,
        used.method as used_method
    from selected
    left join used
        on selected.list_kind = used.list_kind

)

select *
from checked
where
    selected_rows != 1
    or (
        used_method != selected_method
        and not (
            list_kind = 'reorder'
            and selected_method = 'reorder_timing'
            and used_method = 'most_ordered'
        )
    )
    or (select count(distinct list_kind) from selected) != 2
