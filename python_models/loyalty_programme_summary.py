"""One row: who is eligible for the loyalty programme and how many they are."""

from customer_segmentation.segmentation import SUMMARY_COLUMNS, loyalty_summary, rfm_columns


def model(dbt, session):
    dbt.config(materialized="table")
    # Only the columns used cross from DuckDB to Python, as Arrow.
    return loyalty_summary(
        dbt.ref("customer_segments")
        .select("customer_id", "segment_id", "segment_name", "k")
        .to_arrow_table(),
        dbt.ref("customer_rfm").select(*rfm_columns(SUMMARY_COLUMNS)).to_arrow_table(),
    )
