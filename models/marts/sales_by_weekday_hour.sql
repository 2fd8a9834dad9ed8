-- One row per ISO weekday and hour of day with at least one sale line: when people buy.
with

line_groups as (

    select * from {{ ref('int_order_line_groups') }}

),

sale_lines as (

    select
        cast(extract(isodow from invoiced_at) as {{ dbt.type_int() }}) as iso_weekday,
        cast(extract(hour from invoiced_at) as {{ dbt.type_int() }}) as hour_of_day,
        invoice_no,
        lines,
        items,
        amount
    from line_groups
    where line_type = 'sale'

),

by_weekday_hour as (

    select
        iso_weekday,
        hour_of_day,
        sum(amount) as revenue,
        count(distinct invoice_no) as orders,
        sum(lines) as lines,
        sum(items) as items_sold
    from sale_lines
    group by iso_weekday, hour_of_day

),

final as (

    select
        -- keys
        iso_weekday,
        cast(
            case iso_weekday
                when 1 then 'Monday'
                when 2 then 'Tuesday'
                when 3 then 'Wednesday'
                when 4 then 'Thursday'
                when 5 then 'Friday'
                when 6 then 'Saturday'
                when 7 then 'Sunday'
            end as {{ dbt.type_string() }}
        ) as weekday_name,
        hour_of_day,
        -- amounts
        cast(revenue as decimal(38, 4)) as revenue,
        cast(revenue as double) / nullif(cast(sum(revenue) over () as double), 0)
            as revenue_share,
        -- counts
        cast(orders as {{ dbt.type_bigint() }}) as orders,
        cast(lines as {{ dbt.type_bigint() }}) as lines,
        cast(items_sold as {{ dbt.type_bigint() }}) as items_sold
    from by_weekday_hour

)

select * from final
