"""One row per fitted parameter of BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma, fitted on
customer_lifetime_summary; the candidate clv_validation_summary selected is flagged."""

from customer_segmentation.clv import SUMMARY_COLUMNS, clv_model


def model(dbt, session):
    # Only the model inputs cross from DuckDB to Python, as Arrow.
    return clv_model(
        dbt.ref("customer_lifetime_summary").select(*SUMMARY_COLUMNS).to_arrow_table(),
        dbt.ref("clv_validation_summary").to_arrow_table(),
    )
