"""Pairs of products bought in the same sale order, counted as a sparse matrix product."""

from customer_segmentation.baskets import product_pairs
from customer_segmentation.schedule import take_turn


def model(dbt, session):
    # It holds a products x products array: one matrix model at a time (schedule.TAKE_TURNS).
    with take_turn("int_product_pairs", session):
        # affinity_min_orders arrives through the config in int_product_pairs.yml.
        pairs = product_pairs(
            session, dbt.ref("int_order_products"), dbt.config.get("affinity_min_orders")
        )
    return pairs
