{#- The per-customer inputs of the BG/NBD and Gamma-Gamma models, from the sale days before a
    cut date; time unit days. See lifetime_summary.yml and docs/clv.md. -#}
{% macro lifetime_summary(line_groups, cut) -%}
    with

    lines_before_cut as (

        -- guests never count: with guest_policy per_invoice they are one-invoice pseudo-customers
        select
            lines.customer_id,
            cast(lines.invoiced_at as date) as invoiced_date,
            lines.line_type,
            lines.amount,
            cuts.cut_date
        from {{ line_groups }} as lines
        inner join {{ cut }} as cuts
            on lines.invoiced_at < cuts.cut_date
        where
            lines.customer_id is not null
            and not lines.is_guest

    ),

    purchase_days as (

        -- a purchase day: a day with a sale invoice; its spend is the day's sale amount
        select
            customer_id,
            invoiced_date,
            min(cut_date) as cut_date,
            sum(amount) as day_amount,
            row_number() over (partition by customer_id order by invoiced_date) as day_number
        from lines_before_cut
        where line_type = 'sale'
        group by customer_id, invoiced_date

    ),

    returns_before_cut as (

        select
            customer_id,
            -sum(amount) as returned_amount
        from lines_before_cut
        where line_type = 'return'
        group by customer_id

    ),

    customer_days as (

        select
            customer_id,
            min(cut_date) as cut_date,
            min(invoiced_date) as first_purchase_date,
            max(invoiced_date) as last_purchase_date,
            count(*) - 1 as frequency,
            sum(day_amount) as gross_revenue,
            coalesce(sum(day_amount) filter (where day_number > 1), 0) as repeat_gross_revenue
        from purchase_days
        group by customer_id

    ),

    netted as (

        -- returns are netted pro rata: every purchase day's spend is scaled by the customer's
        -- net share, greatest(gross - returned, 0) / gross (0 when gross is 0)
        select
            customer_days.*,
            coalesce(returns_before_cut.returned_amount, 0) as returned_amount,
            case
                when customer_days.gross_revenue > 0
                    then greatest(
                        customer_days.gross_revenue
                        - coalesce(returns_before_cut.returned_amount, 0),
                        0
                    ) / customer_days.gross_revenue
                else 0
            end as net_share
        from customer_days
        left join returns_before_cut
            on customer_days.customer_id = returns_before_cut.customer_id

    )

    select
        customer_id,
        cut_date,
        first_purchase_date,
        last_purchase_date,
        frequency,
        {{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as recency,
        {{ dbt.datediff('first_purchase_date', 'cut_date', 'day') }} - 1 as t,
        gross_revenue,
        returned_amount,
        case
            when frequency > 0
                then cast(repeat_gross_revenue as double) * net_share / frequency
            else 0
        end as monetary_value
    from netted
{%- endmacro %}
