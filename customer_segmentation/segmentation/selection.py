"""Model selection: KMeans for every k of the range, the knee rule with its silhouette
tie-break, and the selected row that customer_segments continues from."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from customer_segmentation.segmentation.clustering import (
    N_INIT,
    RANDOM_STATE,
    gaussian_mixture_labels,
    kmeans,
    mean_or_nan,
    silhouettes,
    ward_clusters,
)
from customer_segmentation.segmentation.features import (
    COMPARISON_SAMPLE_SIZE,
    SCORE_SAMPLE_SIZE,
    SWEEP_SAMPLE_SIZE,
    prepare_features,
    sample_positions,
)
from customer_segmentation.segmentation.settings import K_LIMITS, SegmentSettings
from customer_segmentation.segmentation.tables import as_arrow, single_as_of_date
from customer_segmentation.segmentation.threads import (
    SELECTION_MODULES,
    import_modules,
    side_by_side,
)

if TYPE_CHECKING:
    import pandas as pd

# Every k whose knee distance is at least this fraction of the largest counts as tied.
KNEE_TIE_FRACTION = 0.9


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


def select_segment_count(
    rfm: pa.Table | pd.DataFrame, settings: SegmentSettings, compare: bool = True
) -> pa.Table:
    """The model-selection table: one row per k tried, exactly one with is_selected.

    KMeans is fitted once per k on the sweep rows (inertia, Davies-Bouldin and
    Calinski-Harabasz on them); its centroids are kept (centroids_json) so that
    `fit_customer_segments` continues from the selected solution instead of starting over. Its
    silhouette is that of the score rows labelled with their nearest centroid. The Gaussian
    mixtures and Ward clustering are fitted on the comparison rows and scored there (unless
    `compare` is false: their columns are null then; the rule never reads them). A fixed
    segment_k outside segment_k_min..segment_k_max is added as a row of its own. The range stops
    at what the customers allow (`k_limit`), and selection_rule says so; a segment_k_min or a
    fixed segment_k above that fails naming the var and the number of customers.
    """
    import_modules(*SELECTION_MODULES)
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

    def sweep(k: int) -> tuple[dict[str, object], np.ndarray]:
        km = kmeans(k).fit(x_fit)
        row = {
            "k": k,
            "inertia": float(km.inertia_),
            "davies_bouldin": float(davies_bouldin_score(x_fit, km.labels_)),
            "calinski_harabasz": float(calinski_harabasz_score(x_fit, km.labels_)),
            "centroids_json": json.dumps(km.cluster_centers_.tolist()),
        }
        return row, km.predict(x_score)

    def mixture(k: int) -> np.ndarray:
        if len(x_compare) < k:
            return np.zeros(len(x_compare), dtype=np.int64)
        return gaussian_mixture_labels(x_compare, k)

    with warnings.catch_warnings():
        # KMeans on fewer distinct points than k (in the sweep or a mixture's start) warns;
        # the labels are still valid for the comparison. (Workers share the warning filters.)
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Every fit is independent and single-threaded: side by side on the cores, with the
        # same results as one after the other. The comparison with the Gaussian mixtures and
        # Ward is left out when `compare` is false (the refits of earlier dates keep only the
        # selected KMeans).
        fits: list[Callable[[], object]] = [partial(sweep, k) for k in ks]
        if compare:
            fits.append(partial(ward_clusters, x_compare, ks))
            fits += [partial(mixture, k) for k in ks]
        done = side_by_side(fits, *SELECTION_MODULES)
        swept = done[: len(ks)]
        rows = [row for row, _ in swept]
        kmeans_labels = [labels for _, labels in swept]
        # The silhouettes of several labelings share one distance matrix; two halves of the
        # KMeans labelings (and the comparison's) run side by side.
        half = (len(ks) + 1) // 2
        scored = [partial(silhouettes, x_score, kmeans_labels[:half])]
        if half < len(ks):
            scored.append(partial(silhouettes, x_score, kmeans_labels[half:]))
        if compare:
            ward_labels, mixture_labels = done[len(ks)], done[len(ks) + 1 :]
            comparison_labels = [
                labels for i in range(len(ks)) for labels in (mixture_labels[i], ward_labels[:, i])
            ]
            scored.append(partial(silhouettes, x_compare, comparison_labels))
        scores = side_by_side(scored, *SELECTION_MODULES)
    kmeans_sil = [values for part in scores[: len(scored) - compare] for values in part]
    comparison_sil = scores[-1] if compare else None
    for i, row in enumerate(rows):
        row["silhouette"] = mean_or_nan(kmeans_sil[i])
        row["gmm_silhouette"] = mean_or_nan(comparison_sil[2 * i]) if compare else None
        row["agglomerative_silhouette"] = (
            mean_or_nan(comparison_sil[2 * i + 1]) if compare else None
        )

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
    as_of = single_as_of_date(table)
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
