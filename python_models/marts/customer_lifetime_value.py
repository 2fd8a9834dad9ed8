"""One row per customer of customer_lifetime_summary: expected purchases and revenue over the
horizon and CLV over the lifetime, from the candidate clv_validation_summary selected."""

from customer_segmentation.clv import SUMMARY_COLUMNS, customer_lifetime_value_table


def model(dbt, session):
    # The vars arrive through the config in customer_lifetime_value.yml; re-validated here.
    return customer_lifetime_value_table(
        dbt.ref("customer_lifetime_summary").select(*SUMMARY_COLUMNS).to_arrow_table(),
        dbt.ref("clv_model").to_arrow_table(),
        dbt.ref("clv_validation_summary").to_arrow_table(),
        dbt.ref("int_clv_seasonal_ratios").to_arrow_table(),
        dbt.config.get("clv_horizon_days"),
        dbt.config.get("clv_lifetime_months"),
        dbt.config.get("clv_annual_discount_rate"),
    )
