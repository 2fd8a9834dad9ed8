-- Typed view of the raw lines: values that do not parse become null here, and the
-- raw text stays alongside so the classification can quarantine it as read.
with

raw_lines as (

    select * from {{ ref('stg_raw_invoice_lines') }}

),

date_formats as (

    select * from {{ ref('stg_invoice_date_formats') }}

),

trimmed as (

    select
        source_file,
        source_row,
        read_path,
        has_extra_fields,
        is_unparseable,
        is_forgotten,
        nullif(trim(invoice_no), '') as invoice_no_text,
        nullif(trim(stock_code), '') as stock_code_text,
        nullif(trim(description), '') as description_text,
        nullif(trim(quantity), '') as quantity_text,
        nullif(trim(invoice_date), '') as invoice_date_text,
        nullif(trim(unit_price), '') as unit_price_text,
        nullif(trim(customer_id), '') as customer_id_text,
        nullif(trim(country), '') as country_text
    from raw_lines

),

with_date_format as (

    -- how the file writes dates with slashes (one row per file)
    select
        trimmed.*,
        date_formats.invoice_date_format
    from trimmed
    left join date_formats
        on trimmed.source_file = date_formats.source_file

),

parsed as (

    select
        *,
        -- numbers: quantities and customer ids must be whole ('17850.0' is 17850)
        try_cast(quantity_text as double) as quantity_number,
        try_cast(unit_price_text as decimal(18, 4)) as unit_price_decimal,
        -- a price with a digit beyond the fourth decimal place (0.00004), which decimal(18, 4)
        -- would round; the exact test runs only on texts that can hold one
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
        try_cast(customer_id_text as double) as customer_id_number,
        -- timestamps: ISO (a four-digit year first), an offset converted to UTC; else with
        -- slashes, month or day first as stg_invoice_date_formats says for the file, with a
        -- four- or two-digit year (`12/1/10`: 2010). DuckDB's own cast would read `12/1/10`
        -- as year 12, so it only sees texts that start with a four-digit year (GLOB: byte
        -- matching). Only a text ending in Z or with a sign after a colon can meet the
        -- offset pattern, so the common `2010-12-01 08:26:00` skips the regex; LIKE, not
        -- right(), which counts characters.
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
            -- %y (two digits: 00-68 is 20xx, 69-99 19xx) first: %Y also takes two digits,
            -- as year 10
            case invoice_date_format
                when 'month_first'
                    then try_strptime(
                            invoice_date_text,
                            [
                                '%m/%d/%y %H:%M', '%m/%d/%y %H:%M:%S',
                                '%m/%d/%Y %H:%M', '%m/%d/%Y %H:%M:%S'
                            ]
                        )
                when 'day_first'
                    then try_strptime(
                            invoice_date_text,
                            [
                                '%d/%m/%y %H:%M', '%d/%m/%y %H:%M:%S',
                                '%d/%m/%Y %H:%M', '%d/%m/%Y %H:%M:%S'
                            ]
                        )
            end
        ) as invoiced_at_parsed
    from with_date_format

),

final as (

    select
        -- ids
        source_file,
        source_row,
        invoice_no_text as invoice_no,
        stock_code_text as stock_code,
        -- attributes
        description_text as description,
        country_text as country,
        -- parsed values (null when the text does not parse)
        case
            when quantity_number = floor(quantity_number)
                and abs(quantity_number) < 1e15
                then cast(quantity_number as bigint)
        end as quantity,
        unit_price_decimal as unit_price,
        is_unit_price_too_precise,
        invoiced_at_parsed as invoiced_at,
        case
            when customer_id_number = floor(customer_id_number)
                and customer_id_number between 1 and 1e15
                then cast(customer_id_number as bigint)
        end as customer_id,
        -- raw text, as read
        read_path,
        has_extra_fields,
        is_unparseable,
        is_forgotten,
        quantity_text,
        unit_price_text,
        invoice_date_text,
        customer_id_text
    from parsed

)

select * from final
