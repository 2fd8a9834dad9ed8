"""The last node of `dbt build`: publish the marts to the serving file (SERVING_DUCKDB_PATH).

It refs every mart, so dbt runs it after all of them and skips it when a mart, a model above
one, or a test on any of them fails (a test blocks every node below all of its parents).
A pytest checks this list against the manifest, so a new mart cannot be left out.
"""

import pyarrow as pa

from customer_segmentation.publish import publish_in_build


def model(dbt, session):
    (
        dbt.ref("cohort_retention"),
        dbt.ref("country_summary"),
        dbt.ref("customer_recommendations"),
        dbt.ref("customer_reorder_recommendations"),
        dbt.ref("customer_rfm"),
        dbt.ref("customer_segment_history"),
        dbt.ref("customer_segments"),
        dbt.ref("customer_value_tiers"),
        dbt.ref("dim_products"),
        dbt.ref("fct_order_lines"),
        dbt.ref("fct_orders"),
        dbt.ref("input_reconciliation"),
        dbt.ref("loyalty_programme"),
        dbt.ref("loyalty_programme_changes"),
        dbt.ref("loyalty_programme_summary"),
        dbt.ref("monthly_kpis"),
        dbt.ref("new_customer_starter_products"),
        dbt.ref("product_affinity"),
        dbt.ref("quarantined_transactions"),
        dbt.ref("recommendation_evaluation"),
        dbt.ref("rfm_segment_summary"),
        dbt.ref("sales_by_weekday_hour"),
        dbt.ref("segment_migration"),
        dbt.ref("segment_model_selection"),
        dbt.ref("segment_profiles"),
        dbt.ref("segment_silhouettes"),
        dbt.ref("segment_top_products"),
        dbt.ref("segment_rules"),
        dbt.ref("segment_backtest"),
        dbt.ref("clv_model"),
        dbt.ref("clv_p_alive_distribution"),
        dbt.ref("clv_validation"),
        dbt.ref("clv_validation_customers"),
        dbt.ref("clv_validation_summary"),
        dbt.ref("customer_lifetime_summary"),
        dbt.ref("customer_lifetime_value"),
        dbt.ref("segment_forecast"),
    )
    row = publish_in_build(session, dbt.this.database)
    return pa.Table.from_pylist(
        [row],
        schema=pa.schema(
            [
                ("invocation_id", pa.string()),
                ("command", pa.string()),
                ("is_published", pa.bool_()),
                ("serving_path", pa.string()),
                ("published_tables", pa.int32()),
                ("published_rows", pa.int64()),
                ("reason", pa.string()),
            ]
        ),
    )
