"""One row per customer: the selected KMeans segmentation with stable segment ids."""

from customer_segmentation.segmentation.segments import SEGMENT_COLUMNS, fit_customer_segments
from customer_segmentation.segmentation.selection import selected_model
from customer_segmentation.segmentation.tables import rfm_columns


def model(dbt, session):
    selection = dbt.ref("segment_model_selection").to_arrow_table()
    # Only the columns used cross from DuckDB to Python, as Arrow.
    columns = rfm_columns(selected_model(selection).features, SEGMENT_COLUMNS)
    return fit_customer_segments(
        dbt.ref("customer_rfm").select(*columns).to_arrow_table(),
        selection,
        dbt.ref("segment_personas").to_arrow_table(),
    )
