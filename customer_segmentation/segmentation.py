"""Customer segmentation: KMeans on log-scaled RFM features with an honest model selection.

Called by the dbt Python models in ``python_models/`` (each a few lines); everything here takes
and returns Arrow tables and is unit-tested without dbt (tests/pytest/test_segmentation.py).

Pipeline, and why each step is the way it is:

1. Features (`prepare_features`): each feature of the dbt var ``segment_features`` is clipped at
   0 (a negative value, which customer_rfm should never hold, counts as 0), then ``log1p`` (so
   0 stays 0 and the heavy right tails of frequency and spend are compressed), then standardised
   to mean 0 and standard deviation 1 over all customers (a constant feature keeps scale 1).
   Rows are sorted by customer_id first, so the order rows arrive in can never change a result.
2. Model selection (`select_segment_count`): for every k from ``segment_k_min`` to
   ``segment_k_max``, KMeans (``n_init=N_INIT``, ``random_state=RANDOM_STATE``) with inertia,
   silhouette, Davies-Bouldin and Calinski-Harabasz, and the silhouette of a Gaussian mixture and
   of Ward agglomerative clustering with the same k. k is chosen by `choose_k` (knee of the
   inertia curve, silhouette as tie-break) unless the var ``segment_k`` fixes it.
3. Segments (`fit_customer_segments`): the chosen solution, refined on all customers, with
   segment ids ordered by mean monetary (1 = highest), so ids never depend on KMeans' label
   numbering; then profiles, the loyalty programme (segment 1) and the value tiers.

Samples. Three nested, deterministic samples (`sample_positions`: the customers with the
smallest hash of their customer_id; independent of row order, a smaller sample is a subset of a
larger one, and a customer stays sampled when others are added), each all customers when there
are fewer:

* ``SWEEP_SAMPLE_SIZE`` = 20,000 sweep rows for the KMeans fits over k (inertia, centroids,
  Davies-Bouldin, Calinski-Harabasz). Choosing k needs the shape of the inertia curve, not
  every customer: with 20,000 rows a cluster of 1% still holds 200 customers, and a centroid's
  sampling error (about 1/sqrt(cluster size) standard deviations per coordinate: 0.07 for 200
  customers, 0.02 for 2,000) is far below the distance between clusters. Measured on
  synthetic 79,000 and 800,000 customers and on the 78,904 customers of the 10M-line generated
  data, against a sweep on all customers (79,000) or on 200,000 (800,000): the same knee
  (k = 5) and the same selected k, and after customer_segments' refit on all customers the
  inertia of every k within 0.035%. A k whose knee distance lies near 90% of the largest can
  enter or leave the knee candidates (the silhouette tie-break then decides, as the rule says).
  ``N_INIT`` stays 10: over 15 samples of 20,000 (3 data sets x 5 hash seeds) the best of 10
  starts came within 0.1% of the best of 30 in 14, the best of 5 in 11 (worst 0.84%), the best
  of 3 in 8 (worst 2.6%; one 50,000-row sample ended 8.7% worse at k = 5 and moved the knee).
* ``SCORE_SAMPLE_SIZE`` = 10,000 score rows for the KMeans silhouettes (the rule's tie-break)
  and the profiles' silhouettes, as before. Silhouettes are O(n^2); at 10,000 the mean
  silhouette of a k varies by about 0.003 between independent samples (0.005 at 5,000), below
  the gaps the tie-break decides on (0.012-0.015 on the measured data).
* ``COMPARISON_SAMPLE_SIZE`` = 3,000 comparison rows for the Gaussian mixtures and Ward
  clustering and their silhouettes, which are reported for comparison and do not enter the rule.
  Ward's linkage is O(n^2) in time and memory (10,000 rows took 4-5 s and 0.4 GB for the
  pairwise distances; 3,000 rows take 0.3 s and 36 MB). Their mean silhouettes vary between
  independent samples mostly because the fits do: by about 0.015 (mixture) and 0.02 (Ward) at
  3,000 rows, 0.008 and 0.018 at 10,000, against differences of 0.05 and more between the
  methods.

KMeans, not MiniBatchKMeans (measured at 1,000,000 customers with the former 200,000-row
sweep: MiniBatchKMeans on all customers took 46 s for k = 2..10 against 13.5 s for KMeans on
the sample, with up to 9% worse inertia; the final refit from given centroids took 0.2 s with
KMeans, 0.8-5 s with MiniBatchKMeans). The final segments are fitted on every customer
(`fit_customer_segments`).

The Gaussian mixtures (scikit-learn's GaussianMixture), Ward clustering (SciPy's linkage and
cut_tree), Davies-Bouldin and Calinski-Harabasz (scikit-learn) run as the libraries ship
them: on the 3,000-row comparison sample and the 20,000-row sweep they cost well under a
second. The silhouettes of all labelings of a sample share one pass over the pairwise
distances (`silhouettes`, tested against sklearn.metrics.silhouette_samples).

Threads. Everything runs on one BLAS/OpenMP thread: scikit-learn's multi-threaded KMeans adds
per-thread partial sums in an order that depends on the thread count and on which thread
finishes first, which changes the last bits of the result; on one thread the same input gives
the identical table on every machine. Independent fits in parallel Python threads (each on one
thread, so still deterministic) were measured on 2 cores too: at most 20% faster for two KMeans
sweeps and slower for the mixtures or Ward beside anything (they hold the GIL between numeric
kernels), so the steps run one after another.

Imports. scikit-learn and SciPy are imported inside the functions that use them, so the loyalty
models (numpy and Arrow only) and the profiles (SciPy's cdist) start without loading
scikit-learn (about 1.8 s per process); in one dbt process everything is imported once anyway.
`_single_threaded` imports what its block uses before limiting the threads.

Measured with scripts/bench_segmentation.py on 2 shared cores (one thread; the model's compute
with the libraries loaded, before -> after): segment_model_selection 17.6 s -> 2.5-2.8 s for
the 78,904 customers of the 10M-line data, 17.6 s -> 2.6-3.4 s for 79,000 synthetic customers
(KMeans needs more iterations on them) and 28.3 s -> 2.9-3.5 s for 800,000, peak RSS 1.0-1.1 GB
-> 0.32-0.43 GB; the other five models at 800,000 together 7.3 s -> 2.8-3.6 s. In a process
of its own a model also pays its imports: scikit-learn about 1.8 s, SciPy's cdist 0.4 s. The
same k was selected and 99.8-99.9% of customers kept their segment id.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from customer_segmentation import var_spec

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.cluster import KMeans

RANDOM_STATE = 42
# KMeans starts per k in the sweep (k-means++ seeding; the lowest inertia is kept).
N_INIT = 10
# KMeans sweep over k: all customers up to this many, else a deterministic sample of this size.
SWEEP_SAMPLE_SIZE = 20_000
# KMeans silhouettes (the rule's tie-break) and the profiles' silhouettes: all customers up to
# this many, else a deterministic sample (a subset of the sweep rows).
SCORE_SAMPLE_SIZE = 10_000
# Gaussian mixtures and Ward clustering (comparison only) and their silhouettes: a subset of
# the score sample. Ward needs the n*(n-1)/2 pairwise distances and O(n^2) time.
COMPARISON_SAMPLE_SIZE = 3_000
# Every k whose knee distance is at least this fraction of the largest counts as tied.
KNEE_TIE_FRACTION = 0.9
# Value tiers: clusters per dimension (1 = worst .. n = best).
VALUE_TIER_CLUSTERS = 4

# From the dbt vars' spec (macros/var_spec.sql), like validate_settings' checks.
ALLOWED_FEATURES = tuple(var_spec.SPEC["segment_features"]["choices"])
DEFAULT_FEATURES = tuple(var_spec.default("segment_features"))
K_LIMITS = tuple(var_spec.SPEC["segment_k"]["range"])
# Revenue in profiles and the loyalty summary: monetary (gross sales minus returns, floored
# at 0), the same column that orders the segments.
REVENUE_COLUMN = "monetary"


# customer_rfm columns each step reads besides customer_id, as_of_date and the features (the
# models select just these in DuckDB, so unused columns never cross into Python).
SEGMENT_COLUMNS = ("monetary",)
VALUE_TIER_COLUMNS = ("recency_days", "frequency", "monetary")
SUMMARY_COLUMNS = (REVENUE_COLUMN, "monetary", "frequency", "recency_days")


def rfm_columns(*groups: Sequence[str]) -> list[str]:
    """customer_id, as_of_date and the given customer_rfm columns, each once, in order.

    The models pass these to `dbt.ref("customer_rfm").select(...)` before `.to_arrow_table()`:
    at 1,000,000 customers the whole customer_rfm is 190 MB of Arrow, the five columns the
    segments need 40 MB.
    """
    return list(dict.fromkeys(["customer_id", "as_of_date", *(c for g in groups for c in g)]))


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SegmentSettings:
    """Validated segmentation settings (the dbt vars segment_k_min/_max, segment_k, _features)."""

    k_min: int
    k_max: int
    k_fixed: int | None
    features: tuple[str, ...]


def validate_settings(
    k_min: object = var_spec.default("segment_k_min"),
    k_max: object = var_spec.default("segment_k_max"),
    k_fixed: object = var_spec.default("segment_k"),
    features: object = DEFAULT_FEATURES,
) -> SegmentSettings:
    """Check the segmentation vars again in Python, as dbt did; raise ValueError naming the var."""
    values = {"segment_k_min": k_min, "segment_k_max": k_max, "segment_k": k_fixed}
    values["segment_features"] = features
    for name, value in values.items():
        var_spec.check(name, value, values)
    fixed = None if k_fixed is None else int(k_fixed)  # type: ignore[arg-type]
    return SegmentSettings(int(k_min), int(k_max), fixed, tuple(features))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- helpers


# What each step's single-threaded block uses (see `_single_threaded`).
KMEANS_MODULES = ("sklearn.cluster",)
SELECTION_MODULES = (
    "sklearn.cluster",
    "sklearn.mixture",
    "sklearn.metrics",
    "scipy.cluster.hierarchy",
    "scipy.spatial.distance",
)
SILHOUETTE_MODULES = ("scipy.spatial.distance",)


@contextmanager
def _single_threaded(*modules: str) -> Iterator[None]:
    """One OpenMP/BLAS thread: scikit-learn's threaded KMeans reduction is order-dependent.

    threadpoolctl limits only the thread pools of libraries already loaded, so the modules the
    block will use are imported first (scikit-learn loads its OpenMP runtime, SciPy its own
    OpenBLAS). The limits are set on every entry and never restored: OpenBLAS's limit is
    process-wide, OpenMP's per thread, and dbt runs Python models side by side in threads, so
    a block restoring limits on exit gave another thread's running block its BLAS threads
    back (silhouettes that differed in the last bits between builds). Nothing else in the dbt
    process uses BLAS or OpenMP.
    """
    for module in modules:
        importlib.import_module(module)
    threadpool_limits(limits=1)
    yield


def as_arrow(data: pa.Table | pd.DataFrame) -> pa.Table:
    """An Arrow table from an Arrow table or a pandas DataFrame."""
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        raise ValueError(f"customer_rfm has no column {name!r} (columns: {table.column_names})")
    column = table.column(name)
    if column.null_count:
        raise ValueError(f"customer_rfm.{name} has {column.null_count} null value(s)")
    return column.cast(pa.float64()).to_numpy().astype(np.float64, copy=True)


def _sorted_customers(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """customer_id ascending and the row order that sorts the table by it.

    Fails on a missing column, null ids or a repeated id (checked on the sorted ids: at
    1,000,000 customers np.unique's hash table took 0.6 s, the sort takes 0.07 s and an input
    that arrives sorted costs one comparison pass).
    """
    if "customer_id" not in table.column_names:
        raise ValueError("the input has no column 'customer_id'")
    column = table.column("customer_id")
    if column.null_count:
        raise ValueError(f"customer_id has {column.null_count} null value(s)")
    ids = column.cast(pa.int64()).to_numpy()
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return ids, np.arange(len(ids))
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if bool(np.any(ids[1:] == ids[:-1])):
        raise ValueError("customer_id is not unique")
    return ids, order


def _as_of_date(table: pa.Table) -> pa.Scalar:
    """The one as_of_date of a customer_rfm table (null for an empty table)."""
    if "as_of_date" not in table.column_names:
        return pa.scalar(None, pa.date32())
    values = pc.unique(table.column("as_of_date").cast(pa.date32()))
    if len(values) > 1:
        raise ValueError(f"customer_rfm holds {len(values)} different as_of_date values")
    return values[0] if len(values) else pa.scalar(None, pa.date32())


def _repeat_date(table: pa.Table, rows: int) -> pa.Array:
    """The table's as_of_date repeated `rows` times, as a date32 column."""
    return pa.repeat(_as_of_date(table).cast(pa.date32()), rows)


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


