"""One row per segment of the segmentation refitted at as_of_date - backtest_horizon_days:
what its customers bought in the horizon after the cut."""

from customer_segmentation.segmentation.backtest import segment_backtest
from customer_segmentation.segmentation.settings import validate_settings


def model(dbt, session):
    # The vars arrive through the config in segment_backtest.yml; re-validated here.
    settings = validate_settings(
        dbt.config.get("segment_k_min"),
        dbt.config.get("segment_k_max"),
        dbt.config.get("segment_k"),
        dbt.config.get("segment_features"),
    )
    return segment_backtest(
        session,
        dbt.ref("int_order_line_groups"),
        dbt.ref("int_evaluation_cuts"),
        dbt.ref("int_customer_rfm_at_cuts"),
        dbt.ref("segment_personas").to_arrow_table(),
        settings,
    )
