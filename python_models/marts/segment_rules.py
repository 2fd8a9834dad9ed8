"""One row per leaf of a depth-3 decision tree that reproduces the KMeans segments: the
eligibility conditions in original units."""

from customer_segmentation.segmentation.rules import segment_rules
from customer_segmentation.segmentation.selection import selected_model


def model(dbt, session):
    features = selected_model(dbt.ref("segment_model_selection").to_arrow_table()).features
    # Only the columns used cross from DuckDB to Python, as Arrow.
    segments = dbt.ref("customer_segments").select(
        "customer_id, segment_id, segment_name, as_of_date, " + ", ".join(features)
    )
    return segment_rules(segments.to_arrow_table(), features)
