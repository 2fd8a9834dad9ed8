{#- The model (customer_rfm) holds at least one customer. When it holds none, every model
    after it would fail on an empty table with a message about itself, so this test stops the
    build first (it errors, and dbt build skips what follows the model) saying what happened:
    how many rows were read and quarantined for which reasons, with the var that decides each
    reason, or that no accepted line has a customer, or that as_of_date is before the first
    sale. -#}
{% test has_customers(model) %}
{#- the refs outside the branch below, so that dbt sees them when it parses the test -#}
{%- set input_files = ref('stg_input_files') %}
{%- set invoice_lines = ref('int_invoice_lines') %}
{%- set line_groups = ref('int_order_line_groups') %}
{#- the message's aggregates are computed only when there is something to explain -#}
{%- set relation = load_relation(model) if execute else none %}
{%- if relation is none or run_query('select count(*) from ' ~ relation).columns[0].values()[0] > 0 %}
select 1 as failure
where false
{%- else %}
{%- set as_of_date = validated_var('as_of_date') %}
{%- set date_window = invoice_date_window() %}
{%- set vars_of_reasons = {
    'invalid_invoice_date': 'invoice_date_format = ' ~ validated_var('invoice_date_format')
        ~ '; staging.stg_invoice_date_formats shows how each file was read',
    'invoice_date_out_of_range': 'min_invoice_date = ' ~ date_window.min
        ~ ', max_invoice_date = ' ~ date_window.max,
    'excluded_stock_code': 'exclude_stock_codes',
    'excluded_country': 'excluded_countries',
    'unit_price_at_or_below_minimum': 'min_unit_price = ' ~ validated_var('min_unit_price'),
    'unit_price_too_precise': 'round_unit_prices = false',
    'duplicate_line': 'drop_exact_duplicates',
} %}

with

customers as (

    select count(*) as customers from {{ model }}

),

files as (

    select count(*) as files from {{ input_files }}

),

-- the verdicts of quarantined_transactions, from the model customer_rfm is built from: dbt
-- build skips what follows customer_rfm when this test errors only if all it reads comes
-- before customer_rfm
reasons as (

    select
        reject_reason,
        count(*) as lines
    from {{ invoice_lines }}
    where reject_reason is not null
    group by reject_reason

),

quarantine as (

    select
        coalesce(sum(lines), 0) as lines_quarantined,
        string_agg(
            reject_reason || ' ' || format('{:,}', lines)
            || case reject_reason
                {%- for reason, var_text in vars_of_reasons.items() %}
                    when {{ sql_string_literal(reason) }}
                        then {{ sql_string_literal(' (var ' ~ var_text ~ ')') }}
                {%- endfor %}
                else ''
            end,
            ', '
            order by lines desc, reject_reason
        ) as reasons
    from reasons

),

accepted as (

    select
        coalesce(sum(lines), 0) as lines_accepted,
        coalesce(sum(lines) filter (where customer_id is not null), 0) as customer_lines,
        min(invoiced_at) filter (
            where customer_id is not null and line_type = 'sale'
        ) as first_customer_sale_at,
        max(invoiced_at) as last_line_at
    from {{ line_groups }}

),

explained as (

    select
        case
            when accepted.lines_accepted = 0
                then 'no input line was accepted: all '
                    || format('{:,}', quarantine.lines_quarantined)
                    || ' rows of ' || files.files || ' file(s) were quarantined ('
                    || coalesce(quarantine.reasons, 'no reason') || ')'
            when accepted.customer_lines = 0
                then format('{:,}', accepted.lines_accepted) || ' lines were accepted, none '
                    || 'with a customer id: var guest_policy = '
                    || {{ sql_string_literal(validated_var('guest_policy')) }}
                    || ' keeps guest lines out of the customers (guest_policy: per_invoice '
                    || 'makes each guest invoice a customer)'
            {%- if as_of_date is not none %}
            when accepted.first_customer_sale_at >= cast({{ sql_string_literal(as_of_date) }} as date)
                then 'var as_of_date = {{ as_of_date }} is not after the first sale to a '
                    || 'customer (' || strftime(accepted.first_customer_sale_at, '%Y-%m-%d %H:%M')
                    || ', the last line is of '
                    || strftime(accepted.last_line_at, '%Y-%m-%d') || '): only lines '
                    || 'invoiced before as_of_date count; set a later date, or none (the day '
                    || 'after the last line)'
            {%- endif %}
            else 'no customer has a sale before the reference date'
        end as what_happened,
        accepted.lines_accepted + quarantine.lines_quarantined as rows_read,
        quarantine.lines_quarantined,
        quarantine.reasons
    from customers
    cross join files
    cross join quarantine
    cross join accepted
    where customers.customers = 0

),

final as (

    -- error() in the filter, which every row must pass: dbt counts the rows of a test, and a
    -- count reads no column
    select what_happened
    from explained
    where
        error(
            'customer_rfm holds no customer, so no model after it can be built: '
            || what_happened || '.'
            || case
                when lines_quarantined < rows_read
                    then ' Of ' || format('{:,}', rows_read) || ' rows read, '
                        || format('{:,}', lines_quarantined) || ' are quarantined'
                        || coalesce(' (' || reasons || ')', '') || '.'
                else ''
            end
            || ' marts.quarantined_transactions lists the quarantined rows.'
        ) is null

)

select * from final
{%- endif %}

{% endtest %}
