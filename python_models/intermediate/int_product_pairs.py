"""Pairs of products bought in the same sale order, counted as a sparse matrix product."""

from customer_segmentation.baskets import product_pairs


def model(dbt, session):
    # Runs after int_customer_rfm_snapshots, for memory only: at 100M lines this model's sort
    # and the snapshots' aggregation side by side ran DuckDB out of memory at the profile's
    # 2 GB (docs/performance.md). The matrix models all come after the big aggregations.
    dbt.ref("int_customer_rfm_snapshots")
    # affinity_min_orders arrives through the config in int_product_pairs.yml.
    return product_pairs(
        session, dbt.ref("int_order_products"), dbt.config.get("affinity_min_orders")
    )
