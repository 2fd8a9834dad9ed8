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

Scale (measured with scripts/bench_segmentation.py): the KMeans sweep fits on all customers up
to ``SWEEP_SAMPLE_SIZE`` and on a deterministic sample of that size above it; silhouettes, the
Gaussian mixtures and Ward clustering (all O(n^2) in time or memory) use a deterministic sample
of ``SCORE_SAMPLE_SIZE``. The final segments are fitted on every customer. Samples are the
customers with the smallest hash of their customer_id (`sample_positions`): independent of row
order, and a customer stays sampled when others are added. Fits run on one thread: scikit-learn's
multi-threaded KMeans adds per-thread partial sums in whatever order the threads finish, which
changes the last bits of the result between runs; on one thread the same input gives the
identical table, and on the machines measured one thread was no slower.

Measured at 1,000,000 synthetic customers (scripts/bench_segmentation.py, 2 shared cores): the
six models take about 50 s together, peak RSS 1.2 GB (the model selection; Ward's pairwise
distances of the 10,000-customer score sample dominate), 0.5-0.7 GB for each of the others.
KMeans, not MiniBatchKMeans: the sweep k = 2..10 took 13.5 s with KMeans on the 200,000-customer
sample, 46 s with MiniBatchKMeans on all customers (76 s KMeans on all), and MiniBatchKMeans'
inertia was up to 9% worse; the final refit from given centroids took 0.2 s with KMeans against
0.8-5 s with MiniBatchKMeans. Fitted on the sample, KMeans came within 0.02% of the inertia
of a fit on all customers.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.cluster.hierarchy import cut_tree, linkage
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

RANDOM_STATE = 42
N_INIT = 10
# KMeans sweep over k: all customers up to this many, else a deterministic sample of this size.
SWEEP_SAMPLE_SIZE = 200_000
# Silhouettes, Gaussian mixtures and Ward clustering: all customers up to this many, else a
# deterministic sample. Ward needs the n*(n-1)/2 pairwise distances (0.4 GB at 10,000).
SCORE_SAMPLE_SIZE = 10_000
# Every k whose knee distance is at least this fraction of the largest counts as tied.
KNEE_TIE_FRACTION = 0.9
# Value tiers: clusters per dimension (1 = worst .. n = best).
VALUE_TIER_CLUSTERS = 4

ALLOWED_FEATURES = (
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
)
DEFAULT_FEATURES = ("recency_days", "frequency", "monetary")
K_LIMITS = (2, 20)
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


