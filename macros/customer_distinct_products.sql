{#- The select of customer_rfm's distinct_products: per customer, the distinct stock codes on
    the sale lines of `order_lines` (a relation or CTE name), only those before `as_of_date`
    when one is given (an ISO date string, validated by validated_var). Used by
    int_customer_products (all lines) and by customer_rfm with an explicit as_of_date. -#}
{% macro customer_distinct_products(order_lines, as_of_date=none) %}
    select
        customer_id,
        count(distinct stock_code) as distinct_products
    from {{ order_lines }}
    where
        line_type = 'sale'
        and customer_id is not null
    {%- if as_of_date is not none %}
        and invoiced_at < cast({{ sql_string_literal(as_of_date) }} as date)
    {%- endif %}
    group by customer_id
{% endmacro %}
