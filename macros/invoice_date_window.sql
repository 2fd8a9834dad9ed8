{#- The days a line may be invoiced on, as ISO dates (both included): vars min_invoice_date
    and max_invoice_date, the latter by default the day after the day this dbt command started
    (UTC: dbt's run_started_at), so that a line in the future is quarantined, not analysed.
    The one place the window is decided; int_invoice_lines_rule_checked applies it. -#}
{% macro invoice_date_window() -%}
    {%- set max_date = validated_var('max_invoice_date') -%}
    {%- if max_date is none -%}
        {%- set max_date = (run_started_at + modules.datetime.timedelta(days=1)).date().isoformat() -%}
    {%- endif -%}
    {{- return({'min': validated_var('min_invoice_date'), 'max': max_date}) -}}
{%- endmacro %}
