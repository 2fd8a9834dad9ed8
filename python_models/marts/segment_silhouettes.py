"""One row per customer segment: the mean silhouette of its customers in the score sample."""

from customer_segmentation.segmentation.segments import segment_silhouettes
from customer_segmentation.segmentation.selection import selected_model
from customer_segmentation.segmentation.tables import rfm_columns


def model(dbt, session):
    selection = dbt.ref("segment_model_selection").to_arrow_table()
    # Only the columns used cross from DuckDB to Python, as Arrow.
    columns = rfm_columns(selected_model(selection).features)
    return segment_silhouettes(
        dbt.ref("customer_segments").select("customer_id", "segment_id").to_arrow_table(),
        dbt.ref("customer_rfm").select(*columns).to_arrow_table(),
        selection,
    )
