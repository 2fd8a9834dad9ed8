"""Pairs of products bought in the same sale order, counted as a sparse matrix product."""

from customer_segmentation.baskets import product_pairs


def model(dbt, session):
    # affinity_min_orders arrives through the config in int_product_pairs.yml.
    return product_pairs(
        session, dbt.ref("int_order_products"), dbt.config.get("affinity_min_orders")
    )
