"""One row per fitted parameter of BG/NBD and Gamma-Gamma, fitted on customer_lifetime_summary."""

from customer_segmentation.clv import SUMMARY_COLUMNS, clv_model


def model(dbt, session):
    # Only the model inputs cross from DuckDB to Python, as Arrow.
    return clv_model(dbt.ref("customer_lifetime_summary").select(*SUMMARY_COLUMNS).to_arrow_table())
