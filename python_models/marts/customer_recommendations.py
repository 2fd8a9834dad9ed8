"""Top products per customer not yet bought, from the method recommendation_evaluation selected."""

from customer_segmentation.recommend import customer_recommendations
from customer_segmentation.schedule import take_turn


def model(dbt, session):
    # recommendations_n arrives through the config in customer_recommendations.yml.
    # It holds a customer x product matrix: one matrix model at a time (schedule.TAKE_TURNS).
    with take_turn("customer_recommendations", session):
        recommendations = customer_recommendations(
            session,
            dbt.ref("int_order_products"),
            dbt.ref("int_customer_products"),
            dbt.ref("customer_rfm"),
            dbt.ref("customer_segments"),
            dbt.ref("dim_products"),
            dbt.ref("recommendation_evaluation"),
            dbt.config.get("recommendations_n"),
        )
    return recommendations