# --------------------------------------------------------------------------- features


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
    ids, order = _sorted_customers(table)
    raw = (
        np.column_stack([_float_column(table, f)[order] for f in features])
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


# --------------------------------------------------------------------------- metrics


def silhouettes(
    points: np.ndarray, labelings: Sequence[np.ndarray], block_elements: int = 2_000_000
) -> list[np.ndarray]:
    """Per-point silhouette values of several labelings of the same points (Euclidean).

    Same definition as sklearn.metrics.silhouette_samples (a point alone in its cluster
    scores 0). The pairwise distances are computed once, for all labelings, in blocks of rows
    against the rows after them (each distance once: the matrix is symmetric), and one matrix
    product with the labelings' concatenated one-hot matrices sums each point's distances to
    every cluster of every labeling. 9 labelings of 10,000 points take about 0.6 s; the
    former per-labeling products took 4 times as long. A labeling with fewer than 2 or more
    than n - 1 distinct labels gives NaN values.
    """
    from scipy.spatial.distance import cdist

    n = len(points)
    results = [np.full(n, np.nan) for _ in labelings]
    coded = []
    for labels in labelings:
        uniq, codes = np.unique(np.asarray(labels), return_inverse=True)
        coded.append((len(uniq), codes.reshape(-1)))
    valid = [i for i, (m, _) in enumerate(coded) if 2 <= m <= n - 1]
    if not valid:
        return results
    offsets = np.cumsum([0] + [coded[i][0] for i in valid])
    onehot = np.zeros((n, int(offsets[-1])))
    for j, i in enumerate(valid):
        onehot[np.arange(n), offsets[j] + coded[i][1]] = 1.0
    sizes = onehot.sum(axis=0)
    sums = np.zeros_like(onehot)  # (n, clusters of all labelings): distance sums per cluster
    block = max(1, min(n, block_elements // max(n, 1)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        dist = cdist(points[start:stop], points[start:])
        sums[start:stop] += dist @ onehot[start:]
        if stop < n:
            sums[stop:] += dist[:, stop - start :].T @ onehot[start:stop]
    rows = np.arange(n)
    for j, i in enumerate(valid):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        own = coded[i][1]
        own_size = sizes[lo:hi][own]
        a = sums[rows, lo + own] / np.maximum(own_size - 1, 1)
        means = sums[:, lo:hi] / sizes[lo:hi]
        means[rows, own] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (b - a) / np.maximum(a, b)
        results[i] = np.where(own_size > 1, np.nan_to_num(s, nan=0.0), 0.0)
    return results


def _mean_or_nan(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) and not np.isnan(values).any() else float("nan")


def gaussian_mixture_labels(points: np.ndarray, k: int) -> np.ndarray:
    """Most likely component of each point under a k-component Gaussian mixture fitted to them
    (scikit-learn's GaussianMixture: full covariance, n_init 1, random_state 42)."""
    from sklearn.mixture import GaussianMixture

    mixture = GaussianMixture(
        n_components=k, covariance_type="full", n_init=1, random_state=RANDOM_STATE
    )
    return mixture.fit(points).predict(points)


def ward_clusters(points: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """(n, len(ks)) labels of Ward agglomerative clustering cut into exactly k clusters each:
    one tree (scipy.cluster.hierarchy.linkage), cut for every k (cut_tree)."""
    n = len(points)
    if n < 2:
        return np.zeros((n, len(ks)), dtype=np.int64)
    from scipy.cluster.hierarchy import cut_tree, linkage

    return cut_tree(linkage(points, method="ward"), n_clusters=list(ks))


# --------------------------------------------------------------------------- selection rule


def knee_distances(ks: Sequence[int], inertias: Sequence[float]) -> np.ndarray:
    """Kneedle: how far each point of the min-max normalised inertia curve lies below the chord.

    k and inertia are scaled to [0, 1] (inertia by its first and last value), and the distance
    is the chord (from the first to the last point) minus the curve. A convex, falling curve has
    its largest distance at the knee (the elbow). Fewer than 3 points, or a flat curve: zeros.
    """
    ks_arr = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertias, dtype=np.float64)
    if len(ks_arr) < 3 or y[0] == y[-1]:
        return np.zeros(len(ks_arr))
    x = (ks_arr - ks_arr[0]) / (ks_arr[-1] - ks_arr[0])
    y_norm = (y - y[-1]) / (y[0] - y[-1])
    return (1.0 - x) - y_norm


@dataclass(frozen=True)
class Choice:
    """The k the rule picks, the candidates it weighed, and the rule in words."""

    k: int
    candidates: tuple[int, ...]
    rule: str


def choose_k(
    ks: Sequence[int],
    inertias: Sequence[float],
    silhouette_values: Sequence[float],
    tie_fraction: float = KNEE_TIE_FRACTION,
) -> Choice:
    """The selection rule: knee of the inertia curve, silhouette as tie-break.

    The knee is the k with the largest kneedle distance (`knee_distances`). Every k whose
    distance is at least `tie_fraction` of the largest counts as tied with it, and among the
    tied k the highest KMeans silhouette wins (then the smaller k). With fewer than 3 values of
    k, or no knee (no point below the chord), the highest silhouette over all k wins.
    """
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("no k to choose from")
    sil = np.nan_to_num(np.asarray(silhouette_values, dtype=np.float64), nan=-np.inf)
    dist = knee_distances(ks, inertias)
    best = float(dist.max()) if len(dist) else 0.0
    if len(ks) >= 3 and best > 0:
        candidates = [k for k, d in zip(ks, dist, strict=True) if d >= tie_fraction * best]
        how = (
            f"knee of the KMeans inertia curve over k = {ks[0]}..{ks[-1]} (kneedle: the k "
            f"whose min-max normalised inertia lies furthest below the chord from the first to "
            f"the last k); every k within {tie_fraction:.0%} of that distance counts as tied "
            f"and the highest KMeans silhouette among them wins, then the smaller k"
        )
    else:
        candidates = list(ks)
        reason = "fewer than 3 values of k" if len(ks) < 3 else "the inertia curve has no knee"
        how = f"{reason}: the highest KMeans silhouette over k = {ks[0]}..{ks[-1]} wins"
    chosen = min(candidates, key=lambda k: (-sil[ks.index(k)], k))
    listed = ", ".join(str(k) for k in candidates)
    return Choice(chosen, tuple(candidates), f"{how}; candidates k = {listed}; chose k = {chosen}")


# --------------------------------------------------------------------------- model selection


def _kmeans(k: int, init: str | np.ndarray = "k-means++") -> KMeans:
    from sklearn.cluster import KMeans

    if isinstance(init, np.ndarray):
        return KMeans(n_clusters=k, init=init, n_init=1, random_state=RANDOM_STATE)
    return KMeans(n_clusters=k, init=init, n_init=N_INIT, random_state=RANDOM_STATE)


SELECTION_SCHEMA = pa.schema(
    [
        ("k", pa.int32()),
        ("inertia", pa.float64()),
        ("silhouette", pa.float64()),
        ("davies_bouldin", pa.float64()),
        ("calinski_harabasz", pa.float64()),
        ("gmm_silhouette", pa.float64()),
        ("agglomerative_silhouette", pa.float64()),
        ("knee_distance", pa.float64()),
        ("is_knee_candidate", pa.bool_()),
        ("is_selected", pa.bool_()),
        ("selection_rule", pa.string()),
        ("features", pa.string()),
        ("customers", pa.int64()),
        ("fit_rows", pa.int64()),
        ("score_rows", pa.int64()),
        ("comparison_rows", pa.int64()),
        ("n_init", pa.int32()),
        ("random_state", pa.int32()),
        ("centroids_json", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)


def k_limit(customers: int, distinct: int, fit_rows: int) -> tuple[int, str]:
    """The largest k the customers allow, and why, in words (naming the number of customers).

    The silhouette, Davies-Bouldin and Calinski-Harabasz need 2 <= k <= customers - 1 (KMeans,
    the Gaussian mixtures and Ward need k <= customers), and KMeans finds no more clusters than
    there are distinct feature vectors among the sweep rows. Up to SCORE_SAMPLE_SIZE customers
    every sample holds all of them; above it neither limit comes near K_LIMITS.
    """
    if distinct >= customers - 1:
        return customers - 1, (
            f"customer_rfm has {customers} customers, and the silhouette, Davies-Bouldin and "
            f"Calinski-Harabasz need k <= customers - 1 = {customers - 1}"
        )
    among = "" if fit_rows == customers else f" among its {fit_rows} sweep rows"
    return distinct, (
        f"customer_rfm has {customers} customers with {distinct} distinct feature vectors"
        f"{among}, and KMeans finds no more clusters than distinct feature vectors"
    )


def select_segment_count(rfm: pa.Table | pd.DataFrame, settings: SegmentSettings) -> pa.Table:
    """The model-selection table: one row per k tried, exactly one with is_selected.

    KMeans is fitted once per k on the sweep rows (inertia, Davies-Bouldin and
    Calinski-Harabasz on them); its centroids are kept (centroids_json) so that
    `fit_customer_segments` continues from the selected solution instead of starting over. Its
    silhouette is that of the score rows labelled with their nearest centroid. The Gaussian
    mixtures and Ward clustering are fitted on the comparison rows and scored there. A fixed
    segment_k outside segment_k_min..segment_k_max is added as a row of its own. The range stops
    at what the customers allow (`k_limit`), and selection_rule says so; a segment_k_min or a
    fixed segment_k above that fails naming the var and the number of customers.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    table = as_arrow(rfm)
    fm = prepare_features(table, settings.features)
    n = len(fm.customer_ids)
    fit_idx = sample_positions(fm.customer_ids, SWEEP_SAMPLE_SIZE)
    score_idx = sample_positions(fm.customer_ids, SCORE_SAMPLE_SIZE)
    compare_idx = sample_positions(fm.customer_ids, COMPARISON_SAMPLE_SIZE)
    x_fit = fm.standardised[fit_idx]
    x_score = fm.standardised[score_idx]
    x_compare = fm.standardised[compare_idx]
    distinct = len(np.unique(x_fit, axis=0)) if n else 0

    limit, why = k_limit(n, distinct, len(fit_idx))
    fix = (
        f"set it to at most {limit}"
        if limit >= K_LIMITS[0]
        else f"the segmentation needs at least {K_LIMITS[0] + 1} customers with distinct features"
    )
    if settings.k_fixed is not None and settings.k_fixed > limit:
        raise ValueError(
            f"dbt var 'segment_k' = {settings.k_fixed} is more than the data allows: {why}; {fix}"
        )
    if settings.k_min > limit and settings.k_fixed is None:
        raise ValueError(
            f"dbt var 'segment_k_min' = {settings.k_min} is more than the data allows: {why}; {fix}"
        )
    ks = list(range(settings.k_min, min(settings.k_max, limit) + 1))
    if settings.k_fixed is not None and settings.k_fixed not in ks:
        ks = sorted([*ks, settings.k_fixed])

    rows: list[dict[str, object]] = []
    with _single_threaded(*SELECTION_MODULES), warnings.catch_warnings():
        # KMeans on fewer distinct points than k (in the sweep or a mixture's start) warns;
        # the labels are still valid for the comparison.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ward_labels = ward_clusters(x_compare, ks)
        kmeans_labels: list[np.ndarray] = []
        comparison_labels: list[np.ndarray] = []
        for i, k in enumerate(ks):
            km = _kmeans(k).fit(x_fit)
            kmeans_labels.append(km.predict(x_score))
            comparison_labels += [
                gaussian_mixture_labels(x_compare, k)
                if len(x_compare) >= k
                else np.zeros(len(x_compare), dtype=np.int64),
                ward_labels[:, i],
            ]
            rows.append(
                {
                    "k": k,
                    "inertia": float(km.inertia_),
                    "davies_bouldin": float(davies_bouldin_score(x_fit, km.labels_)),
                    "calinski_harabasz": float(calinski_harabasz_score(x_fit, km.labels_)),
                    "centroids_json": json.dumps(km.cluster_centers_.tolist()),
                }
            )
        kmeans_sil = silhouettes(x_score, kmeans_labels)
        comparison_sil = silhouettes(x_compare, comparison_labels)
    for i, row in enumerate(rows):
        row["silhouette"] = _mean_or_nan(kmeans_sil[i])
        row["gmm_silhouette"] = _mean_or_nan(comparison_sil[2 * i])
        row["agglomerative_silhouette"] = _mean_or_nan(comparison_sil[2 * i + 1])

    sweep = [k for k in ks if settings.k_min <= k <= settings.k_max] or ks
    by_k = {int(r["k"]): r for r in rows}
    choice = choose_k(
        sweep, [by_k[k]["inertia"] for k in sweep], [by_k[k]["silhouette"] for k in sweep]
    )
    distances = dict(
        zip(sweep, knee_distances(sweep, [by_k[k]["inertia"] for k in sweep]), strict=True)
    )
    rule = choice.rule
    if settings.k_max > limit:
        rule += (
            f"; k range shrunk from segment_k_min..segment_k_max = {settings.k_min}.."
            f"{settings.k_max} to {settings.k_min}..{limit}: segment_k_max = {settings.k_max} "
            f"is more than the data allows ({why})"
            if settings.k_min <= limit
            else f"; no k of segment_k_min..segment_k_max = {settings.k_min}..{settings.k_max} "
            f"fits the data ({why}), so only segment_k was fitted"
        )
    selected = choice.k
    if settings.k_fixed is not None:
        selected = settings.k_fixed
        rule = (
            f"fixed by dbt var segment_k = {selected}; the rule would choose k = {choice.k}: {rule}"
        )
    as_of = _as_of_date(table)
    for row in rows:
        k = int(row["k"])
        row.update(
            knee_distance=float(distances[k]) if k in distances else None,
            is_knee_candidate=k in choice.candidates,
            is_selected=k == selected,
            selection_rule=rule,
            features=",".join(settings.features),
            customers=n,
            fit_rows=len(fit_idx),
            score_rows=len(score_idx),
            comparison_rows=len(compare_idx),
            n_init=N_INIT,
            random_state=RANDOM_STATE,
            as_of_date=as_of.as_py(),
        )
    return pa.Table.from_pylist(
        [{f.name: _nan_to_none(row[f.name]) for f in SELECTION_SCHEMA} for row in rows],
        schema=SELECTION_SCHEMA,
    )


def _nan_to_none(value: object) -> object:
    return None if isinstance(value, float) and np.isnan(value) else value


@dataclass(frozen=True)
class SelectedModel:
    """The selected row of segment_model_selection: k, features and the KMeans centroids."""

    k: int
    features: tuple[str, ...]
    centroids: np.ndarray


def selected_model(selection: pa.Table | pd.DataFrame) -> SelectedModel:
    """Read the one selected k of a segment_model_selection table; fail clearly otherwise."""
    table = as_arrow(selection)
    picked = table.filter(pc.equal(table.column("is_selected"), True)).to_pylist()
    if len(picked) != 1:
        raise ValueError(
            f"segment_model_selection must have exactly one selected k, found {len(picked)}"
        )
    row = picked[0]
    features = tuple(str(row["features"]).split(","))
    centroids = np.asarray(json.loads(row["centroids_json"]), dtype=np.float64)
    if centroids.shape != (row["k"], len(features)):
        raise ValueError(
            f"segment_model_selection: centroids of shape {centroids.shape} do not match "
            f"k = {row['k']} and features {features}"
        )
    return SelectedModel(int(row["k"]), features, centroids)


# --------------------------------------------------------------------------- segments


def order_clusters(labels: np.ndarray, monetary: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Map arbitrary KMeans labels 0..k-1 to segment ids 1..k: 1 = highest mean monetary.

    Ties in mean monetary (original units) are broken by the centroid coordinates, descending
    in the order of the features, then by size, so the ids depend on the clusters' content only.
    """
    k = len(centers)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.bincount(labels, weights=monetary, minlength=k)
    means = np.divide(sums, counts, out=np.full(k, -np.inf), where=counts > 0)
    keys = [-means] + [-centers[:, j] for j in range(centers.shape[1])] + [-counts]
    ranked = np.lexsort(tuple(reversed(keys)))  # lexsort: last key is the primary one
    segment_of = np.empty(k, dtype=np.int32)
    segment_of[ranked] = np.arange(1, k + 1, dtype=np.int32)
    return segment_of[labels]


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
    table = as_arrow(rfm)
    model = selected_model(selection)
    fm = prepare_features(table, model.features)
    if len(fm.customer_ids) < model.k:
        raise ValueError(f"{len(fm.customer_ids)} customers cannot form {model.k} segments")
    with _single_threaded(*KMEANS_MODULES):
        km = _kmeans(model.k, init=model.centroids).fit(fm.standardised)
    monetary = _float_column(table, "monetary")[fm.order]
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
    columns["as_of_date"] = _repeat_date(table, len(segment_id))
    return pa.table(columns)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class _Aligned:
    """customer_rfm sorted by customer_id with each customer's segment id."""

    customer_ids: np.ndarray  # ascending
    order: np.ndarray  # customer_rfm row of each sorted position
    segment_id: np.ndarray  # int32, per sorted position


def _align_segments(segments: pa.Table, rfm: pa.Table) -> _Aligned:
    """Every customer of customer_rfm with its one segment, in customer_id order.

    Both tables sorted by customer_id must hold the same ids; a customer without a segment, a
    segment row without a customer or a repeated id fails clearly. (A sort and one comparison:
    the pandas merge it replaces took 1 s at 1,000,000 customers.)
    """
    rfm_ids, rfm_order = _sorted_customers(rfm)
    seg_ids, seg_order = _sorted_customers(segments)
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
    return _Aligned(rfm_ids, rfm_order, segment_id)


@dataclass(frozen=True)
class _Groups:
    """Rows grouped by label: one stable sort, reused for every measure."""

    order: np.ndarray  # rows sorted by label (stable)
    bounds: list[tuple[int, int]]  # per group id: its slice of `order`

    @classmethod
    def of(cls, labels: np.ndarray, groups: np.ndarray) -> _Groups:
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        lo = np.searchsorted(sorted_labels, groups, side="left")
        hi = np.searchsorted(sorted_labels, groups, side="right")
        return cls(order, [(int(a), int(b)) for a, b in zip(lo, hi, strict=True)])

    def counts(self) -> np.ndarray:
        return np.array([b - a for a, b in self.bounds], dtype=np.int64)

    def stats(self, values: np.ndarray, median: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(mean, median) of `values` per group (NaN for an empty group)."""
        sorted_values = values[self.order]
        means = np.full(len(self.bounds), np.nan)
        medians = np.full(len(self.bounds), np.nan)
        for g, (a, b) in enumerate(self.bounds):
            if b > a:
                means[g] = np.mean(sorted_values[a:b])
                if median:
                    medians[g] = np.median(sorted_values[a:b])
        return means, medians


PROFILE_MEASURES = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "distinct_products",
    "returned_amount",
    "return_lines",
)


def _float_array(values: np.ndarray) -> pa.Array:
    """float64 Arrow array with NaN as null (as pandas-to-Arrow conversion does)."""
    return pa.array(np.asarray(values, dtype=np.float64), pa.float64(), from_pandas=True)


def segment_profiles(
    segments: pa.Table | pd.DataFrame,
    rfm: pa.Table | pd.DataFrame,
    selection: pa.Table | pd.DataFrame,
    personas: pa.Table | pd.DataFrame | None = None,
) -> pa.Table:
    """One row per segment: size, revenue and their shares, means and medians, the centroid in
    original units and the mean silhouette of its customers in the score sample."""
    seg_table, rfm_table = as_arrow(segments), as_arrow(rfm)
    model = selected_model(selection)
    aligned = _align_segments(seg_table, rfm_table)
    labels = aligned.segment_id  # sorted by customer_id, like fm below
    fm = prepare_features(rfm_table, model.features)
    score_idx = sample_positions(fm.customer_ids, SCORE_SAMPLE_SIZE)
    with _single_threaded(*SILHOUETTE_MODULES):
        sil = silhouettes(fm.standardised[score_idx], [labels[score_idx]])[0]

    segment_ids = np.arange(1, model.k + 1, dtype=np.int32)
    names = persona_lookup(personas, model.k)
    total_customers = len(labels)
    revenue_values = _float_column(rfm_table, REVENUE_COLUMN)[aligned.order]
    total_revenue = float(revenue_values.sum())
    position = np.searchsorted(segment_ids, labels)
    known = (position < model.k) & (segment_ids[np.minimum(position, model.k - 1)] == labels)
    counts = np.bincount(position[known], minlength=model.k).astype(np.int64)
    revenue = np.bincount(position[known], weights=revenue_values[known], minlength=model.k)

    columns: dict[str, pa.Array] = {
        "segment_id": pa.array(segment_ids, pa.int32()),
        "segment_name": pa.array([names[s].name for s in range(1, model.k + 1)], pa.string()),
        "persona_description": pa.array(
            [names[s].description for s in range(1, model.k + 1)], pa.string()
        ),
        "marketing_action": pa.array(
            [names[s].marketing_action for s in range(1, model.k + 1)], pa.string()
        ),
        "k": pa.repeat(pa.scalar(model.k, pa.int32()), model.k),
        "customers": pa.array(counts, pa.int64()),
        "share_of_customers": _float_array(
            counts / total_customers if total_customers else np.full(model.k, np.nan)
        ),
        "revenue": _float_array(revenue),
        "share_of_revenue": _float_array(
            revenue / total_revenue if total_revenue > 0 else np.full(model.k, np.nan)
        ),
    }
    groups = _Groups.of(labels, segment_ids)
    for measure in PROFILE_MEASURES:
        means, medians = groups.stats(_float_column(rfm_table, measure)[aligned.order])
        columns[f"mean_{measure}"] = _float_array(means)
        columns[f"median_{measure}"] = _float_array(medians)
    logged = log1p_clipped(fm.raw)
    for j, feature in enumerate(model.features):
        mean_log, _ = groups.stats(logged[:, j], median=False)
        columns[f"centroid_{feature}"] = _float_array(np.expm1(mean_log))
    sampled = _Groups.of(labels[score_idx], segment_ids)
    columns["mean_silhouette"] = _float_array(sampled.stats(sil, median=False)[0])
    columns["silhouette_sample_customers"] = pa.array(sampled.counts(), pa.int64())
    columns["as_of_date"] = _repeat_date(rfm_table, model.k)
    return pa.table(columns)


# --------------------------------------------------------------------------- loyalty


LOYALTY_COLUMNS = (
    "country",
    "first_purchase_at",
    "last_purchase_at",
    "recency_days",
    "frequency",
    "monetary",
    "gross_revenue",
    "returned_amount",
    "avg_order_value",
    "total_items",
    "distinct_products",
    "return_lines",
    "tenure_days",
    "r_score",
    "f_score",
    "m_score",
    "rfm_cell",
    "rfm_segment",
)


def loyalty_members(segments: pa.Table | pd.DataFrame, rfm: pa.Table | pd.DataFrame) -> pa.Table:
    """The loyalty programme: the customers of segment 1 with their RFM figures, by id."""
    seg_table, rfm_table = as_arrow(segments), as_arrow(rfm)
    members = seg_table.filter(pc.equal(seg_table.column("segment_id"), 1)).select(
        ["customer_id", "segment_id", "segment_name", "k", "distance_to_centroid"]
    )
    member_ids, member_order = _sorted_customers(members)
    keep = ["customer_id", *[c for c in LOYALTY_COLUMNS if c in rfm_table.column_names]]
    if "as_of_date" in rfm_table.column_names:
        keep.append("as_of_date")
    # Only the members' rows of customer_rfm are taken, then both sides are put in
    # customer_id order and matched row for row (no hash join).
    rfm_ids = rfm_table.column("customer_id").cast(pa.int64()).to_numpy()
    is_member = pc.is_in(rfm_table.column("customer_id"), value_set=members.column("customer_id"))
    rows = np.flatnonzero(is_member.to_numpy(zero_copy_only=False))
    rows = rows[np.argsort(rfm_ids[rows], kind="stable")]
    if not np.array_equal(rfm_ids[rows], member_ids):
        raise ValueError("some segment-1 customers are missing from customer_rfm")
    member_rfm = rfm_table.select(keep).take(pa.array(rows))
    ordered = members.take(pa.array(member_order))
    first = ["customer_id", "segment_id", "segment_name", "k"]
    rest = [c for c in keep if c != "customer_id"]
    return pa.table(
        {
            **{c: ordered.column(c) for c in first},
            **{c: member_rfm.column(c) for c in rest},
            "distance_to_centroid": ordered.column("distance_to_centroid"),
        }
    )


def loyalty_summary(segments: pa.Table | pd.DataFrame, rfm: pa.Table | pd.DataFrame) -> pa.Table:
    """One row: who is eligible for the loyalty programme (segment 1) and how many they are."""
    seg_table, rfm_table = as_arrow(segments), as_arrow(rfm)
    aligned = _align_segments(seg_table, rfm_table)
    member = aligned.segment_id == 1
    # In customer_id order, as segment_profiles sums them, so the shares agree exactly.
    by_id = {c: _float_column(rfm_table, c)[aligned.order] for c in dict.fromkeys(SUMMARY_COLUMNS)}
    values = {c: v[member] for c, v in by_id.items()}
    customers = len(aligned.customer_ids)
    members = int(np.count_nonzero(member))
    total_revenue = float(by_id[REVENUE_COLUMN].sum())
    revenue = float(values[REVENUE_COLUMN].sum())
    k_values = pc.unique(seg_table.column("k")).to_pylist() if seg_table.num_rows else [None]
    names = seg_table.filter(pc.equal(seg_table.column("segment_id"), 1)).column("segment_name")
    row = {
        "segment_id": 1,
        "segment_name": names[0].as_py() if len(names) else None,
        "k": k_values[0],
        "members": members,
        "customers": customers,
        "share_of_customers": members / customers if customers else None,
        "revenue": revenue,
        "total_revenue": total_revenue,
        "share_of_revenue": revenue / total_revenue if total_revenue > 0 else None,
        "mean_monetary": float(np.mean(values["monetary"])) if members else None,
        "median_monetary": float(np.median(values["monetary"])) if members else None,
        "mean_frequency": float(np.mean(values["frequency"])) if members else None,
        "mean_recency_days": float(np.mean(values["recency_days"])) if members else None,
        "eligibility_rule": (
            "member = customer of segment 1, the KMeans segment with the highest mean monetary "
            "(net spend) among the k segments of customer_segments"
        ),
        "as_of_date": _as_of_date(rfm_table).as_py(),
    }
    schema = pa.schema(
        [
            ("segment_id", pa.int32()),
            ("segment_name", pa.string()),
            ("k", pa.int32()),
            ("members", pa.int64()),
            ("customers", pa.int64()),
            ("share_of_customers", pa.float64()),
            ("revenue", pa.float64()),
            ("total_revenue", pa.float64()),
            ("share_of_revenue", pa.float64()),
            ("mean_monetary", pa.float64()),
            ("median_monetary", pa.float64()),
            ("mean_frequency", pa.float64()),
            ("mean_recency_days", pa.float64()),
            ("eligibility_rule", pa.string()),
            ("as_of_date", pa.date32()),
        ]
    )
    return pa.Table.from_pylist([row], schema=schema)


# --------------------------------------------------------------------------- value tiers


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
        with _single_threaded(*KMEANS_MODULES):
            km = _kmeans(k).fit(uniq.reshape(-1, 1), sample_weight=counts.astype(np.float64))
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
    ids, order = _sorted_customers(table)
    measures = ("recency_days", "frequency", "monetary")
    sorted_rfm = table.select(list(measures)).take(pa.array(order))
    scores = {}
    for name, better_high in zip(measures, (False, True, True), strict=True):
        scores[name] = cluster_scores_1d(
            _float_column(table, name)[order], n_clusters, higher_is_better=better_high
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
            "as_of_date": _repeat_date(table, len(ids)),
        }
    )
