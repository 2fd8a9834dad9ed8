"""Value tiers: each of recency, frequency and monetary scored by one-dimensional KMeans, the
scores summed and cut into Low, Mid and High."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from customer_segmentation.segmentation.clustering import kmeans
from customer_segmentation.segmentation.features import log1p_clipped
from customer_segmentation.segmentation.tables import (
    as_arrow,
    float_column,
    repeat_date,
    sorted_customers,
)
from customer_segmentation.segmentation.threads import KMEANS_MODULES, single_threaded

if TYPE_CHECKING:
    import pandas as pd

# Clusters per dimension (1 = worst .. n = best).
VALUE_TIER_CLUSTERS = 4
# customer_rfm columns customer_value_tiers reads besides customer_id and as_of_date.
VALUE_TIER_COLUMNS = ("recency_days", "frequency", "monetary")


def cluster_scores_1d(
    values: np.ndarray, n_clusters: int = VALUE_TIER_CLUSTERS, higher_is_better: bool = True
) -> np.ndarray:
    """One-dimensional KMeans on log1p(max(value, 0)); clusters numbered 1..n, n = best.

    Fitted on the distinct values weighted by their counts (the same objective as on every
    row, and fast: most customers share a few frequencies). With fewer distinct values than
    n_clusters, each distinct value is its own cluster (numbered 1..distinct). In one dimension
    the clusters are intervals, so the numbers are monotone in the value.
    """
    logged = log1p_clipped(values)
    if len(logged) == 0:
        return np.empty(0, dtype=np.int32)
    uniq, inverse, counts = np.unique(logged, return_inverse=True, return_counts=True)
    k = min(n_clusters, len(uniq))
    if k == len(uniq):
        rank = np.arange(k)
    else:
        with single_threaded(*KMEANS_MODULES):
            km = kmeans(k).fit(uniq.reshape(-1, 1), sample_weight=counts.astype(np.float64))
        center_rank = np.empty(k, dtype=np.int64)
        center_rank[np.argsort(km.cluster_centers_[:, 0], kind="stable")] = np.arange(k)
        rank = center_rank[km.labels_]
        # Nearest-center labels of sorted 1-D values are monotone; enforce it against
        # floating-point ties at a boundary so a larger value never scores lower.
        rank = np.maximum.accumulate(rank)
    score = rank + 1 if higher_is_better else k - rank
    return score[inverse].astype(np.int32)


def value_tier(overall_score: np.ndarray, n_clusters: int = VALUE_TIER_CLUSTERS) -> np.ndarray:
    """Cut overall_score (3 .. 3n) into thirds of its range: Low, Mid, High.

    For n = 4: Low 3-5, Mid 6-8, High 9-12 (Low <= n + 1, Mid <= 2n, High above).
    """
    score = np.asarray(overall_score)
    return np.where(
        score <= n_clusters + 1, "Low", np.where(score <= 2 * n_clusters, "Mid", "High")
    )


def customer_value_tiers(
    rfm: pa.Table | pd.DataFrame, n_clusters: int = VALUE_TIER_CLUSTERS
) -> pa.Table:
    """One row per customer: 1-D KMeans scores of recency, frequency and monetary, their sum
    and the Low / Mid / High value tier. Fewer recency days is better."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or not 2 <= n_clusters <= 10:
        raise ValueError(
            f"clusters_per_dimension must be a whole number from 2 to 10, got {n_clusters!r}"
        )
    table = as_arrow(rfm)
    ids, order = sorted_customers(table)
    measures = ("recency_days", "frequency", "monetary")
    sorted_rfm = table.select(list(measures)).take(pa.array(order))
    scores = {}
    for name, better_high in zip(measures, (False, True, True), strict=True):
        scores[name] = cluster_scores_1d(
            float_column(table, name)[order], n_clusters, higher_is_better=better_high
        )
    overall = scores["recency_days"] + scores["frequency"] + scores["monetary"]
    return pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "recency_days": sorted_rfm.column("recency_days"),
            "frequency": sorted_rfm.column("frequency"),
            "monetary": sorted_rfm.column("monetary"),
            "recency_cluster": pa.array(scores["recency_days"], pa.int32()),
            "frequency_cluster": pa.array(scores["frequency"], pa.int32()),
            "monetary_cluster": pa.array(scores["monetary"], pa.int32()),
            "overall_score": pa.array(overall, pa.int32()),
            "value_tier": pa.array(value_tier(overall, n_clusters), pa.string()),
            "clusters_per_dimension": pa.repeat(pa.scalar(n_clusters, pa.int32()), len(ids)),
            "as_of_date": repeat_date(table, len(ids)),
        }
    )
