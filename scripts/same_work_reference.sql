-- The same-work DuckDB reference of scripts/bench.py (issue 16): the work the project's
-- contract requires from the raw lines to the segments, in one DuckDB connection, written to be
-- fast. scripts/bench_references.py runs it step by step (each `-- step:` below, timed) on a
-- view `raw_lines` it creates first (source_file, source_row, has_extra_fields and the eight
-- fields as text: the project's stg_raw_invoice_lines for one file), then fits the segments
-- with the package's own functions. A word between two @ marks a value it fills in: the default
-- vars of the project (macros/var_spec.sql) and the seed's path, each a literal or a number.
--
-- The rules are the models' (stg_invoice_date_formats, stg_invoice_lines,
-- int_invoice_lines_rule_checked, int_invoice_lines (its duplicates), int_order_lines,
-- int_order_line_groups, int_order_products + int_customer_products, quarantined_transactions,
-- customer_rfm + macros customer_rfm_at, rfm_reference_date, tie_safe_quantile_score);
-- tests/pytest/test_bench.py checks it gives the pipeline's numbers. What it does otherwise:
-- one file only, read as the bench writes it; one reference date (customer_rfm's), so no
-- intervals; after the date-format scan, the same four scans of the lines as the models: the
-- repeated hashes, the rejected lines with the duplicate candidates, the line groups, the
-- customer-product pairs (one scan with grouping sets for the last two ran out of memory at
-- 100M lines).

-- step: date_format
-- Month or day first for the file, as stg_invoice_date_formats decides with `auto` for one
-- file: the reading only some rows allow wins when no row allows only the other; rows of
-- both kinds, or every row ambiguous with readings that differ, fail.
set variable invoice_date_format = (
    with

    slash_dates as (

        select
            regexp_extract(
                trim(invoice_date),
                '^([0-9]{1,2})/([0-9]{1,2})/(?:[0-9]{4}|[0-9]{2})(?:[^0-9]|$)',
                ['first_number', 'second_number']
            ) as parts
        from raw_lines
        where contains(invoice_date, '/')

    ),

    numbers as (

        select
            try_cast(parts.first_number as integer) as first_number,
            try_cast(parts.second_number as integer) as second_number
        from slash_dates

    ),

    evidence as (

        select
            count(*) filter (
                where second_number > 12 and first_number between 1 and 12
            ) as month_first_only_rows,
            count(*) filter (
                where first_number > 12 and second_number between 1 and 12
            ) as day_first_only_rows,
            count(*) filter (
                where first_number between 1 and 12
                and second_number between 1 and 12
                and first_number != second_number
            ) as ambiguous_rows
        from numbers

    )

    select
        case
            when month_first_only_rows > 0 and day_first_only_rows > 0
                then error('invoice dates read only month first in some rows, only day first in others')
            when month_first_only_rows > 0 then 'month_first'
            when day_first_only_rows > 0 then 'day_first'
            when ambiguous_rows > 0
                then error('invoice dates read both ways in every row, and the readings differ')
            else 'month_first'
        end
    from evidence
);

-- step: checked_lines
-- Every line typed, with the first rule that rejects it (null: accepted) and the 64-bit hash
-- of its eight fields. A view: each step below reads the file again, as the models do.
create temp view checked_lines as
with

trimmed as (

    select
        source_file,
        source_row,
        has_extra_fields,
        nullif(trim(invoice_no), '') as invoice_no,
        nullif(trim(stock_code), '') as stock_code,
        nullif(trim(description), '') as description,
        nullif(trim(quantity), '') as quantity_text,
        nullif(trim(invoice_date), '') as invoice_date_text,
        nullif(trim(unit_price), '') as unit_price_text,
        nullif(trim(customer_id), '') as customer_id_text,
        nullif(trim(country), '') as country
    from raw_lines

),

parsed as (

    select
        *,
        try_cast(quantity_text as double) as quantity_number,
        try_cast(unit_price_text as decimal(18, 4)) as unit_price,
        try_cast(customer_id_text as double) as customer_id_number,
        coalesce(
            (
                unit_price_text like '%._____%'
                or contains(unit_price_text, 'e')
                or contains(unit_price_text, 'E')
            )
            and try_cast(unit_price_text as decimal(38, 18))
            != try_cast(unit_price_text as decimal(18, 4)),
            false
        ) as is_unit_price_too_precise,
        coalesce(
            case
                when not invoice_date_text glob '[0-9][0-9][0-9][0-9][-/]*' then null
                when
                    length(invoice_date_text) > 16
                    and (
                        suffix(invoice_date_text, 'Z')
                        or invoice_date_text like '%:%+%'
                        or invoice_date_text like '%:%-%'
                    )
                    and regexp_matches(
                        invoice_date_text,
                        '[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$'
                    )
                    then timezone(
                            'UTC',
                            try_cast(
                                regexp_replace(invoice_date_text, ' ([+-][0-9])', '\1')
                                as timestamptz
                            )
                        )
                else try_cast(invoice_date_text as timestamp)
            end,
            case getvariable('invoice_date_format')
                when 'month_first'
                    then try_strptime(
                            invoice_date_text,
                            ['%m/%d/%y %H:%M', '%m/%d/%y %H:%M:%S', '%m/%d/%Y %H:%M', '%m/%d/%Y %H:%M:%S']
                        )
                when 'day_first'
                    then try_strptime(
                            invoice_date_text,
                            ['%d/%m/%y %H:%M', '%d/%m/%y %H:%M:%S', '%d/%m/%Y %H:%M', '%d/%m/%Y %H:%M:%S']
                        )
            end
        ) as invoiced_at
    from trimmed

),

typed as (

    select
        * exclude (quantity_number, customer_id_number),
        case
            when quantity_number = floor(quantity_number)
                and abs(quantity_number) < 1e15
                then cast(quantity_number as bigint)
        end as quantity,
        case
            when customer_id_number = floor(customer_id_number)
                and customer_id_number between 1 and 1e15
                then cast(customer_id_number as bigint)
        end as customer_id,
        starts_with(invoice_no, 'C') or starts_with(invoice_no, 'c') as is_cancellation_invoice
    from parsed

)

select
    *,
    case
        when has_extra_fields then 'too_many_fields'
        when invoice_no is null
            and stock_code is null
            and description is null
            and quantity_text is null
            and invoice_date_text is null
            and unit_price_text is null
            and customer_id_text is null
            and country is null
            then 'blank_row'
        when invoice_no is null
            or stock_code is null
            or quantity_text is null
            or invoice_date_text is null
            or unit_price_text is null
            or country is null
            then 'missing_required_field'
        when quantity is null then 'invalid_quantity'
        when unit_price is null then 'invalid_unit_price'
        when is_unit_price_too_precise then 'unit_price_too_precise'
        when invoiced_at is null then 'invalid_invoice_date'
        -- the window's end is the day after the build day (max_invoice_date's default)
        when
            invoiced_at < cast(@min_invoice_date@ as date)
            or invoiced_at >= cast(timezone('UTC', now()) as date) + interval 2 day
            then 'invoice_date_out_of_range'
        when customer_id_text is not null and customer_id is null then 'invalid_customer_id'
        when
            abs(quantity) >= 1000000000
            or try_cast(quantity * unit_price as decimal(18, 4)) is null
            then 'amount_out_of_range'
        when starts_with(invoice_no, 'A') or starts_with(invoice_no, 'a') then 'adjustment'
        when quantity = 0 then 'zero_quantity'
        when quantity < 0 and not is_cancellation_invoice then 'stock_write_off'
        when quantity > 0 and is_cancellation_invoice then 'cancellation_with_positive_quantity'
        when @excluded_stock_code@ then 'excluded_stock_code'
        when @excluded_country@ then 'excluded_country'
        when unit_price <= @min_unit_price@ then 'unit_price_at_or_below_minimum'
    end as rule_reason
