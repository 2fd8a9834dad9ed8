{#- Every customer_rfm column per (reference date, customer): a self-contained select (its own
    `with`) over the relations or CTEs named by the arguments. Scores and named segments are
    computed within each reference date. See customer_rfm_at.yml. -#}
{% macro customer_rfm_at(reference_dates, line_groups, customer_products, segment_rules) -%}
{%- set buckets = validated_var('rfm_score_buckets') %}
{#- rfm_cell concatenates the three scores; with 10 buckets a score can have two digits. -#}
{%- set cell_separator = '-' if buckets > 9 else '' %}
with

groups_before_as_of as (

    select
        reference_dates.as_of_date,
        line_groups.*
    from {{ line_groups }} as line_groups
    inner join {{ reference_dates }} as reference_dates
        on line_groups.invoiced_at < reference_dates.as_of_date
    where line_groups.customer_id is not null

),

products_before_as_of as (

    -- distinct products: the products a customer had first bought before the reference date
    select
        reference_dates.as_of_date,
        customer_products.customer_id,
        count(*) as distinct_products
    from {{ customer_products }} as customer_products
    inner join {{ reference_dates }} as reference_dates
        on customer_products.first_purchased_at < reference_dates.as_of_date
    group by reference_dates.as_of_date, customer_products.customer_id

),

customer_totals as (

    -- customers with at least one sale line before the reference date; returns count only
    -- in returned_amount and return_lines
    select
        as_of_date,
        customer_id,
        -- timestamps
        min(invoiced_at) filter (where line_type = 'sale') as first_purchase_at,
        max(invoiced_at) filter (where line_type = 'sale') as last_purchase_at,
        -- counts
        count(distinct invoice_no) filter (where line_type = 'sale') as frequency,
        sum(items) filter (where line_type = 'sale') as total_items,
        coalesce(sum(lines) filter (where line_type = 'return'), 0) as return_lines,
        -- amounts
        sum(amount) filter (where line_type = 'sale') as gross_revenue,
        coalesce(-sum(amount) filter (where line_type = 'return'), 0) as returned_amount
    from groups_before_as_of
    group by as_of_date, customer_id
    having count(*) filter (where line_type = 'sale') > 0

),

customer_countries as (

    -- the country of most sale invoices; a tie goes to the alphabetically first
    select
        as_of_date,
        customer_id,
        country,
        row_number() over (
            partition by as_of_date, customer_id
            order by count(distinct invoice_no) desc, country asc
        ) as country_rank
    from groups_before_as_of
    where line_type = 'sale'
    group by as_of_date, customer_id, country

),

customer_metrics as (

    select
        customer_totals.customer_id,
        customer_totals.as_of_date,
        customer_totals.first_purchase_at,
        customer_totals.last_purchase_at,
        {{ dbt.datediff(
            'cast(customer_totals.last_purchase_at as date)',
            'customer_totals.as_of_date',
            'day',
        ) }} as recency_days,
        customer_totals.frequency,
        customer_totals.gross_revenue,
        customer_totals.returned_amount,
        greatest(customer_totals.gross_revenue - customer_totals.returned_amount, 0) as monetary,
        customer_totals.gross_revenue / customer_totals.frequency as avg_order_value,
        customer_totals.total_items,
        products_before_as_of.distinct_products,
        customer_totals.return_lines,
        {{ dbt.datediff(
            'cast(customer_totals.first_purchase_at as date)',
            'customer_totals.as_of_date',
            'day',
        ) }} as tenure_days,
        customer_countries.country
    from customer_totals
    inner join customer_countries
        on
            customer_totals.as_of_date = customer_countries.as_of_date
            and customer_totals.customer_id = customer_countries.customer_id
            and customer_countries.country_rank = 1
    inner join products_before_as_of
        on
            customer_totals.as_of_date = products_before_as_of.as_of_date
            and customer_totals.customer_id = products_before_as_of.customer_id

),

scored as (

    select
        *,
        {{ tie_safe_quantile_score('recency_days', buckets, lower_is_better=true, partition_by='as_of_date') }} as r_score,
        {{ tie_safe_quantile_score('frequency', buckets, partition_by='as_of_date') }} as f_score,
        {{ tie_safe_quantile_score('monetary', buckets, partition_by='as_of_date') }} as m_score
    from customer_metrics

),

fm_scored as (

    select
        *,
        cast((f_score + m_score) // 2 as {{ dbt.type_int() }}) as fm_score
    from scored

),

score_values as (

    {{ dbt.generate_series(buckets) }}

),

score_cells as (

    -- every (r_score, fm_score) pair, with both scores rescaled to the 1..5 scale of the
    -- rules: 1 + round(4 * (score - 1) / (buckets - 1)), halves up (identity for 5 buckets)
    select
        r_values.generated_number as r_score,
        fm_values.generated_number as fm_score,
        1 + floor(4.0 * (r_values.generated_number - 1) / ({{ buckets }} - 1) + 0.5)
            as r_score_on_rule_scale,
        1 + floor(4.0 * (fm_values.generated_number - 1) / ({{ buckets }} - 1) + 0.5)
            as fm_score_on_rule_scale
    from score_values as r_values
    cross join score_values as fm_values

),

cell_matches as (

    select
        score_cells.r_score,
        score_cells.fm_score,
        segment_rules.rfm_segment,
        row_number() over (
            partition by score_cells.r_score, score_cells.fm_score
            order by segment_rules.rule_order
        ) as match_rank
    from score_cells
    inner join {{ segment_rules }} as segment_rules
        on
            score_cells.r_score_on_rule_scale
            between segment_rules.r_score_min and segment_rules.r_score_max
            and score_cells.fm_score_on_rule_scale
            between segment_rules.fm_score_min and segment_rules.fm_score_max

),

segment_map as (

    -- the first matching rule of each cell wins
    select
        r_score,
        fm_score,
        rfm_segment
    from cell_matches
    where match_rank = 1

),

segmented as (

    select
        fm_scored.*,
        coalesce(segment_map.rfm_segment, 'Other') as rfm_segment
    from fm_scored
    left join segment_map
        on
            fm_scored.r_score = segment_map.r_score
            and fm_scored.fm_score = segment_map.fm_score

)

select
    -- ids
    cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
    cast(as_of_date as date) as as_of_date,
    -- timestamps
    cast(first_purchase_at as {{ dbt.type_timestamp() }}) as first_purchase_at,
    cast(last_purchase_at as {{ dbt.type_timestamp() }}) as last_purchase_at,
    -- metrics
    cast(recency_days as {{ dbt.type_int() }}) as recency_days,
    cast(frequency as {{ dbt.type_bigint() }}) as frequency,
    cast(gross_revenue as decimal(38, 4)) as gross_revenue,
    cast(returned_amount as decimal(38, 4)) as returned_amount,
    cast(monetary as decimal(38, 4)) as monetary,
    cast(avg_order_value as decimal(38, 4)) as avg_order_value,
    cast(total_items as {{ dbt.type_bigint() }}) as total_items,
    cast(distinct_products as {{ dbt.type_bigint() }}) as distinct_products,
    cast(return_lines as {{ dbt.type_bigint() }}) as return_lines,
    cast(tenure_days as {{ dbt.type_int() }}) as tenure_days,
    cast(country as {{ dbt.type_string() }}) as country,
    -- scores
    r_score,
    f_score,
    m_score,
    cast({{ dbt.concat([
        'cast(r_score as ' ~ dbt.type_string() ~ ')',
        "'" ~ cell_separator ~ "'",
        'cast(f_score as ' ~ dbt.type_string() ~ ')',
        "'" ~ cell_separator ~ "'",
        'cast(m_score as ' ~ dbt.type_string() ~ ')',
    ]) }} as {{ dbt.type_string() }}) as rfm_cell,
    fm_score,
    cast(rfm_segment as {{ dbt.type_string() }}) as rfm_segment
from segmented
{%- endmacro %}
