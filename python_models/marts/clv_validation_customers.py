"""One row per calibration customer: the models refitted before the validation cut, predicted
vs actual repeat purchase days and revenue in the holdout, and the naive baseline."""

from customer_segmentation.clv import clv_validation_customers


def model(dbt, session):
    # The var arrives through the config in clv_validation_customers.yml; re-validated here.
    return clv_validation_customers(
        dbt.ref("int_clv_calibration").to_arrow_table(),
        dbt.config.get("clv_horizon_days"),
    )
