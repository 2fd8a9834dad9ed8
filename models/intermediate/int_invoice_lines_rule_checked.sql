-- Every input line with the first cleaning rule that rejects it (in the order of docs/cleaning.md),
-- before duplicates are looked for; rule_reason is null for a line no rule rejects.
{{ config(materialized='view') }}
{%- set excluded_codes = validated_var('exclude_stock_codes') %}
{%- set excluded_countries = validated_var('excluded_countries') %}
{%- set min_unit_price = validated_var('min_unit_price') %}
{%- set round_unit_prices = validated_var('round_unit_prices') %}
{%- set date_window = invoice_date_window() %}
{#- Exact codes are one IN list; `*` is a wildcard: LIKE with `_` and `%` escaped. -#}
{%- set exact_codes = [] %}
{%- set code_conditions = [] %}
{%- for code in excluded_codes %}
    {%- if '*' in code %}
        {%- set pattern = code | replace('_', '\\_') | replace('%', '\\%') | replace('*', '%') %}
        {%- set condition = 'stock_code like ' ~ sql_string_literal(pattern) ~ " escape '\\'" %}
        {%- do code_conditions.append(condition) %}
    {%- else %}
        {%- do exact_codes.append(sql_string_literal(code)) %}
    {%- endif %}
{%- endfor %}
{%- if exact_codes %}
    {%- do code_conditions.insert(0, 'stock_code in (' ~ exact_codes | join(', ') ~ ')') %}
{%- endif %}
{%- set country_literals = [] %}
{%- for country in excluded_countries %}
    {%- do country_literals.append(sql_string_literal(country)) %}
{%- endfor %}

with

lines as (

    select * from {{ ref('stg_invoice_lines') }}

),

flagged as (

    select
        *,
        -- `C` or `c` first: no upper() on every line
        starts_with(invoice_no, 'C') or starts_with(invoice_no, 'c') as is_cancellation_invoice,
        ({{ code_conditions | join(' or ') if code_conditions else 'false' }})
            as is_excluded_stock_code,
        {{ 'country in (' ~ country_literals | join(', ') ~ ')' if country_literals else 'false' }}
            as is_excluded_country
    from lines

),

rule_checked as (

    select
        *,
        case
            when is_unparseable then 'unparseable_row'
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
            when {{ 'false' if round_unit_prices else 'is_unit_price_too_precise' }}
                then 'unit_price_too_precise'
            when invoiced_at is null then 'invalid_invoice_date'
            when
                invoiced_at < cast({{ sql_string_literal(date_window.min) }} as date)
                or invoiced_at >= cast({{ sql_string_literal(date_window.max) }} as date)
                + interval 1 day
                then 'invoice_date_out_of_range'
            when customer_id_text is not null and customer_id is null
                then 'invalid_customer_id'
            -- the line amount must fit fct_order_lines.line_amount, decimal(18,4), and a
            -- quantity below 10^9 keeps the items of 10^9 lines within a bigint
            when
                abs(quantity) >= 1000000000
                or try_cast(quantity * unit_price as decimal(18, 4)) is null
                then 'amount_out_of_range'
            when starts_with(invoice_no, 'A') or starts_with(invoice_no, 'a') then 'adjustment'
            when quantity = 0 then 'zero_quantity'
            when quantity < 0 and not is_cancellation_invoice then 'stock_write_off'
            when quantity > 0 and is_cancellation_invoice
                then 'cancellation_with_positive_quantity'
            when is_excluded_stock_code then 'excluded_stock_code'
            when is_excluded_country then 'excluded_country'
            when unit_price <= {{ min_unit_price }} then 'unit_price_at_or_below_minimum'
        end as rule_reason
    from flagged

),

final as (

    select * exclude (is_excluded_stock_code, is_excluded_country, is_unit_price_too_precise)
    from rule_checked

)

select * from final