from typed;

-- step: repeated_hashes
-- Exact duplicates, first scan: the hashes of accepted lines seen more than once.
create temp table repeated_hashes as
select
    hash(
        invoice_no, stock_code, description, quantity,
        invoiced_at, unit_price, customer_id, country
    ) as line_hash
from checked_lines
where rule_reason is null and @drop_exact_duplicates@
group by line_hash
having count(*) > 1;

-- step: flagged_lines
-- Second scan: the lines a rule rejects and the accepted lines whose hash repeats (the
-- duplicate candidates), with their values and their text as read.
create temp table flagged_lines as
select
    source_file,
    source_row,
    rule_reason,
    invoice_no,
    stock_code,
    description,
    quantity,
    invoiced_at,
    unit_price,
    customer_id,
    country,
    quantity_text,
    unit_price_text,
    invoice_date_text,
    customer_id_text
from checked_lines
where
    rule_reason is not null
    or hash(
        invoice_no, stock_code, description, quantity,
        invoiced_at, unit_price, customer_id, country
    ) in (select repeated_hashes.line_hash from repeated_hashes);

-- step: duplicate_lines
-- The candidates compared on the eight fields: every copy after the first in file order.
create table duplicate_lines as
with

numbered as (

    select
        * exclude (rule_reason),
        row_number() over (
            partition by
                invoice_no, stock_code, description, quantity,
                invoiced_at, unit_price, customer_id, country
            order by source_row
        ) as copy_number
    from flagged_lines
    where rule_reason is null

)

