"""One row per customer and snapshot: RFM then, and the segment under the current ruler."""

from customer_segmentation.segmentation.history import HISTORY_RFM_COLUMNS, segment_history
from customer_segmentation.segmentation.segments import SEGMENT_COLUMNS
from customer_segmentation.segmentation.selection import selected_model
from customer_segmentation.segmentation.tables import rfm_columns


def model(dbt, session):
    selection = dbt.ref("segment_model_selection").to_arrow_table()
    features = selected_model(selection).features
    rfm = rfm_columns(features, SEGMENT_COLUMNS)
    # Only the columns used cross to Python, sorted by the table's key.
    snapshot_columns = list(dict.fromkeys([*HISTORY_RFM_COLUMNS, "rfm_segment", *features]))
    snapshots = (
        dbt.ref("int_customer_rfm_snapshots")
        .select(*snapshot_columns)
        .order("snapshot_date, customer_id")
        .to_arrow_table()
    )
    return segment_history(
        snapshots,
        dbt.ref("customer_rfm").select(*rfm).to_arrow_table(),
        selection,
        dbt.ref("segment_personas").to_arrow_table(),
    )
