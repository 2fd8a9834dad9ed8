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

),

list_count as (

    select count(*) as lists
    from selected

)

select checked.*
from checked
cross join list_count
where
    checked.selected_rows != 1
    or (
        checked.used_method != checked.selected_method
        and not (
            checked.list_kind = 'reorder'
            and checked.selected_method = 'reorder_timing'
            and checked.used_method = 'most_ordered'
        )
    )
    or list_count.lists != 2
