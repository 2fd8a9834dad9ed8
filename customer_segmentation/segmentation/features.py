"""Features and samples: clip at 0, log1p, standardise; deterministic hash samples of customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from customer_segmentation.segmentation.clustering import RANDOM_STATE
from customer_segmentation.segmentation.tables import as_arrow, float_column, sorted_customers

if TYPE_CHECKING:
    import pandas as pd

# KMeans sweep over k: all customers up to this many, else a deterministic sample of this size.
SWEEP_SAMPLE_SIZE = 20_000
# KMeans silhouettes (the rule's tie-break) and the segments' silhouettes: all customers up to
# this many, else a deterministic sample (a subset of the sweep rows).
SCORE_SAMPLE_SIZE = 10_000
# Gaussian mixtures and Ward clustering (comparison only) and their silhouettes: a subset of
# the score sample. Ward needs the n*(n-1)/2 pairwise distances and O(n^2) time.
COMPARISON_SAMPLE_SIZE = 3_000


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A fixed 64-bit mixing hash (splitmix64 finaliser), vectorised; wraps modulo 2**64."""
    z = values.astype(np.int64).view(np.uint64).copy()
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def sample_positions(customer_ids: np.ndarray, size: int, seed: int = RANDOM_STATE) -> np.ndarray:
    """Positions of a deterministic sample of `size` customers, ascending.

    All positions when there are at most `size` customers; otherwise the customers with the
    smallest splitmix64 hash of (customer_id xor seed), ties by customer_id. A smaller sample
    is a subset of a larger one, and the choice depends on the ids only, not on row order.
    (A partial sort: splitmix64 is a bijection, so distinct ids never tie.)
    """
    n = len(customer_ids)
    if n <= size:
        return np.arange(n)
    if size <= 0:
        return np.arange(0)
    ids = np.asarray(customer_ids, dtype=np.int64)
    hashed = _splitmix64(ids ^ np.int64(seed))
    threshold = hashed[np.argpartition(hashed, size - 1)[size - 1]]
    below = np.flatnonzero(hashed < threshold)
    tied = np.flatnonzero(hashed == threshold)
    tied = tied[np.argsort(ids[tied], kind="stable")][: size - len(below)]
    return np.sort(np.concatenate([below, tied]))


@dataclass(frozen=True)
class FeatureMatrix:
    """Customers sorted by customer_id with their features, raw and standardised."""

    features: tuple[str, ...]
    customer_ids: np.ndarray  # int64, ascending
    order: np.ndarray  # position of each sorted row in the input table
    raw: np.ndarray  # (n, p) original units, as in customer_rfm
    standardised: np.ndarray  # (n, p) standardised log1p(max(raw, 0))
    log_mean: np.ndarray  # (p,) mean of log1p values, for mapping back
    log_scale: np.ndarray  # (p,) standard deviation of log1p values (1 when constant)


def log1p_clipped(values: np.ndarray) -> np.ndarray:
    """log1p after clipping at 0: negative values count as 0, 0 stays 0."""
    return np.log1p(np.clip(np.asarray(values, dtype=np.float64), 0.0, None))


def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardised values, mean, scale) of an (n, p) float64 array with n >= 1.

    The arithmetic of scikit-learn's StandardScaler().fit_transform on finite float64 input,
    operation for operation (the test compares the two bit for bit), without importing
    scikit-learn: mean = column sums / n; variance by the corrected two-pass formula; a
    feature whose variance is within rounding error of 0 keeps scale 1.
    """
    n = values.shape[0]
    count = np.full(values.shape[1], float(n))
    total = np.sum(values, axis=0)
    mean = total / count
    centred = values - total / count
    correction = np.sum(centred, axis=0)
    centred **= 2
    variance = (np.sum(centred, axis=0) - correction**2 / count) / count
    eps = np.finfo(np.float64).eps
    constant = variance <= count * eps * variance + (count * mean * eps) ** 2
    scale = np.sqrt(variance)
    scale[constant] = 1.0
    out = values.copy()
    out -= mean
    out /= scale
    return out, mean, scale


def prepare_features(rfm: pa.Table | pd.DataFrame, features: Sequence[str]) -> FeatureMatrix:
    """Sort customers by id, then clip at 0, log1p and standardise the given feature columns."""
    table = as_arrow(rfm)
    ids, order = sorted_customers(table)
    raw = (
        np.column_stack([float_column(table, f)[order] for f in features])
        if len(features)
        else np.empty((len(ids), 0))
    )
    if raw.size and not np.all(np.isfinite(raw)):
        raise ValueError("segment features hold infinite or NaN values")
    logged = log1p_clipped(raw)
    if len(ids):
        standardised, mean, scale = standardise(logged)
    else:
        standardised = logged
        mean, scale = np.zeros(len(features)), np.ones(len(features))
    return FeatureMatrix(
        features=tuple(features),
        customer_ids=ids,
        order=order,
        raw=raw,
        standardised=standardised,
        log_mean=np.asarray(mean, dtype=np.float64),
        log_scale=np.asarray(scale, dtype=np.float64),
    )


def to_original_units(fm: FeatureMatrix, standardised_points: np.ndarray) -> np.ndarray:
    """Map points of the standardised log1p space back to original units (expm1 of unscaled)."""
    return np.expm1(np.asarray(standardised_points) * fm.log_scale + fm.log_mean)
