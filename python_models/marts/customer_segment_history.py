"""One row per customer and snapshot: RFM then, and the segment under the current ruler."""

from customer_segmentation.segmentation.history import (
    ASSIGN_CHUNK_ROWS,
    HISTORY_RFM_COLUMNS,
    segment_history,
)
from customer_segmentation.segmentation.segments import SEGMENT_COLUMNS
from customer_segmentation.segmentation.selection import selected_model
from customer_segmentation.segmentation.tables import rfm_columns


def model(dbt, session):
    selection = dbt.ref("segment_model_selection").to_arrow_table()
    features = selected_model(selection).features
    # Only the columns used cross to Python. The snapshots stream in batches from a second
    # cursor (the session's own runs the insert that consumes the stream), so memory stays at
    # one batch whatever the number of customers and snapshots.
    snapshot_columns = ", ".join(dict.fromkeys([*HISTORY_RFM_COLUMNS, "rfm_segment", *features]))
    query = (
        dbt.ref("int_customer_rfm_snapshots")
        .select(snapshot_columns)
        .order("snapshot_date, customer_id")
        .sql_query()
    )
    snapshots = session.cursor().sql(query).to_arrow_reader(ASSIGN_CHUNK_ROWS)
    return segment_history(
        snapshots,
        dbt.ref("customer_rfm").select(*rfm_columns(features, SEGMENT_COLUMNS)).to_arrow_table(),
        selection,
        dbt.ref("segment_personas").to_arrow_table(),
    )
