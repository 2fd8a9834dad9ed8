{#- Every customer_rfm column per (reference date, customer): a self-contained select (its own
    `with`) over the relations or CTEs named by the arguments. Each line counts once, in the
    interval up to the first reference date after it; running totals over the intervals give
    every date's figures (exact: counts, decimals, min and max). Scores and named segments are
    computed within each reference date. See customer_rfm_at.yml. -#}
{% macro customer_rfm_at(reference_dates, line_groups, customer_products, segment_rules) -%}
{%- set buckets = validated_var('rfm_score_buckets') %}
{#- rfm_cell concatenates the three scores; with 10 buckets a score can have two digits. -#}
{%- set cell_separator = '-' if buckets > 9 else '' %}
with

intervals as (

    -- each reference date and the one before it: the date collects the lines in between
    select
        as_of_date,
        coalesce(
            lag(as_of_date) over (order by as_of_date), cast('0001-01-01' as date)
        ) as previous_date
    from {{ reference_dates }}

),

interval_groups as (

    -- identified line groups before the last reference date, each in its one interval
    select
        intervals.as_of_date,
        line_groups.customer_id,
        line_groups.invoice_no,
        line_groups.country,
        line_groups.line_type,
        line_groups.invoiced_at,
        line_groups.lines,
        line_groups.items,
        line_groups.amount
    from {{ line_groups }} as line_groups
    inner join intervals
        on
            line_groups.invoiced_at < intervals.as_of_date
            and line_groups.invoiced_at >= intervals.previous_date
    where line_groups.customer_id is not null

),

interval_products as (

    -- products by the interval of their first purchase
    select
        intervals.as_of_date,
        customer_products.customer_id,
        count(*) as new_products
    from {{ customer_products }} as customer_products
    inner join intervals
        on
            customer_products.first_purchased_at < intervals.as_of_date
            and customer_products.first_purchased_at >= intervals.previous_date
    group by intervals.as_of_date, customer_products.customer_id

),

interval_totals as (

    -- sums per customer and interval; returns count only in returned_amount and return_lines
    select
        as_of_date,
        customer_id,
        -- timestamps
        min(invoiced_at) filter (where line_type = 'sale') as first_purchase_at,
        max(invoiced_at) filter (where line_type = 'sale') as last_purchase_at,
        -- counts
        count(*) filter (where line_type = 'sale') as sale_groups,
        sum(items) filter (where line_type = 'sale') as total_items,
        sum(lines) filter (where line_type = 'return') as return_lines,
        -- amounts
        sum(amount) filter (where line_type = 'sale') as gross_revenue,
        -sum(amount) filter (where line_type = 'return') as returned_amount
    from interval_groups
    group by as_of_date, customer_id

),

invoice_first_intervals as (

    -- each sale invoice counts from the interval of its first sale line, once per customer and
    -- once per customer and country
    select
        customer_id,
        invoice_no,
        country,
        min(as_of_date) as as_of_date
    from interval_groups
    where line_type = 'sale'
    group by customer_id, invoice_no, country

),

interval_invoices as (

    select
        as_of_date,
        customer_id,
        count(*) as new_invoices
    from (
        select
            customer_id,
            invoice_no,
            min(as_of_date) as as_of_date
        from invoice_first_intervals
        group by customer_id, invoice_no
    ) as customer_invoices
    group by as_of_date, customer_id

),

interval_country_invoices as (

    select
        as_of_date,
        customer_id,
        country,
        count(*) as new_invoices
    from invoice_first_intervals
    group by as_of_date, customer_id, country

),

customer_starts as (

    -- the first interval with anything of the customer's
    select
        customer_id,
        min(as_of_date) as first_interval
    from (
        select
            customer_id,
            as_of_date
        from interval_totals
        union all
        select
            customer_id,
            as_of_date
        from interval_products
    ) as activity
    group by customer_id

),

customer_dates as (

    select
        customer_starts.customer_id,
        intervals.as_of_date
    from customer_starts
    inner join intervals
        on intervals.as_of_date >= customer_starts.first_interval

),

running_totals as (

    -- every reference date's totals: the sums of the intervals up to it
    select
        customer_dates.customer_id,
        customer_dates.as_of_date,
        min(interval_totals.first_purchase_at) over customer_window as first_purchase_at,
        max(interval_totals.last_purchase_at) over customer_window as last_purchase_at,
        sum(interval_totals.sale_groups) over customer_window as sale_groups,
        sum(interval_invoices.new_invoices) over customer_window as frequency,
        sum(interval_totals.total_items) over customer_window as total_items,
        coalesce(sum(interval_totals.return_lines) over customer_window, 0) as return_lines,
        sum(interval_totals.gross_revenue) over customer_window as gross_revenue,
        coalesce(
            sum(interval_totals.returned_amount) over customer_window, 0
        ) as returned_amount,
        sum(interval_products.new_products) over customer_window as distinct_products
    from customer_dates
    left join interval_totals
        on
            customer_dates.customer_id = interval_totals.customer_id
            and customer_dates.as_of_date = interval_totals.as_of_date
    left join interval_invoices
        on
            customer_dates.customer_id = interval_invoices.customer_id
            and customer_dates.as_of_date = interval_invoices.as_of_date
    left join interval_products
        on
            customer_dates.customer_id = interval_products.customer_id
            and customer_dates.as_of_date = interval_products.as_of_date
    window customer_window as (
        partition by customer_dates.customer_id
        order by customer_dates.as_of_date
        rows between unbounded preceding and current row
    )

),

customer_totals as (

    -- customers with at least one sale line (and so a product) before the reference date
    select
        customer_id,
        as_of_date,
        first_purchase_at,
        last_purchase_at,
        cast(frequency as {{ dbt.type_bigint() }}) as frequency,
        total_items,
        return_lines,
        gross_revenue,
        returned_amount,
        distinct_products
    from running_totals
    where sale_groups > 0 and distinct_products > 0

),

country_starts as (

    select
        customer_id,
        country,
        min(as_of_date) as first_interval
    from interval_country_invoices
    group by customer_id, country

),

country_dates as (

    select
        country_starts.customer_id,
        country_starts.country,
        intervals.as_of_date
    from country_starts
    inner join intervals
        on intervals.as_of_date >= country_starts.first_interval

),

country_invoices as (

    select
        country_dates.as_of_date,
        country_dates.customer_id,
        country_dates.country,
        sum(interval_country_invoices.new_invoices) over (
            partition by country_dates.customer_id, country_dates.country
            order by country_dates.as_of_date
            rows between unbounded preceding and current row
        ) as invoices
    from country_dates
    left join interval_country_invoices
        on
            country_dates.customer_id = interval_country_invoices.customer_id
            and country_dates.country is not distinct from interval_country_invoices.country
            and country_dates.as_of_date = interval_country_invoices.as_of_date

),

customer_countries as (

    -- the country of most sale invoices; a tie goes to the alphabetically first
    select
        as_of_date,
        customer_id,
        country,
        row_number() over (
            partition by as_of_date, customer_id
            order by invoices desc, country asc
        ) as country_rank
    from country_invoices

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
        customer_totals.distinct_products,
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
