"""KMeans model selection over k for the customer segments (one row per k tried)."""

from customer_segmentation.segmentation.selection import select_segment_count
from customer_segmentation.segmentation.settings import validate_settings
from customer_segmentation.segmentation.tables import rfm_columns


def model(dbt, session):
    # The vars arrive through the config in segment_model_selection.yml; re-validated here.
    settings = validate_settings(
        dbt.config.get("segment_k_min"),
        dbt.config.get("segment_k_max"),
        dbt.config.get("segment_k"),
        dbt.config.get("segment_features"),
    )
    # Only the columns used cross from DuckDB to Python, as Arrow.
    rfm = dbt.ref("customer_rfm").select(*rfm_columns(settings.features))
    return select_segment_count(rfm.to_arrow_table(), settings)
