"""The final segments: the selected KMeans refined on all customers, segment ids by mean
monetary, persona names, and the silhouette of each segment's customers in the score sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from customer_segmentation.segmentation.clustering import kmeans, silhouettes
from customer_segmentation.segmentation.features import (
    SCORE_SAMPLE_SIZE,
    prepare_features,
    sample_positions,
)
from customer_segmentation.segmentation.selection import selected_model
from customer_segmentation.segmentation.tables import (
    as_arrow,
    float_column,
    repeat_date,
    sorted_customers,
)
from customer_segmentation.segmentation.threads import (
    KMEANS_MODULES,
    SILHOUETTE_MODULES,
    single_threaded,
)

if TYPE_CHECKING:
    import pandas as pd

# customer_rfm columns customer_segments reads besides customer_id, as_of_date and the features.
SEGMENT_COLUMNS = ("monetary",)


def order_clusters(labels: np.ndarray, monetary: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Map arbitrary KMeans labels 0..k-1 to segment ids 1..k: 1 = highest mean monetary.

    Ties in mean monetary (original units) are broken by the centroid coordinates, descending
    in the order of the features, then by size, so the ids depend on the clusters' content only.
    """
    return segment_ids_of_clusters(labels, monetary, centers)[labels]


def segment_ids_of_clusters(
    labels: np.ndarray, monetary: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """The segment id 1..k of each KMeans label 0..k-1 (the mapping `order_clusters` applies)."""
    k = len(centers)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.bincount(labels, weights=monetary, minlength=k)
    means = np.divide(sums, counts, out=np.full(k, -np.inf), where=counts > 0)
    keys = [-means] + [-centers[:, j] for j in range(centers.shape[1])] + [-counts]
    ranked = np.lexsort(tuple(reversed(keys)))  # lexsort: last key is the primary one
    segment_of = np.empty(k, dtype=np.int32)
    segment_of[ranked] = np.arange(1, k + 1, dtype=np.int32)
    return segment_of


@dataclass(frozen=True)
class Persona:
    name: str
    description: str | None
    marketing_action: str | None


def persona_lookup(personas: pa.Table | pd.DataFrame | None, k: int) -> dict[int, Persona]:
    """Rank -> persona for k segments, from the segment_personas seed; 'Segment r' if absent."""
    found: dict[int, Persona] = {}
    if personas is not None:
        for row in as_arrow(personas).to_pylist():
            if int(row["k"]) == k:
                found[int(row["rank"])] = Persona(
                    str(row["segment_name"]), row.get("description"), row.get("marketing_action")
                )
    return {r: found.get(r, Persona(f"Segment {r}", None, None)) for r in range(1, k + 1)}


def fit_selected(rfm: pa.Table | pd.DataFrame, selection: pa.Table | pd.DataFrame):
    """The selected row's KMeans refined on all customers of `rfm`: (the rfm as Arrow, the
    selected model, the feature matrix, the fitted KMeans). customer_segments and the history's
    ruler both fit here, so they cannot drift apart."""
    table = as_arrow(rfm)
    model = selected_model(selection)
    fm = prepare_features(table, model.features)
    if len(fm.customer_ids) < model.k:
        raise ValueError(f"{len(fm.customer_ids)} customers cannot form {model.k} segments")
    with single_threaded(*KMEANS_MODULES):
        km = kmeans(model.k, init=model.centroids).fit(fm.standardised)
    return table, model, fm, km


def fit_customer_segments(
    rfm: pa.Table | pd.DataFrame,
    selection: pa.Table | pd.DataFrame,
    personas: pa.Table | pd.DataFrame | None = None,
) -> pa.Table:
    """One row per customer: the selected KMeans solution refined on all customers.

    KMeans starts from the selected k's centroids of the model selection (n_init=1): when the
    sweep saw every customer this converges at once to the same solution, otherwise it carries
    the sample's solution to all customers. Segment ids come from `order_clusters`.
    """
    table, model, fm, km = fit_selected(rfm, selection)
    monetary = float_column(table, "monetary")[fm.order]
    segment_id = order_clusters(km.labels_, monetary, km.cluster_centers_)
    distance = np.linalg.norm(fm.standardised - km.cluster_centers_[km.labels_], axis=1)
    names = persona_lookup(personas, model.k)
    sorted_features = table.select(list(model.features)).take(pa.array(fm.order))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "customer_id": pa.array(fm.customer_ids, pa.int64()),
        "segment_id": pa.array(segment_id, pa.int32()),
        "segment_name": pa.array([names[r].name for r in range(1, model.k + 1)], pa.string()).take(
            pa.array(segment_id - 1)
        ),
        "k": pa.repeat(pa.scalar(model.k, pa.int32()), len(segment_id)),
    }
    for feature in model.features:
        columns[feature] = sorted_features.column(feature)
    columns["distance_to_centroid"] = pa.array(distance, pa.float64())
    columns["as_of_date"] = repeat_date(table, len(segment_id))
    return pa.table(columns)


