{#- The eight fields whose equality makes two input lines exact duplicates. -#}
{% macro duplicate_line_fields() -%}
    {{ return([
        'invoice_no', 'stock_code', 'description', 'quantity',
        'invoiced_at', 'unit_price', 'customer_id', 'country'
    ]) }}
{%- endmacro %}
