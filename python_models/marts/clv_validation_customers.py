"""One row per calibration customer and lifetime-value candidate: the candidates refitted before
the validation cut, predicted vs actual repeat purchase days and revenue in the holdout."""

from customer_segmentation.clv import clv_validation_customers


def model(dbt, session):
    # The var arrives through the config in clv_validation_customers.yml; re-validated here.
    return clv_validation_customers(
        dbt.ref("int_clv_calibration").to_arrow_table(),
        dbt.ref("int_clv_seasonal_ratios").to_arrow_table(),
        dbt.config.get("clv_horizon_days"),
    )