@dataclass(frozen=True)
class Aligned:
    """customer_rfm sorted by customer_id with each customer's segment id."""

    customer_ids: np.ndarray  # ascending
    order: np.ndarray  # customer_rfm row of each sorted position
    segment_id: np.ndarray  # int32, per sorted position


def align_segments(segments: pa.Table, rfm: pa.Table) -> Aligned:
    """Every customer of customer_rfm with its one segment, in customer_id order.

    Both tables sorted by customer_id must hold the same ids; a customer without a segment, a
    segment row without a customer or a repeated id fails clearly. (A sort and one comparison:
    the pandas merge it replaces took 1 s at 1,000,000 customers.)
    """
    rfm_ids, rfm_order = sorted_customers(rfm)
    seg_ids, seg_order = sorted_customers(segments)
    if len(seg_ids) != len(rfm_ids) or not np.array_equal(seg_ids, rfm_ids):
        missing = int(np.count_nonzero(~np.isin(rfm_ids, seg_ids, assume_unique=True)))
        raise ValueError(
            f"customer_segments does not match customer_rfm: {missing} customer(s) without a "
            f"segment, {len(seg_ids)} segment rows for {len(rfm_ids)} customers"
        )
    segment_column = segments.column("segment_id")
    if segment_column.null_count:
        raise ValueError(f"customer_segments.segment_id has {segment_column.null_count} null(s)")
    segment_id = segment_column.cast(pa.int32()).to_numpy()[seg_order]
    return Aligned(rfm_ids, rfm_order, segment_id)


def segment_silhouettes(
    segments: pa.Table | pd.DataFrame,
    rfm: pa.Table | pd.DataFrame,
    selection: pa.Table | pd.DataFrame,
) -> pa.Table:
    """One row per segment 1..k: the mean silhouette of its customers in the score sample
    (the final labels, standardised log1p space; null when none is sampled) and how many."""
    seg_table, rfm_table = as_arrow(segments), as_arrow(rfm)
    model = selected_model(selection)
    labels = align_segments(seg_table, rfm_table).segment_id  # sorted by customer_id, like fm
    fm = prepare_features(rfm_table, model.features)
    score_idx = sample_positions(fm.customer_ids, SCORE_SAMPLE_SIZE)
    with single_threaded(*SILHOUETTE_MODULES):
        values = silhouettes(fm.standardised[score_idx], [labels[score_idx]])[0]
    sampled = labels[score_idx]
    segment_ids = np.arange(1, model.k + 1, dtype=np.int32)
    members = [values[sampled == s] for s in segment_ids]
    return pa.table(
        {
            "segment_id": pa.array(segment_ids, pa.int32()),
            "mean_silhouette": pa.array(
                [float(np.mean(v)) if len(v) else None for v in members], pa.float64()
            ),
            "silhouette_sample_customers": pa.array([len(v) for v in members], pa.int64()),
        }
    )
