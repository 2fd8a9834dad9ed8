-- One row per customer and product bought in the recommendation holdout [split, as_of_date) by
-- an identified customer with a sale order before the split: whether the customer had bought
-- the product before the split (a re-order) or not (a new product), and the customer's counts
-- of each. The test targets of recommendation_evaluation's two lists.
with

order_products as (

    select * from {{ ref('int_order_products') }}

),

customer_products as (

    select * from {{ ref('int_customer_products') }}

),

evaluation_cuts as (

    select * from {{ ref('int_evaluation_cuts') }}

),

holdout_cut as (

    select
        cut_date,
        as_of_date
    from evaluation_cuts
    where cut_kind = 'recommendation_holdout'

),

identified_orders as (

    -- guest orders never count, before or after the split
    select
        customer_id,
        stock_code,
        invoiced_at
    from order_products
    where customer_id is not null and not is_guest

),

trained_customers as (

    -- the customers the methods learn from: a sale order before the split
    select distinct identified_orders.customer_id
    from identified_orders
    inner join holdout_cut
        on identified_orders.invoiced_at < holdout_cut.cut_date

),

holdout_products as (

    select distinct
        identified_orders.customer_id,
        identified_orders.stock_code
    from identified_orders
    inner join holdout_cut
        on
            identified_orders.invoiced_at >= holdout_cut.cut_date
            and identified_orders.invoiced_at < holdout_cut.as_of_date
    inner join trained_customers
        on identified_orders.customer_id = trained_customers.customer_id

),

flagged as (

    -- a re-order: the customer had bought the product before the split
    select
        holdout_products.customer_id,
        holdout_products.stock_code,
        coalesce(customer_products.first_purchased_at < holdout_cut.cut_date, false)
            as is_reorder
    from holdout_products
    cross join holdout_cut
    left join customer_products
        on
            holdout_products.customer_id = customer_products.customer_id
            and holdout_products.stock_code = customer_products.stock_code

),

customer_counts as (

    select
        customer_id,
        count(*) filter (where not is_reorder) as new_products,
        count(*) filter (where is_reorder) as reordered_products,
        count(*) as holdout_products
    from flagged
    group by customer_id

),

final as (

    select
        -- ids
        cast(flagged.customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(flagged.stock_code as {{ dbt.type_string() }}) as stock_code,
        -- flags
        flagged.is_reorder,
        -- the customer's counts
        cast(customer_counts.new_products as {{ dbt.type_bigint() }}) as new_products,
        cast(customer_counts.reordered_products as {{ dbt.type_bigint() }}) as reordered_products,
        cast(customer_counts.holdout_products as {{ dbt.type_bigint() }}) as holdout_products
    from flagged
    inner join customer_counts
        on flagged.customer_id = customer_counts.customer_id

)

select * from final
