"""One row per customer: 1-D KMeans scores of R, F and M, their sum and the value tier."""

from customer_segmentation.segmentation.tables import rfm_columns
from customer_segmentation.segmentation.value_tiers import VALUE_TIER_COLUMNS, customer_value_tiers


def model(dbt, session):
    # Only the columns used cross from DuckDB to Python, as Arrow. clusters_per_dimension is
    # set in customer_value_tiers.yml; the package validates it.
    return customer_value_tiers(
        dbt.ref("customer_rfm").select(*rfm_columns(VALUE_TIER_COLUMNS)).to_arrow_table(),
        dbt.config.get("clusters_per_dimension"),
    )
