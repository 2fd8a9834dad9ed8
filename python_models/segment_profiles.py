"""One row per customer segment: size, revenue, shares, typical customer, centroid, silhouette."""

from customer_segmentation.segmentation import (
    PROFILE_MEASURES,
    SEGMENT_COLUMNS,
    rfm_columns,
    segment_profiles,
    selected_model,
)


def model(dbt, session):
    dbt.config(materialized="table")
    selection = dbt.ref("segment_model_selection").to_arrow_table()
    # Only the columns used cross from DuckDB to Python, as Arrow.
    columns = rfm_columns(selected_model(selection).features, SEGMENT_COLUMNS, PROFILE_MEASURES)
    return segment_profiles(
        dbt.ref("customer_segments").select("customer_id", "segment_id").to_arrow_table(),
        dbt.ref("customer_rfm").select(*columns).to_arrow_table(),
        selection,
        dbt.ref("segment_personas").to_arrow_table(),
    )
