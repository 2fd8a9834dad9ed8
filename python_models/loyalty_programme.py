"""The loyalty programme: the customers of segment 1 with their RFM figures."""

from customer_segmentation.segmentation import LOYALTY_COLUMNS, loyalty_members, rfm_columns


def model(dbt, session):
    dbt.config(materialized="table")
    # Only segment 1 and the columns used cross from DuckDB to Python, as Arrow.
    return loyalty_members(
        dbt.ref("customer_segments").filter("segment_id = 1").to_arrow_table(),
        dbt.ref("customer_rfm").select(*rfm_columns(LOYALTY_COLUMNS)).to_arrow_table(),
    )