select * exclude (copy_number)
from numbered
where copy_number > 1;

-- step: quarantined_transactions
-- Every rejected line with its values as read and its one reason.
create table quarantined_transactions as
select
    invoice_no,
    stock_code,
    description,
    quantity_text as quantity,
    unit_price_text as unit_price,
    invoice_date_text as invoiced_at,
    customer_id_text as customer_id,
    country,
    rule_reason as reject_reason,
    source_file,
    source_row
from flagged_lines
where rule_reason is not null
union all
select
    invoice_no,
    stock_code,
    description,
    quantity_text as quantity,
    unit_price_text as unit_price,
    invoice_date_text as invoiced_at,
    customer_id_text as customer_id,
    country,
    'duplicate_line' as reject_reason,
    source_file,
    source_row
from duplicate_lines;

-- step: line_groups
-- Third scan of the accepted lines (guests have no customer_id: guest_policy `exclude`),
-- summed per invoice, customer, timestamp, country and line type (int_order_line_groups).
-- The line groups and the customer x product pairs are two scans, as in the pipeline: one
-- scan with GROUPING SETS ran out of memory at 100M lines (2 GB), the pairs' 63M groups beside
-- the line groups' hash table.
create temp view accepted_lines as
select
    checked_lines.invoice_no,
    checked_lines.stock_code,
    checked_lines.customer_id,
    checked_lines.invoiced_at,
    checked_lines.country,
    case when checked_lines.is_cancellation_invoice then 'return' else 'sale' end as line_type,
    checked_lines.quantity,
    cast(checked_lines.quantity * checked_lines.unit_price as decimal(18, 4)) as line_amount
from checked_lines
anti join duplicate_lines
    on checked_lines.source_row = duplicate_lines.source_row
where checked_lines.rule_reason is null;

create temp table line_groups as
select
    invoice_no,
    customer_id,
    invoiced_at,
    country,
    line_type,
    count(*) as lines,
    sum(quantity) as items,
    sum(line_amount) as amount
from accepted_lines
group by invoice_no, customer_id, invoiced_at, country, line_type;

-- step: customer_products
-- Fourth and last scan: the pairs of customer and product bought (int_customer_products), the
-- exact distinct products of customer_rfm.
create temp table customer_products as
select
    customer_id,
    stock_code
from accepted_lines
where line_type = 'sale' and customer_id is not null
group by customer_id, stock_code;

-- step: customer_rfm
-- One row per customer with a sale: customer_rfm's columns at its reference date (the day
-- after the last accepted line, guests included), scores and named segments.
create table customer_rfm as
with

reference_date as (

    select cast(cast(max(invoiced_at) as date) + interval 1 day as date) as as_of_date
    from line_groups

),

product_counts as (

    select
        customer_id,
        count(*) as distinct_products
    from customer_products
    group by customer_id

),

customer_totals as (

    select
        customer_id,
        min(invoiced_at) filter (where line_type = 'sale') as first_purchase_at,
        max(invoiced_at) filter (where line_type = 'sale') as last_purchase_at,
        count(distinct invoice_no) filter (where line_type = 'sale') as frequency,
        sum(items) filter (where line_type = 'sale') as total_items,
        coalesce(sum(lines) filter (where line_type = 'return'), 0) as return_lines,
        sum(amount) filter (where line_type = 'sale') as gross_revenue,
        coalesce(-sum(amount) filter (where line_type = 'return'), 0) as returned_amount
    from line_groups
    where customer_id is not null
    group by customer_id
    having count(*) filter (where line_type = 'sale') > 0

),

country_invoices as (

    -- the country of most sale invoices; a tie goes to the alphabetically first
    select
        customer_id,
        country,
        row_number() over (
            partition by customer_id
            order by count(distinct invoice_no) desc, country asc
        ) as country_rank
    from line_groups
    where customer_id is not null and line_type = 'sale'
    group by customer_id, country

),

