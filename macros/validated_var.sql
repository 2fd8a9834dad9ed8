{#- The one way a dbt var reaches SQL: read it, check it against its spec, fail the
    build with a message naming the var when it is wrong. Specs live here, in one place. -#}
{% macro validated_var(name) -%}
    {%- set re = modules.re -%}
    {%- set value = var(name) -%}
    {%- set ns = namespace(problem=none) -%}

    {%- if name == 'transactions_path' -%}
        {%- if value is not string or value | trim == '' or '\x00' in value or '\n' in value -%}
            {%- set ns.problem = 'must be a non-empty path or glob of .csv, .csv.gz, .parquet or .xlsx files' -%}
        {%- endif -%}

    {%- elif name == 'invoice_date_format' -%}
        {%- if value not in ['auto', 'month_first', 'day_first', 'iso'] -%}
            {%- set ns.problem = "must be 'auto', 'month_first', 'day_first' or 'iso'" -%}
        {%- endif -%}

    {%- elif name == 'exclude_stock_codes' -%}
        {%- if value is string or value is not iterable or value is mapping -%}
            {%- set ns.problem = 'must be a list of stock codes, e.g. ["POST", "DCGS*"]' -%}
        {%- else -%}
            {%- for code in value -%}
                {%- if code is not string or not re.fullmatch('[A-Za-z0-9 _./*-]{1,50}', code) -%}
                    {%- set ns.problem = 'entry ' ~ (code | tojson) ~ ' is not a stock code (letters, digits, space, _ . / - and * as wildcard; at most 50 characters)' -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}

    {%- elif name == 'excluded_countries' -%}
        {%- if value is string or value is not iterable or value is mapping -%}
            {%- set ns.problem = 'must be a list of country names, e.g. ["Unspecified"]' -%}
        {%- else -%}
            {%- for country in value -%}
                {%- if country is not string or not re.fullmatch("[A-Za-z0-9 .,'()&-]{1,80}", country) -%}
                    {%- set ns.problem = 'entry ' ~ (country | tojson) ~ " is not a country name (letters, digits, space and . , ' ( ) & -; at most 80 characters)" -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}

    {%- elif name == 'min_unit_price' -%}
        {#- NaN is not equal to itself and inf - inf is NaN: neither may reach SQL (as `nan`) -#}
        {%- if value is boolean or value is not number or value != value or value - value != 0
              or value < -1000000000 or value > 1000000000 -%}
            {%- set ns.problem = 'must be a finite number from -1000000000 to 1000000000 (lines with a unit price at or below it are rejected)' -%}
        {%- endif -%}

    {%- elif name == 'drop_exact_duplicates' -%}
        {%- if value is not boolean -%}
            {%- set ns.problem = 'must be true or false' -%}
        {%- endif -%}

    {%- elif name == 'guest_policy' -%}
        {%- if value not in ['exclude', 'per_invoice'] -%}
            {%- set ns.problem = "must be 'exclude' or 'per_invoice'" -%}
        {%- endif -%}

    {%- elif name == 'as_of_date' -%}
        {%- if value is not none and value is not string and value.isoformat is defined -%}
            {%- set value = value.isoformat() -%}
        {%- endif -%}
        {%- if value is not none -%}
            {%- if value is not string or not re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
                {%- set ns.problem = 'must be an ISO date (YYYY-MM-DD) or null' -%}
            {%- else -%}
                {%- set y, m, d = value.split('-') | map('int') | list -%}
                {%- set month_ok = 1 <= m <= 12 and 1900 <= y <= 2999 -%}
                {%- if not month_ok or d < 1 or d > (modules.datetime.date(y + m // 12, m % 12 + 1, 1) - modules.datetime.timedelta(days=1)).day -%}
                    {%- set ns.problem = 'is not a valid calendar date' -%}
                {%- endif -%}
            {%- endif -%}
        {%- endif -%}

    {%- elif name == 'rfm_score_buckets' -%}
        {%- if value is boolean or value is not integer or value < 2 or value > 10 -%}
            {%- set ns.problem = 'must be a whole number from 2 to 10' -%}
        {%- endif -%}

    {%- elif name in ['segment_k_min', 'segment_k_max'] -%}
        {%- if value is boolean or value is not integer or value < 2 or value > 20 -%}
            {%- set ns.problem = 'must be a whole number from 2 to 20' -%}
        {%- elif name == 'segment_k_max' and var('segment_k_min') is integer and value < var('segment_k_min') -%}
            {%- set ns.problem = 'must be at least segment_k_min (' ~ var('segment_k_min') ~ ')' -%}
        {%- endif -%}

    {%- elif name == 'segment_k' -%}
        {%- if value is not none and (value is boolean or value is not integer or value < 2 or value > 20) -%}
            {%- set ns.problem = 'must be null (chosen by the selection rule) or a whole number from 2 to 20' -%}
        {%- endif -%}

    {%- elif name == 'segment_features' -%}
        {%- set allowed = ['recency_days', 'frequency', 'monetary', 'gross_revenue', 'returned_amount',
                           'avg_order_value', 'total_items', 'distinct_products', 'return_lines',
                           'tenure_days'] -%}
        {%- if value is string or value is not iterable or value is mapping or value | length == 0 -%}
            {%- set ns.problem = 'must be a non-empty list of customer_rfm columns, from ' ~ (allowed | join(', ')) -%}
        {%- elif value | unique | list | length != value | length -%}
            {%- set ns.problem = 'must not repeat a feature' -%}
        {%- else -%}
            {%- for feature in value -%}
                {%- if feature not in allowed -%}
                    {%- set ns.problem = 'entry ' ~ (feature | tojson) ~ ' is not one of ' ~ (allowed | join(', ')) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}

    {%- else -%}
        {%- do exceptions.raise_compiler_error("validated_var: no spec for var '" ~ name ~ "'") -%}
    {%- endif -%}

    {%- if ns.problem is not none -%}
        {%- do exceptions.raise_compiler_error("Invalid value for dbt var '" ~ name ~ "': " ~ (value | tojson) ~ " " ~ ns.problem ~ ".") -%}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}
