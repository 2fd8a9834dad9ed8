{#- on-run-start hook: check every var before any model runs. Renders no SQL. -#}
{% macro validate_all_vars() -%}
    {%- for name in ['transactions_path', 'invoice_date_format', 'exclude_stock_codes', 'excluded_countries',
                     'min_unit_price', 'drop_exact_duplicates', 'guest_policy',
                     'as_of_date', 'rfm_score_buckets', 'segment_k_min', 'segment_k_max',
                     'segment_k', 'segment_features'] -%}
        {%- do validated_var(name) -%}
    {%- endfor -%}
    select 1
{%- endmacro %}