def _check_k(name: str, value: object, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(
            f"dbt var '{name}' must be a whole number from {K_LIMITS[0]} to {K_LIMITS[1]}"
            f"{' or null' if allow_none else ''}, got {value!r}"
        )
    if not K_LIMITS[0] <= int(value) <= K_LIMITS[1]:
        raise ValueError(
            f"dbt var '{name}' must be from {K_LIMITS[0]} to {K_LIMITS[1]}, got {value!r}"
        )
    return int(value)


def validate_settings(
    k_min: object = 2,
    k_max: object = 10,
    k_fixed: object = None,
    features: object = DEFAULT_FEATURES,
) -> SegmentSettings:
    """Check the segmentation vars again in Python; raise ValueError naming the var."""
    lo = _check_k("segment_k_min", k_min)
    hi = _check_k("segment_k_max", k_max)
    fixed = _check_k("segment_k", k_fixed, allow_none=True)
    assert lo is not None and hi is not None
    if hi < lo:
        raise ValueError(f"dbt var 'segment_k_max' ({hi}) must be at least segment_k_min ({lo})")
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise ValueError(
            f"dbt var 'segment_features' must be a non-empty list of customer_rfm columns "
            f"from {', '.join(ALLOWED_FEATURES)}, got {features!r}"
        )
    for feature in features:
        if feature not in ALLOWED_FEATURES:
            raise ValueError(
                f"dbt var 'segment_features': {feature!r} is not one of "
                f"{', '.join(ALLOWED_FEATURES)}"
            )
    if len(set(features)) != len(features):
        raise ValueError(f"dbt var 'segment_features' must not repeat a feature: {features!r}")
    return SegmentSettings(lo, hi, fixed, tuple(str(f) for f in features))


# --------------------------------------------------------------------------- helpers


@contextmanager
def _single_threaded() -> Iterator[None]:
    """One OpenMP/BLAS thread: scikit-learn's threaded KMeans reduction is order-dependent."""
    with threadpool_limits(limits=1):
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


def _customer_ids(table: pa.Table) -> np.ndarray:
    if "customer_id" not in table.column_names:
        raise ValueError("the input has no column 'customer_id'")
    column = table.column("customer_id")
    if column.null_count:
        raise ValueError(f"customer_id has {column.null_count} null value(s)")
    ids = column.cast(pa.int64()).to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise ValueError("customer_id is not unique")
    return ids


def _as_of_date(table: pa.Table) -> pa.Scalar:
    """The one as_of_date of a customer_rfm table (null for an empty table)."""
    if "as_of_date" not in table.column_names:
        return pa.scalar(None, pa.date32())
    values = pc.unique(table.column("as_of_date").cast(pa.date32()))
    if len(values) > 1:
        raise ValueError(f"customer_rfm holds {len(values)} different as_of_date values")
    return values[0] if len(values) else pa.scalar(None, pa.date32())


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
    """
    n = len(customer_ids)
    if n <= size:
        return np.arange(n)
    ids = np.asarray(customer_ids, dtype=np.int64)
    hashed = _splitmix64(ids ^ np.int64(seed))
    picked = np.lexsort((ids, hashed))[:size]
    return np.sort(picked)


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


def prepare_features(rfm: pa.Table | pd.DataFrame, features: Sequence[str]) -> FeatureMatrix:
    """Sort customers by id, then clip at 0, log1p and standardise the given feature columns."""
    table = as_arrow(rfm)
    ids = _customer_ids(table)
    order = np.argsort(ids, kind="stable")
    raw = (
        np.column_stack([_float_column(table, f)[order] for f in features])
        if len(features)
        else np.empty((len(ids), 0))
    )
    if raw.size and not np.all(np.isfinite(raw)):
        raise ValueError("segment features hold infinite or NaN values")
    logged = log1p_clipped(raw)
    if len(ids):
        scaler = StandardScaler().fit(logged)
        standardised = scaler.transform(logged)
        mean, scale = scaler.mean_, scaler.scale_
    else:
        standardised = logged
        mean, scale = np.zeros(len(features)), np.ones(len(features))
    return FeatureMatrix(
        features=tuple(features),
        customer_ids=ids[order],
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


def silhouettes(points: np.ndarray, labelings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-point silhouette values of several labelings of the same points (Euclidean).

    Same definition as sklearn.metrics.silhouette_samples (a point alone in its cluster
    scores 0), but the pairwise distances are computed once, in row blocks, for all labelings:
    27 labelings of 10,000 points take about as long as 2 calls to scikit-learn's function.
    A labeling with fewer than 2 or more than n - 1 distinct labels gives NaN values.
    """
    n = len(points)
    results = [np.full(n, np.nan) for _ in labelings]
    coded = []
    for labels in labelings:
        uniq, codes = np.unique(np.asarray(labels), return_inverse=True)
        coded.append((len(uniq), codes))
    valid = [i for i, (m, _) in enumerate(coded) if 2 <= m <= n - 1]
    if not valid:
        return results
    onehots = {i: np.eye(coded[i][0])[coded[i][1]] for i in valid}
    sizes = {i: onehots[i].sum(axis=0) for i in valid}
    block = max(1, min(n, 4_000_000 // max(n, 1)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        dist = cdist(points[start:stop], points)
        for i in valid:
            m, codes = coded[i]
            sums = dist @ onehots[i]  # (rows, clusters): distance sums to each cluster
            own = codes[start:stop]
            rows = np.arange(stop - start)
            own_size = sizes[i][own]
            a = sums[rows, own] / np.maximum(own_size - 1, 1)
            means = sums / sizes[i]
            means[rows, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            s = np.where(own_size > 1, np.nan_to_num(s, nan=0.0), 0.0)
            results[i][start:stop] = s
    return results


def _mean_or_nan(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) and not np.isnan(values).any() else float("nan")


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
        ("n_init", pa.int32()),
        ("random_state", pa.int32()),
        ("centroids_json", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)


def select_segment_count(rfm: pa.Table | pd.DataFrame, settings: SegmentSettings) -> pa.Table:
    """The model-selection table: one row per k tried, exactly one with is_selected.

    KMeans is fitted once per k (on the sweep rows); its centroids are kept (centroids_json) so
    that `fit_customer_segments` continues from the selected solution instead of starting over.
    A fixed segment_k outside segment_k_min..segment_k_max is added as a row of its own.
    """
    table = as_arrow(rfm)
    fm = prepare_features(table, settings.features)
    n = len(fm.customer_ids)
    fit_idx = sample_positions(fm.customer_ids, SWEEP_SAMPLE_SIZE)
    score_idx = sample_positions(fm.customer_ids, SCORE_SAMPLE_SIZE)
    x_fit = fm.standardised[fit_idx]
    x_score = fm.standardised[score_idx]
    distinct = len(np.unique(x_fit, axis=0)) if n else 0

    ks = list(range(settings.k_min, settings.k_max + 1))
    if settings.k_fixed is not None and settings.k_fixed not in ks:
        ks = sorted([*ks, settings.k_fixed])
    skipped = [k for k in ks if k > distinct]
    ks = [k for k in ks if k <= distinct]
    if settings.k_fixed is not None and settings.k_fixed in skipped:
        raise ValueError(
            f"dbt var 'segment_k' = {settings.k_fixed} exceeds the {distinct} distinct feature "
            f"vectors among the {n} customers of customer_rfm"
        )
    if not ks:
        raise ValueError(
            f"segmentation needs at least segment_k_min = {settings.k_min} customers with "
            f"distinct features; customer_rfm has {n} customers, {distinct} distinct"
        )

    rows: list[dict[str, object]] = []
    with _single_threaded(), warnings.catch_warnings():
        # A Gaussian mixture that stops at max_iter still gives labels for the comparison.
        warnings.simplefilter("ignore", ConvergenceWarning)
        ward_labels = (
            cut_tree(linkage(x_score, method="ward"), n_clusters=ks)
            if len(x_score) > 1
            else np.zeros((len(x_score), len(ks)), dtype=int)
        )
        labelings: list[np.ndarray] = []
        for i, k in enumerate(ks):
            km = _kmeans(k).fit(x_fit)
            gmm = (
                GaussianMixture(
                    n_components=k, covariance_type="full", n_init=1, random_state=RANDOM_STATE
                ).fit(x_score)
                if len(x_score) >= k
                else None
            )
            labelings += [
                km.predict(x_score),
                gmm.predict(x_score) if gmm is not None else np.zeros(len(x_score), dtype=int),
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
        sil = silhouettes(x_score, labelings)
    for i, row in enumerate(rows):
        row["silhouette"] = _mean_or_nan(sil[3 * i])
        row["gmm_silhouette"] = _mean_or_nan(sil[3 * i + 1])
        row["agglomerative_silhouette"] = _mean_or_nan(sil[3 * i + 2])

    sweep = [k for k in ks if settings.k_min <= k <= settings.k_max] or ks
    by_k = {int(r["k"]): r for r in rows}
    choice = choose_k(
        sweep, [by_k[k]["inertia"] for k in sweep], [by_k[k]["silhouette"] for k in sweep]
    )
    distances = dict(
        zip(sweep, knee_distances(sweep, [by_k[k]["inertia"] for k in sweep]), strict=True)
    )
    rule = choice.rule
    if skipped:
        rule += (
            f" (k = {', '.join(map(str, skipped))} skipped: more than the {distinct} distinct "
            f"feature vectors)"
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
    with _single_threaded():
        km = _kmeans(model.k, init=model.centroids).fit(fm.standardised)
    monetary = _float_column(table, "monetary")[fm.order]
    segment_id = order_clusters(km.labels_, monetary, km.cluster_centers_)
    distance = np.linalg.norm(fm.standardised - km.cluster_centers_[km.labels_], axis=1)
    names = persona_lookup(personas, model.k)
    sorted_rfm = table.take(pa.array(fm.order))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "customer_id": pa.array(fm.customer_ids, pa.int64()),
        "segment_id": pa.array(segment_id, pa.int32()),
        "segment_name": pa.array([names[r].name for r in range(1, model.k + 1)], pa.string()).take(
            pa.array(segment_id - 1)
        ),
        "k": pa.array(np.full(len(segment_id), model.k), pa.int32()),
    }
    for feature in model.features:
        columns[feature] = sorted_rfm.column(feature)
    columns["distance_to_centroid"] = pa.array(distance, pa.float64())
    columns["as_of_date"] = pa.array([_as_of_date(table).as_py()] * len(segment_id), pa.date32())
    return pa.table(columns)


# --------------------------------------------------------------------------- profiles


def _joined(segments: pa.Table, rfm: pa.Table, columns: Sequence[str]) -> pd.DataFrame:
    """The given numeric customer_rfm columns (as float64) of every customer with its segment;
    every customer must have exactly one. Only these columns leave Arrow: converting the whole
    customer_rfm (timestamps, strings) to pandas cost 0.4 GB more at 1,000,000 customers."""
    seg = segments.select(["customer_id", "segment_id"]).to_pandas()
    frame = pd.DataFrame({"customer_id": _customer_ids(rfm)})
    for column in dict.fromkeys(columns):
        frame[column] = _float_column(rfm, column)
    merged = frame.merge(seg, on="customer_id", how="left", validate="one_to_one")
    missing = int(merged["segment_id"].isna().sum())
    if missing or len(seg) != len(frame):
        raise ValueError(
            f"customer_segments does not match customer_rfm: {missing} customer(s) without a "
            f"segment, {len(seg)} segment rows for {len(frame)} customers"
        )
    merged["segment_id"] = merged["segment_id"].astype(np.int32)
    return merged.sort_values("customer_id", kind="stable").reset_index(drop=True)


PROFILE_MEASURES = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "distinct_products",
    "returned_amount",
    "return_lines",
)


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
    frame = _joined(seg_table, rfm_table, [REVENUE_COLUMN, *PROFILE_MEASURES])
    fm = prepare_features(rfm_table, model.features)
    labels = frame["segment_id"].to_numpy()  # frame and fm are both sorted by customer_id
    score_idx = sample_positions(fm.customer_ids, SCORE_SAMPLE_SIZE)
    with _single_threaded():
        sil = silhouettes(fm.standardised[score_idx], [labels[score_idx]])[0]
    sil_frame = pd.DataFrame({"segment_id": labels[score_idx], "silhouette": sil})
    sil_by = sil_frame.groupby("segment_id")["silhouette"].agg(["mean", "size"])

    total_customers = len(frame)
    total_revenue = float(frame[REVENUE_COLUMN].sum())
    names = persona_lookup(personas, model.k)
    grouped = frame.groupby("segment_id", sort=True)
    out = pd.DataFrame({"segment_id": np.arange(1, model.k + 1, dtype=np.int32)})
    out["segment_name"] = [names[s].name for s in out["segment_id"]]
    out["persona_description"] = [names[s].description for s in out["segment_id"]]
    out["marketing_action"] = [names[s].marketing_action for s in out["segment_id"]]
    out["k"] = np.int32(model.k)
    counts = grouped.size().reindex(out["segment_id"], fill_value=0).to_numpy()
    revenue = grouped[REVENUE_COLUMN].sum().reindex(out["segment_id"], fill_value=0.0)
    out["customers"] = counts.astype(np.int64)
    out["share_of_customers"] = counts / total_customers if total_customers else np.nan
    out["revenue"] = revenue.to_numpy(dtype=np.float64)
    out["share_of_revenue"] = out["revenue"] / total_revenue if total_revenue > 0 else np.nan
    for measure in PROFILE_MEASURES:
        out[f"mean_{measure}"] = grouped[measure].mean().reindex(out["segment_id"]).to_numpy()
        out[f"median_{measure}"] = grouped[measure].median().reindex(out["segment_id"]).to_numpy()
    logged = log1p_clipped(fm.raw)
    for j, feature in enumerate(model.features):
        mean_log = pd.Series(logged[:, j]).groupby(labels).mean()
        out[f"centroid_{feature}"] = np.expm1(mean_log.reindex(out["segment_id"]).to_numpy())
    out["mean_silhouette"] = sil_by["mean"].reindex(out["segment_id"]).to_numpy()
    out["silhouette_sample_customers"] = (
        sil_by["size"].reindex(out["segment_id"], fill_value=0).to_numpy().astype(np.int64)
    )
    out["as_of_date"] = _as_of_date(rfm_table).as_py()
    result = pa.Table.from_pandas(out, preserve_index=False)
    return result.set_column(
        result.schema.get_field_index("as_of_date"),
        "as_of_date",
        result.column("as_of_date").cast(pa.date32()),
    )


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
    keep = ["customer_id", *[c for c in LOYALTY_COLUMNS if c in rfm_table.column_names]]
    if "as_of_date" in rfm_table.column_names:
        keep.append("as_of_date")
    # Filter customer_rfm to the members before the join: the hash join then holds only them
    # (at 1,000,000 customers this halves the model's peak memory).
    member_rfm = rfm_table.select(keep).filter(
        pc.is_in(rfm_table.column("customer_id"), value_set=members.column("customer_id"))
    )
    joined = members.join(member_rfm, keys="customer_id", join_type="inner")
    if joined.num_rows != members.num_rows:
        raise ValueError("some segment-1 customers are missing from customer_rfm")
    ordered = joined.sort_by([("customer_id", "ascending")])
    first = ["customer_id", "segment_id", "segment_name", "k"]
    rest = [c for c in keep if c != "customer_id"]
    return ordered.select([*first, *rest, "distance_to_centroid"])


def loyalty_summary(segments: pa.Table | pd.DataFrame, rfm: pa.Table | pd.DataFrame) -> pa.Table:
    """One row: who is eligible for the loyalty programme (segment 1) and how many they are."""
    seg_table, rfm_table = as_arrow(segments), as_arrow(rfm)
    frame = _joined(seg_table, rfm_table, SUMMARY_COLUMNS)
    members = frame[frame["segment_id"] == 1]
    total_revenue = float(frame[REVENUE_COLUMN].sum())
    revenue = float(members[REVENUE_COLUMN].sum())
    k_values = pc.unique(seg_table.column("k")).to_pylist() if seg_table.num_rows else [None]
    names = seg_table.filter(pc.equal(seg_table.column("segment_id"), 1)).column("segment_name")
    row = {
        "segment_id": 1,
        "segment_name": names[0].as_py() if len(names) else None,
        "k": k_values[0],
        "members": len(members),
        "customers": len(frame),
        "share_of_customers": len(members) / len(frame) if len(frame) else None,
        "revenue": revenue,
        "total_revenue": total_revenue,
        "share_of_revenue": revenue / total_revenue if total_revenue > 0 else None,
        "mean_monetary": float(members["monetary"].mean()) if len(members) else None,
        "median_monetary": float(members["monetary"].median()) if len(members) else None,
        "mean_frequency": float(members["frequency"].mean()) if len(members) else None,
        "mean_recency_days": float(members["recency_days"].mean()) if len(members) else None,
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
        with _single_threaded():
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
    ids = _customer_ids(table)
    order = np.argsort(ids, kind="stable")
    sorted_rfm = table.take(pa.array(order))
    scores = {}
    for name, better_high in (("recency_days", False), ("frequency", True), ("monetary", True)):
        scores[name] = cluster_scores_1d(
            _float_column(table, name)[order], n_clusters, higher_is_better=better_high
        )
    overall = scores["recency_days"] + scores["frequency"] + scores["monetary"]
    return pa.table(
        {
            "customer_id": pa.array(ids[order], pa.int64()),
            "recency_days": sorted_rfm.column("recency_days"),
            "frequency": sorted_rfm.column("frequency"),
            "monetary": sorted_rfm.column("monetary"),
            "recency_cluster": pa.array(scores["recency_days"], pa.int32()),
            "frequency_cluster": pa.array(scores["frequency"], pa.int32()),
            "monetary_cluster": pa.array(scores["monetary"], pa.int32()),
            "overall_score": pa.array(overall, pa.int32()),
            "value_tier": pa.array(value_tier(overall, n_clusters), pa.string()),
            "clusters_per_dimension": pa.array(np.full(len(ids), n_clusters), pa.int32()),
            "as_of_date": pa.array([_as_of_date(table).as_py()] * len(ids), pa.date32()),
        }
    )