metrics as (

    select
        customer_totals.customer_id,
        reference_date.as_of_date,
        customer_totals.first_purchase_at,
        customer_totals.last_purchase_at,
        date_diff(
            'day', cast(customer_totals.last_purchase_at as date), reference_date.as_of_date
        ) as recency_days,
        customer_totals.frequency,
        customer_totals.gross_revenue,
        customer_totals.returned_amount,
        greatest(customer_totals.gross_revenue - customer_totals.returned_amount, 0) as monetary,
        customer_totals.gross_revenue / customer_totals.frequency as avg_order_value,
        customer_totals.total_items,
        product_counts.distinct_products,
        customer_totals.return_lines,
        date_diff(
            'day', cast(customer_totals.first_purchase_at as date), reference_date.as_of_date
        ) as tenure_days,
        country_invoices.country
    from customer_totals
    cross join reference_date
    inner join product_counts
        on customer_totals.customer_id = product_counts.customer_id
    inner join country_invoices
        on
            customer_totals.customer_id = country_invoices.customer_id
            and country_invoices.country_rank = 1

),

scored as (

    -- tie_safe_quantile_score: equal values share the lowest rank, so the same score
    select
        *,
        cast(
            1 + (@buckets@ * (rank() over (order by recency_days desc) - 1)) // count(*) over ()
            as integer
        ) as r_score,
        cast(
            1 + (@buckets@ * (rank() over (order by frequency asc) - 1)) // count(*) over ()
            as integer
        ) as f_score,
        cast(
            1 + (@buckets@ * (rank() over (order by monetary asc) - 1)) // count(*) over ()
            as integer
        ) as m_score
    from metrics

),

fm_scored as (

    select
        *,
        cast((f_score + m_score) // 2 as integer) as fm_score
    from scored

),

segment_rules as (

    select * from read_csv(@segment_rules_csv@, header = true)

),

score_cells as (

    -- every (r_score, fm_score) pair, rescaled to the 1..5 scale of the rules
    select
        r_values.score as r_score,
        fm_values.score as fm_score,
        1 + floor(4.0 * (r_values.score - 1) / (@buckets@ - 1) + 0.5) as r_on_rule_scale,
        1 + floor(4.0 * (fm_values.score - 1) / (@buckets@ - 1) + 0.5) as fm_on_rule_scale
    from range(1, @buckets@ + 1) as r_values (score)
    cross join range(1, @buckets@ + 1) as fm_values (score)

),

segment_map as (

    -- the first matching rule of each cell wins
    select
        score_cells.r_score,
        score_cells.fm_score,
        arg_min(segment_rules.rfm_segment, segment_rules.rule_order) as rfm_segment
    from score_cells
    inner join segment_rules
        on
            score_cells.r_on_rule_scale
            between segment_rules.r_score_min and segment_rules.r_score_max
            and score_cells.fm_on_rule_scale
            between segment_rules.fm_score_min and segment_rules.fm_score_max
    group by score_cells.r_score, score_cells.fm_score

)

select
    -- ids
    cast(fm_scored.customer_id as bigint) as customer_id,
    fm_scored.as_of_date,
    -- timestamps
    cast(fm_scored.first_purchase_at as timestamp) as first_purchase_at,
    cast(fm_scored.last_purchase_at as timestamp) as last_purchase_at,
    -- metrics
    cast(fm_scored.recency_days as integer) as recency_days,
    cast(fm_scored.frequency as bigint) as frequency,
    cast(fm_scored.gross_revenue as decimal(38, 4)) as gross_revenue,
    cast(fm_scored.returned_amount as decimal(38, 4)) as returned_amount,
    cast(fm_scored.monetary as decimal(38, 4)) as monetary,
    cast(fm_scored.avg_order_value as decimal(38, 4)) as avg_order_value,
    cast(fm_scored.total_items as bigint) as total_items,
    cast(fm_scored.distinct_products as bigint) as distinct_products,
    cast(fm_scored.return_lines as bigint) as return_lines,
    cast(fm_scored.tenure_days as integer) as tenure_days,
    cast(fm_scored.country as varchar) as country,
    -- scores
    fm_scored.r_score,
    fm_scored.f_score,
    fm_scored.m_score,
    concat_ws(
        @cell_separator@, fm_scored.r_score, fm_scored.f_score, fm_scored.m_score
    ) as rfm_cell,
    fm_scored.fm_score,
    coalesce(segment_map.rfm_segment, 'Other') as rfm_segment
from fm_scored
left join segment_map
    on
        fm_scored.r_score = segment_map.r_score
        and fm_scored.fm_score = segment_map.fm_score
order by customer_id;
