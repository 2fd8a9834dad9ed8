-- Exactly one k of the model selection is selected, and customer_segments and
-- segment_profiles use that k (so the three Python models agree on one segmentation).
with

selection as (

    select * from {{ ref('segment_model_selection') }}

),

segments as (

    select * from {{ ref('customer_segments') }}

),

profiles as (

    select * from {{ ref('segment_profiles') }}

),

selected as (

    select
        count(*) filter (where is_selected) as selected_rows,
        max(k) filter (where is_selected) as selected_k
    from selection

),

segment_ks as (

    select
        count(distinct k) as distinct_k,
        max(k) as segment_k,
        max(segment_id) as max_segment_id,
        count(distinct segment_id) as segments_used
    from segments

),

profile_ks as (

    select
        count(*) as profile_rows,
        max(k) as profile_k
    from profiles

)

select
    selected.selected_rows,
    selected.selected_k,
    segment_ks.distinct_k,
    segment_ks.segment_k,
    segment_ks.max_segment_id,
    segment_ks.segments_used,
    profile_ks.profile_rows,
    profile_ks.profile_k
from selected
cross join segment_ks
cross join profile_ks
where
    selected.selected_rows != 1
    or segment_ks.distinct_k != 1
    or segment_ks.segment_k != selected.selected_k
    or segment_ks.max_segment_id != selected.selected_k
    or segment_ks.segments_used != selected.selected_k
    or profile_ks.profile_rows != selected.selected_k
    or profile_ks.profile_k != selected.selected_k
