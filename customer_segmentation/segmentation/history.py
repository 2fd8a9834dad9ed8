"""Segments over time with one ruler: the current build's scaling and centroids applied to the
customers' RFM features at every snapshot, so a segment id means the same thing at every date."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from customer_segmentation.memory import ASSIGN_CHUNK_ROWS
from customer_segmentation.segmentation.features import log1p_clipped
from customer_segmentation.segmentation.segments import (
    fit_selected,
    persona_lookup,
    segment_ids_of_clusters,
)
from customer_segmentation.segmentation.tables import float_column
from customer_segmentation.segmentation.threads import KMEANS_MODULES, single_threaded

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.cluster import KMeans

# The loyalty programme's entry rule (loyalty_programme.sql: segment 1 of customer_segments).
LOYALTY_SEGMENT_ID = 1
# customer_segment_history's columns from int_customer_rfm_snapshots, in output order.
HISTORY_RFM_COLUMNS = ("snapshot_date", "customer_id", "recency_days", "frequency", "monetary")


@dataclass(frozen=True)
class SegmentRuler:
    """The current build's segmentation: log1p scaling, fitted KMeans and the stable ids."""

    features: tuple[str, ...]
    log_mean: np.ndarray  # (p,)
    log_scale: np.ndarray  # (p,)
    model: KMeans  # fitted exactly as customer_segments fits it
    segment_of_label: np.ndarray  # (k,) segment id 1..k of each KMeans label
    segment_names: tuple[str, ...]  # name of segment id 1..k


def segment_ruler(
    rfm: pa.Table | pd.DataFrame,
    selection: pa.Table | pd.DataFrame,
    personas: pa.Table | pd.DataFrame | None = None,
) -> SegmentRuler:
    """customer_segments' deterministic fit (`fit_selected`) on customer_rfm, kept as a ruler
    (a test holds the two equal)."""
    table, model, fm, km = fit_selected(rfm, selection)
    monetary = float_column(table, "monetary")[fm.order]
    names = persona_lookup(personas, model.k)
    return SegmentRuler(
        features=model.features,
        log_mean=fm.log_mean,
        log_scale=fm.log_scale,
        model=km,
        segment_of_label=segment_ids_of_clusters(km.labels_, monetary, km.cluster_centers_),
        segment_names=tuple(names[r].name for r in range(1, model.k + 1)),
    )


def assign_segments(ruler: SegmentRuler, snapshots: pa.Table) -> np.ndarray:
    """Segment id (int32) of each row of `snapshots` (columns: the ruler's features): clip,
    log1p, standardise with the ruler's mean and scale (the arithmetic of `standardise`), then
    the nearest centroid as KMeans' predict decides it, in chunks of ASSIGN_CHUNK_ROWS."""
    n = snapshots.num_rows
    out = np.empty(n, dtype=np.int32)
    for start in range(0, n, ASSIGN_CHUNK_ROWS):
        chunk = snapshots.slice(start, ASSIGN_CHUNK_ROWS)
        raw = np.column_stack([float_column(chunk, f) for f in ruler.features])
        if not np.all(np.isfinite(raw)):
            raise ValueError("segment features hold infinite or NaN values")
        points = log1p_clipped(raw)
        points -= ruler.log_mean
        points /= ruler.log_scale
        with single_threaded(*KMEANS_MODULES):
            labels = ruler.model.predict(points)
        out[start : start + chunk.num_rows] = ruler.segment_of_label[labels]
    return out


def history_schema(snapshots: pa.Schema) -> pa.Schema:
    """customer_segment_history's columns: the snapshot columns as read, then the segment."""
    return pa.schema(
        [snapshots.field(c) for c in (*HISTORY_RFM_COLUMNS, "rfm_segment")]
        + [
            pa.field("segment_id", pa.int32()),
            pa.field("segment_name", pa.string()),
            pa.field("is_loyalty_member", pa.bool_()),
        ]
    )


def history_batches(
    ruler: SegmentRuler, batches: Iterable[pa.RecordBatch], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Each batch of snapshot rows with its segment under the ruler, in the same order."""
    names = pa.array(ruler.segment_names, pa.string())
    for batch in batches:
        table = pa.Table.from_batches([batch])
        segment_id = assign_segments(ruler, table)
        columns = [table.column(c).combine_chunks() for c in (*HISTORY_RFM_COLUMNS, "rfm_segment")]
        columns += [
            pa.array(segment_id, pa.int32()),
            names.take(pa.array(segment_id - 1)),
            pa.array(segment_id == LOYALTY_SEGMENT_ID, pa.bool_()),
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def segment_history(
    snapshots: pa.RecordBatchReader | pa.Table,
    rfm: pa.Table | pd.DataFrame,
    selection: pa.Table | pd.DataFrame,
    personas: pa.Table | pd.DataFrame | None = None,
) -> pa.RecordBatchReader:
    """customer_segment_history as a stream: each (snapshot_date, customer_id) row of the
    snapshots (sorted by the caller) with its RFM columns, its segment under the current
    ruler (fitted first, on customer_rfm) and its membership. Memory: the ruler and one batch."""
    ruler = segment_ruler(rfm, selection, personas)
    batches = (
        snapshots.to_batches(ASSIGN_CHUNK_ROWS) if isinstance(snapshots, pa.Table) else snapshots
    )
    schema = history_schema(snapshots.schema)
    return pa.RecordBatchReader.from_batches(schema, history_batches(ruler, batches, schema))
