"""One row per recommendation list (new products, re-orders) and method: its metrics at k on the
holdout, each list's best selected."""

from customer_segmentation.recommend import recommendation_evaluation
from customer_segmentation.schedule import take_turn
from customer_segmentation.segmentation.settings import validate_settings


def model(dbt, session):
    # The vars arrive through the config in recommendation_evaluation.yml; re-validated here.
    # The segment vars refit segment_popularity's segments on the RFM at the split.
    settings = validate_settings(
        dbt.config.get("segment_k_min"),
        dbt.config.get("segment_k_max"),
        dbt.config.get("segment_k"),
        dbt.config.get("segment_features"),
    )
    # It holds a customer x product matrix: one matrix model at a time (schedule.TAKE_TURNS).
    with take_turn("recommendation_evaluation", session):
        evaluation = recommendation_evaluation(
            session,
            dbt.ref("int_order_products"),
            dbt.ref("int_evaluation_cuts"),
            dbt.ref("int_customer_rfm_at_cuts"),
            dbt.ref("int_recommendation_holdout"),
            dbt.config.get("recommendations_n"),
            settings,
        )
    return evaluation
