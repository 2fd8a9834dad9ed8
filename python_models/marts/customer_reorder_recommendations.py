"""Top products per customer to order again, from the re-order method recommendation_evaluation
selected."""

from customer_segmentation.recommend import customer_reorder_recommendations


def model(dbt, session):
    # recommendations_n arrives through the config in customer_reorder_recommendations.yml.
    return customer_reorder_recommendations(
        session,
        dbt.ref("int_order_products"),
        dbt.ref("customer_rfm"),
        dbt.ref("int_evaluation_cuts"),
        dbt.ref("recommendation_evaluation"),
        dbt.config.get("recommendations_n"),
    )
