"""Customer segmentation: the selection rule, stable segment ids, determinism, value tiers.

Unit tests call customer_segmentation.segmentation directly on small, deterministic data made
of well-separated groups in RFM space (a known number of them); the last test runs the real
dbt models twice (conftest `sample_build`, then `+customer_segments` into a second DuckDB file)
and compares marts.customer_segments row for row.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from conftest import PROJECT_DIR, build_ok
from sklearn.metrics import (
    adjusted_rand_score,
    silhouette_samples,
)
from sklearn.preprocessing import StandardScaler

from customer_segmentation.segmentation import selection as selection_module
from customer_segmentation.segmentation.clustering import N_INIT, RANDOM_STATE, silhouettes
from customer_segmentation.segmentation.features import (
    log1p_clipped,
    prepare_features,
    sample_positions,
    standardise,
)
from customer_segmentation.segmentation.segments import (
    fit_customer_segments,
    order_clusters,
    persona_lookup,
    segment_silhouettes,
)
from customer_segmentation.segmentation.selection import (
    choose_k,
    knee_distances,
    select_segment_count,
)
from customer_segmentation.segmentation.settings import (
    DEFAULT_FEATURES,
    SegmentSettings,
    validate_settings,
)
from customer_segmentation.segmentation.value_tiers import customer_value_tiers

AS_OF = dt.date(2011, 12, 10)
# Group centres in original units: (recency_days, frequency, monetary), best customers first.
CENTRES = (
    (3, 40, 30_000.0),
    (20, 8, 3_000.0),
    (90, 2, 400.0),
    (300, 1, 40.0),
    (8, 1, 150.0),
)
SIZES = (60, 150, 250, 400, 300)


def blobs(groups: int, seed: int = 0, noise: float = 0.1) -> tuple[pa.Table, np.ndarray]:
    """A customer_rfm-shaped table of `groups` well-separated groups, and each row's group.

    The groups are Gaussian in log1p space (sd `noise` per feature) around CENTRES, of unequal
    sizes; frequency and recency are whole numbers as in customer_rfm, and customer ids are
    shuffled so that row order and id order differ.
    """
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(groups), SIZES[:groups])
    centres = np.log1p(np.asarray(CENTRES[:groups], dtype=np.float64))
    raw = np.expm1(centres[truth] + rng.normal(0.0, noise, (len(truth), 3)))
    ids = rng.permutation(np.arange(10_000, 10_000 + len(truth), dtype=np.int64))
    frequency = np.maximum(1, np.round(raw[:, 1])).astype(np.int64)
    monetary = np.round(raw[:, 2], 2)
    returned = np.where(rng.random(len(ids)) < 0.2, np.round(0.1 * monetary, 2), 0.0)
    money = pa.decimal128(18, 4)
    table = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "as_of_date": pa.array([AS_OF] * len(ids), pa.date32()),
            "recency_days": pa.array(np.round(raw[:, 0]).astype(np.int32)),
            "frequency": pa.array(frequency),
            "monetary": pa.array(monetary).cast(money),
            "avg_order_value": pa.array(np.round(monetary / frequency, 2)).cast(money),
            "distinct_products": pa.array(frequency * 3),
            "returned_amount": pa.array(returned).cast(money),
            "return_lines": pa.array((returned > 0).astype(np.int64)),
        }
    )
    return table, truth


def truth_by_id(table: pa.Table, truth: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The true group of each of `ids`."""
    lookup = dict(zip(table.column("customer_id").to_pylist(), truth.tolist(), strict=True))
    return np.array([lookup[i] for i in ids.tolist()])


def segment(table: pa.Table, settings: SegmentSettings | None = None):
    """What the models do: the selection table, then the customer segments."""
    selection = select_segment_count(table, settings or validate_settings())
    return selection, fit_customer_segments(table, selection)


@pytest.fixture(scope="module")
def four_groups():
    table, truth = blobs(4)
    selection, segments = segment(table)
    return table, truth, selection, segments


# --------------------------------------------------------------------------- selection rule


@pytest.mark.parametrize("groups", [3, 4, 5])
def test_selection_rule_recovers_the_number_of_groups(groups):
    table, truth = blobs(groups, seed=groups)
    selection, segments = segment(table)  # default vars: k = 2..10
    chosen = [row for row in selection.to_pylist() if row["is_selected"]]
    assert len(chosen) == 1
    assert chosen[0]["k"] == groups, chosen[0]["selection_rule"]
    ids = segments.column("customer_id").to_numpy()
    ari = adjusted_rand_score(truth_by_id(table, truth, ids), segments.column("segment_id"))
    assert ari >= 0.9


def test_selection_table_reports_every_k_and_the_comparison(four_groups):
    _, _, selection, _ = four_groups
    rows = selection.to_pylist()
    assert [row["k"] for row in rows] == list(range(2, 11))
    for row in rows:
        assert row["n_init"] == N_INIT and row["random_state"] == RANDOM_STATE
        for metric in ("silhouette", "gmm_silhouette", "agglomerative_silhouette"):
            assert -1 <= row[metric] <= 1
    best = max(rows, key=lambda row: row["silhouette"])
    assert best["k"] == 4 and best["agglomerative_silhouette"] > 0.8
    assert len({row["selection_rule"] for row in rows}) == 1


def test_fits_side_by_side_give_the_one_core_table(four_groups, monkeypatch):
    """The selection's fits run side by side on the usable cores (threads.side_by_side); each
    is single-threaded, so one core gives the identical table. Without the comparison (the
    refits of earlier dates) the KMeans columns are the same and the comparison's are null."""
    from customer_segmentation.segmentation import threads

    table, _, selection, _ = four_groups
    settings = validate_settings()
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert select_segment_count(table, settings).equals(selection)
    monkeypatch.setattr(threads, "usable_cores", lambda: 3)
    assert select_segment_count(table, settings).equals(selection)
    bare = select_segment_count(table, settings, compare=False)
    comparison = ["gmm_silhouette", "agglomerative_silhouette"]
    assert bare.drop_columns(comparison).equals(selection.drop_columns(comparison))
    assert all(bare.column(c).null_count == bare.num_rows for c in comparison)


def test_sampled_selection_recovers_the_groups(monkeypatch):
    # The samples made small enough for the test data, so that the sampled path runs: the sweep
    # on part of the customers, nested score and comparison samples, the refit on all.
    table, truth = blobs(4, seed=4)
    monkeypatch.setattr(selection_module, "SWEEP_SAMPLE_SIZE", 700)
    monkeypatch.setattr(selection_module, "SCORE_SAMPLE_SIZE", 400)
    monkeypatch.setattr(selection_module, "COMPARISON_SAMPLE_SIZE", 200)
    selection, segments = segment(table)
    rows = selection.to_pylist()
    used = {(row["fit_rows"], row["score_rows"], row["comparison_rows"]) for row in rows}
    assert used == {(700, 400, 200)} and rows[0]["customers"] == table.num_rows
    assert [row["k"] for row in rows if row["is_selected"]] == [4]
    assert segments.num_rows == table.num_rows
    ids = segments.column("customer_id").to_numpy()
    ari = adjusted_rand_score(truth_by_id(table, truth, ids), segments.column("segment_id"))
    assert ari >= 0.9


def test_fixed_segment_k_overrides_the_rule(four_groups):
    table = four_groups[0]
    selection, segments = segment(table, validate_settings(k_fixed=3))
    chosen = [row for row in selection.to_pylist() if row["is_selected"]]
    assert [row["k"] for row in chosen] == [3]
    assert chosen[0]["selection_rule"].startswith("fixed by dbt var segment_k = 3")
    assert "would choose k = 4" in chosen[0]["selection_rule"]
    assert set(segments.column("segment_id").to_pylist()) == {1, 2, 3}


def test_choose_k_knee_then_silhouette_tie_break():
    ks = [2, 3, 4, 5, 6, 7, 8]
    inertia = [100, 60, 20, 17, 15, 14, 13]  # knee at 4
    assert choose_k(ks, inertia, [0.5] * 7).k == 4
    # 3 and 4 both within 90% of the largest knee distance: the better silhouette wins.
    close = [100, 43, 29, 23, 19, 16, 13]
    distances = knee_distances(ks, close)
    assert distances[1] >= 0.9 * distances.max() and distances[2] >= 0.9 * distances.max()
    sil = [0.2, 0.3, 0.6, 0.1, 0.1, 0.1, 0.1]
    assert choose_k(ks, close, sil).k == 4
    assert choose_k(ks, close, [0.2, 0.6, 0.3, 0.1, 0.1, 0.1, 0.1]).k == 3
    # Fewer than three k: the highest silhouette.
    assert choose_k([2, 3], [10, 5], [0.4, 0.3]).k == 2


@pytest.mark.parametrize(
    ("kwargs", "var"),
    [
        ({"k_min": 1}, "segment_k_min"),
        ({"k_max": 30}, "segment_k_max"),
        ({"k_min": 5, "k_max": 3}, "segment_k_max"),
        ({"k_fixed": "4"}, "segment_k"),
        ({"features": ["recency_days", "colour"]}, "segment_features"),
        ({"features": "monetary"}, "segment_features"),
    ],
)
def test_bad_settings_fail_naming_the_var(kwargs, var):
    with pytest.raises(ValueError, match=var):
        validate_settings(**kwargs)


# --------------------------------------------------------------------------- segment ids


def test_segment_ids_are_ordered_by_mean_monetary(four_groups):
    table, truth, _, segments = four_groups
    ids = segments.column("segment_id").to_numpy()
    monetary = segments.column("monetary").cast(pa.float64()).to_numpy()
    means = [monetary[ids == s].mean() for s in range(1, 5)]
    assert means == sorted(means, reverse=True)
    # Segment 1 is the big spenders' group, the last one the lowest spenders'.
    customer_ids = segments.column("customer_id").to_numpy()
    groups = truth_by_id(table, truth, customer_ids)
    assert set(groups[ids == 1]) == {0}
    assert set(groups[ids == 4]) == {3}


def test_segment_ids_do_not_depend_on_kmeans_label_numbers():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 200)
    monetary = np.array([10.0, 1000.0, 1.0, 100.0])[labels] * rng.uniform(0.9, 1.1, 200)
    centers = rng.normal(size=(4, 3))
    expected = order_clusters(labels, monetary, centers)
    assert set(expected[labels == 1]) == {1} and set(expected[labels == 2]) == {4}
    for perm in ([3, 2, 1, 0], [1, 3, 0, 2]):
        relabelled = np.asarray(perm)[labels]
        inverse = np.argsort(perm)
        same = order_clusters(relabelled, monetary, centers[inverse])
        np.testing.assert_array_equal(same, expected)


def test_same_input_gives_the_identical_table_whatever_the_row_order(four_groups):
    table, _, selection, segments = four_groups
    again_selection, again = segment(table)
    assert again_selection.equals(selection)
    assert again.equals(segments)
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    shuffled_selection, from_shuffled = segment(shuffled)
    assert shuffled_selection.equals(selection)
    assert from_shuffled.equals(segments)
    ids = segments.column("customer_id").to_numpy()
    assert (np.diff(ids) > 0).all()


def test_segment_rows_carry_the_features_names_and_distances(four_groups):
    table, _, _, segments = four_groups
    personas = load_personas()
    named = fit_customer_segments(table, four_groups[2], personas)
    assert named.num_rows == table.num_rows
    names = dict(
        zip(
            named.column("segment_id").to_pylist(),
            named.column("segment_name").to_pylist(),
            strict=True,
        )
    )
    assert names == {1: "Insiders", 2: "High spenders", 3: "Mid spenders", 4: "Low spenders"}
    assert named.drop_columns(["segment_name"]).equals(segments.drop_columns(["segment_name"]))
    assert named.schema.field("monetary").type == table.schema.field("monetary").type
    assert pc.min(named.column("distance_to_centroid")).as_py() >= 0
    assert set(named.column("as_of_date").to_pylist()) == {AS_OF}


# --------------------------------------------------------------------------- features, samples


def test_negative_and_zero_values_count_as_zero_before_log1p():
    np.testing.assert_array_equal(
        log1p_clipped(np.array([-5.0, 0.0, 1.0])), [0.0, 0.0, np.log(2.0)]
    )
    table = pa.table(
        {
            "customer_id": [3, 1, 2, 4],
            "recency_days": [10, 0, 5, 1],
            "frequency": [1, 2, 3, 4],
            "monetary": [-20.0, 0.0, 100.0, 50.0],
        }
    )
    fm = prepare_features(table, DEFAULT_FEATURES)
    assert fm.customer_ids.tolist() == [1, 2, 3, 4]
    assert fm.standardised[0, 2] == fm.standardised[2, 2]  # 0 and -20 are the same spend
    np.testing.assert_allclose(fm.standardised.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="infinite or NaN"):
        prepare_features(
            table.set_column(3, "monetary", pa.array([1.0, np.nan, 2, 3])), ["monetary"]
        )


def test_sample_is_deterministic_nested_and_free_of_row_order():
    ids = np.arange(1, 5_001, dtype=np.int64)
    small = set(ids[sample_positions(ids, 500)].tolist())
    large = set(ids[sample_positions(ids, 1_000)].tolist())
    assert len(small) == 500 and small <= large
    shuffled = np.random.default_rng(0).permutation(ids)
    assert set(shuffled[sample_positions(shuffled, 500)].tolist()) == small
    assert sample_positions(ids[:100], 500).tolist() == list(range(100))


def run_fresh(code: str) -> str:
    """Run `code` in a fresh Python process (its own thread pools); return its output."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.strip() == "one thread already":
        pytest.skip("the thread pools run one thread here already (one core, or *_NUM_THREADS=1)")
    return proc.stdout.strip()


THREAD_TEST_PRELUDE = """
    import threading
    import sklearn.cluster, scipy.spatial.distance  # loaded, so the limits apply to them
    from threadpoolctl import threadpool_info
    from customer_segmentation.segmentation.threads import (
        KMEANS_MODULES, SELECTION_MODULES, SILHOUETTE_MODULES, single_threaded,
    )

    def max_threads():
        return max(pool["num_threads"] for pool in threadpool_info())

    def openblas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"}

    if max_threads() == 1:
        print("one thread already")
        raise SystemExit

    def in_thread(function):
        thread = threading.Thread(target=function)
        thread.start()
        return thread
"""


def test_thread_limit_holds_in_every_thread_once_any_block_began():
    """dbt runs Python models side by side in threads: a block ending must not give another
    thread's running block its BLAS and OpenMP threads back (segment silhouettes differed in
    the last bits from build to build)."""
    code = (
        THREAD_TEST_PRELUDE
        + """
    first_started, first_may_end = threading.Event(), threading.Event()

    def first_block():
        with single_threaded(*KMEANS_MODULES):
            first_started.set()
            first_may_end.wait(10)

    thread = in_thread(first_block)
    first_started.wait(10)
    with single_threaded(*SELECTION_MODULES):
        first_may_end.set()
        thread.join(10)
        assert not thread.is_alive()
        assert max_threads() == 1, "the first block ended: this one must still run on one"
    later = []

    def later_block():
        with single_threaded(*SILHOUETTE_MODULES):
            later.append(max_threads())

    in_thread(later_block).join(10)
    assert later == [1], later
    print("ok")
    """
    )
    assert run_fresh(code) == "ok"


def test_a_block_in_another_thread_limits_openblas_too():
    """threadpoolctl 3.8 lets only the first thread that limited OpenBLAS (process-wide) limit
    it again; dbt runs each Python model in one of its worker threads, all alive."""
    code = (
        THREAD_TEST_PRELUDE
        + """
    with single_threaded(*SILHOUETTE_MODULES):
        assert openblas_threads() == {1}  # this thread now controls OpenBLAS
    seen = []

    def block():
        with single_threaded(*SILHOUETTE_MODULES):
            seen.append(openblas_threads())

    in_thread(block).join(10)
    assert seen == [{1}], seen
    print("ok")
    """
    )
    assert run_fresh(code) == "ok"


def test_silhouettes_match_scikit_learn():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(300, 3))
    labelings = [rng.integers(0, k, 300) for k in (2, 3, 6)]
    labelings.append(np.r_[np.zeros(299, dtype=int), 1])  # a singleton cluster scores 0
    ours = silhouettes(points, labelings)
    blocked = silhouettes(points, labelings, block_elements=7_000)  # 23-row blocks
    for labels, values, again in zip(labelings, ours, blocked, strict=True):
        np.testing.assert_allclose(values, silhouette_samples(points, labels), atol=1e-12)
        np.testing.assert_allclose(again, values, atol=1e-12)
    assert np.isnan(silhouettes(points, [np.zeros(300, dtype=int)])[0]).all()


def test_standardise_is_standard_scaler_bit_for_bit():
    rng = np.random.default_rng(10)
    n = 3_000
    values = np.column_stack(
        [
            np.log1p(rng.exponential(300.0, n)),
            np.full(n, 2.5),  # constant: scale 1
            np.log1p(rng.poisson(2.0, n).astype(np.float64)),
            rng.normal(1e6, 1e-9, n),  # constant up to rounding: scale 1
        ]
    )
    scaler = StandardScaler().fit(values)
    out, mean, scale = standardise(values)
    np.testing.assert_array_equal(out, scaler.transform(values))
    np.testing.assert_array_equal(mean, scaler.mean_)
    np.testing.assert_array_equal(scale, scaler.scale_)


def test_a_fresh_process_fits_on_one_thread_and_repeats_itself():
    """The package imports scikit-learn only when a step needs it; the first fit of a fresh
    process must already run on one thread (threadpoolctl limits only libraries loaded when
    its block starts), so it gives the table the second fit gives."""
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import pyarrow as pa
        from threadpoolctl import threadpool_info
        from customer_segmentation.segmentation import segments as segs, threads, value_tiers

        assert "sklearn" not in sys.modules, "scikit-learn imported with the package"
        rng = np.random.default_rng(0)
        n = 5_000
        table = pa.table({
            "customer_id": rng.permutation(n).astype(np.int64),
            "recency_days": rng.integers(1, 374, n).astype(np.int32),
            "frequency": 1 + rng.poisson(2.0, n),
            "monetary": np.round(np.exp(rng.normal(6.0, 1.0, n)), 2),
        })
        segments = pa.table({
            "customer_id": table.column("customer_id"),
            "segment_id": pa.array(rng.integers(1, 4, n).astype(np.int32)),
            "segment_name": pa.array(["a"] * n),
            "k": pa.array(np.full(n, 3, dtype=np.int32)),
            "distance_to_centroid": pa.array(np.zeros(n)),
        })
        selection = pa.Table.from_pylist([{
            "k": 3, "is_selected": True, "features": "recency_days,frequency,monetary",
            "centroids_json": json.dumps([[-1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, -1.0, -1.0]]),
        }])
        silhouettes = segs.segment_silhouettes(segments, table, selection)
        assert silhouettes.equals(segs.segment_silhouettes(segments, table, selection))
        assert "sklearn" not in sys.modules, "the silhouettes step imported scikit-learn"
        first = segs.fit_customer_segments(table, selection)
        assert first.equals(segs.fit_customer_segments(table, selection))
        tiers = value_tiers.customer_value_tiers(table)
        assert tiers.equals(value_tiers.customer_value_tiers(table))
        modules = (threads.KMEANS_MODULES, threads.SELECTION_MODULES, threads.SILHOUETTE_MODULES)
        for used in modules:
            with threads.single_threaded(*used):
                assert all(pool["num_threads"] == 1 for pool in threadpool_info()), used
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# --------------------------------------------------------------------------- silhouettes


def test_segment_silhouettes_are_scikit_learns_per_segment(four_groups):
    table, _, selection, segments = four_groups
    result = segment_silhouettes(segments, table, selection).to_pylist()
    assert [row["segment_id"] for row in result] == [1, 2, 3, 4]
    # Fewer customers than the score sample: every customer counts, labelled as in segments.
    fm = prepare_features(table, DEFAULT_FEATURES)
    labels = segments.column("segment_id").to_numpy()  # sorted by customer_id, like fm
    assert (segments.column("customer_id").to_numpy() == fm.customer_ids).all()
    expected = silhouette_samples(fm.standardised, labels)
    for row in result:
        members = expected[labels == row["segment_id"]]
        assert row["silhouette_sample_customers"] == len(members)
        assert row["mean_silhouette"] == pytest.approx(members.mean(), abs=1e-12)
        assert row["mean_silhouette"] > 0.5
    shuffled = table.take(np.random.default_rng(2).permutation(table.num_rows))
    assert segment_silhouettes(segments, shuffled, selection).to_pylist() == result


def test_segment_silhouettes_fail_when_segments_do_not_match_customers(four_groups):
    table, _, selection, segments = four_groups
    with pytest.raises(ValueError, match="does not match customer_rfm: 1 customer"):
        segment_silhouettes(segments.slice(1), table, selection)
    twice = pa.concat_tables([segments, segments.slice(0, 1)])
    with pytest.raises(ValueError, match="customer_id is not unique"):
        segment_silhouettes(twice, table, selection)


# --------------------------------------------------------------------------- profiles, loyalty


def test_profiles_and_loyalty_marts_recompute_from_the_customers(sample_build):
    """segment_profiles and the loyalty marts (SQL) against the same figures computed here from
    customer_rfm and customer_segments: exact sums and medians (Decimal), means, centroids."""
    measures = (
        "recency_days",
        "frequency",
        "monetary",
        "avg_order_value",
        "distinct_products",
        "returned_amount",
        "return_lines",
    )
    rows = sample_build.query(
        f"select segments.segment_id, {', '.join(f'rfm.{m}' for m in measures)} "
        "from marts.customer_rfm as rfm "
        "left join marts.customer_segments as segments using (customer_id)"
    )
    by_segment: dict[int, list[tuple]] = {}
    for segment_id, *values in rows:
        by_segment.setdefault(segment_id, []).append(tuple(values))
    [(k,)] = sample_build.query("select k from marts.segment_model_selection where is_selected")
    assert sorted(by_segment) == list(range(1, k + 1))  # no customer without a segment
    total_revenue = sum((row[1 + measures.index("monetary")] for row in rows), Decimal(0))
    profiles = sample_build.df("select * from marts.segment_profiles").to_dict("records")
    assert [row["segment_id"] for row in profiles] == list(range(1, k + 1))
    for row in profiles:
        customers = by_segment[row["segment_id"]]
        columns = {m: [Decimal(c[i]) for c in customers] for i, m in enumerate(measures)}
        assert row["customers"] == len(customers) and row["k"] == k
        assert row["share_of_customers"] == len(customers) / len(rows)
        revenue = sum(columns["monetary"], Decimal(0))
        assert row["revenue"] == float(revenue)  # the exact sum, rounded once
        assert row["share_of_revenue"] == pytest.approx(float(revenue / total_revenue), rel=1e-15)
        for measure, values in columns.items():
            mean = float(sum(values, Decimal(0)) / len(values))
            assert row[f"mean_{measure}"] == pytest.approx(mean, rel=1e-15), measure
            assert row[f"median_{measure}"] == float(statistics.median(values)), measure
        for feature in DEFAULT_FEATURES:
            logged = log1p_clipped(np.array(columns[feature], dtype=np.float64))
            centroid = float(np.expm1(logged.mean()))
            assert row[f"centroid_{feature}"] == pytest.approx(centroid, rel=1e-14), feature
    personas = sample_build.query(
        "select segment_name, description, marketing_action from reference.segment_personas "
        "where k = ? order by rank",
        [k],
    )
    assert [
        (row["segment_name"], row["persona_description"], row["marketing_action"])
        for row in profiles
    ] == personas
    silhouettes_by_segment = sample_build.query(
        "select segment_id, mean_silhouette, silhouette_sample_customers "
        "from marts.segment_silhouettes order by segment_id"
    )
    assert silhouettes_by_segment == [
        (row["segment_id"], row["mean_silhouette"], row["silhouette_sample_customers"])
        for row in profiles
    ]

    programme = "select customer_id, country, monetary, rfm_segment, as_of_date from marts."
    assert sample_build.query(f"{programme}loyalty_programme") == sample_build.query(
        f"{programme}customer_rfm where customer_id in "
        "(select customer_id from marts.customer_segments where segment_id = 1) "
        "order by customer_id"
    )
    [summary] = sample_build.df("select * from marts.loyalty_programme_summary").to_dict("records")
    first = profiles[0]
    assert summary["members"] == first["customers"] == len(by_segment[1])
    assert summary["customers"] == len(rows)
    assert summary["total_revenue"] == float(total_revenue)
    for column in (
        "segment_name",
        "revenue",
        "share_of_customers",
        "share_of_revenue",
        "mean_monetary",
        "median_monetary",
        "mean_frequency",
        "mean_recency_days",
    ):
        assert summary[column] == first[column], column
    assert summary["segment_name"] == "Insiders"


# --------------------------------------------------------------------------- value tiers


def test_value_tiers_higher_is_better():
    rng = np.random.default_rng(11)
    n = 2_000
    table = pa.table(
        {
            "customer_id": pa.array(rng.permutation(n).astype(np.int64) + 1),
            "recency_days": pa.array(rng.integers(1, 374, n).astype(np.int32)),
            "frequency": pa.array(1 + rng.poisson(rng.gamma(0.6, 4.0, n))),
            "monetary": pa.array(np.round(np.exp(rng.normal(6, 1.2, n)), 2)),
        }
    )
    tiers = customer_value_tiers(table)
    assert tiers.equals(customer_value_tiers(table))
    cols = {name: tiers.column(name).to_numpy() for name in tiers.column_names[:9]}
    for value, cluster, sign in (
        ("recency_days", "recency_cluster", -1),  # fewer days is better
        ("frequency", "frequency_cluster", 1),
        ("monetary", "monetary_cluster", 1),
    ):
        order = np.argsort(sign * cols[value], kind="stable")
        assert (np.diff(cols[cluster][order]) >= 0).all(), cluster
        assert set(cols[cluster]) == {1, 2, 3, 4}
    overall = cols["recency_cluster"] + cols["frequency_cluster"] + cols["monetary_cluster"]
    np.testing.assert_array_equal(cols["overall_score"], overall)
    expected = np.where(overall <= 5, "Low", np.where(overall <= 8, "Mid", "High"))
    np.testing.assert_array_equal(cols["value_tier"].astype(str), expected)
    by_tier = {t: cols["monetary"][expected == t].mean() for t in ("Low", "Mid", "High")}
    assert by_tier["Low"] < by_tier["Mid"] < by_tier["High"]


def test_value_tiers_of_the_groups(four_groups):
    table, truth, _, _ = four_groups
    tiers = customer_value_tiers(table)
    groups = truth_by_id(table, truth, tiers.column("customer_id").to_numpy())
    tier = np.asarray(tiers.column("value_tier").to_pylist())
    assert set(tier[groups == 0]) == {"High"}
    assert set(tier[groups == 3]) == {"Low"}


# --------------------------------------------------------------------------- personas


def load_personas() -> pa.Table:
    with open(PROJECT_DIR / "seeds" / "segment_personas.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return pa.Table.from_pylist(
        [{**row, "k": int(row["k"]), "rank": int(row["rank"])} for row in rows]
    )


def test_persona_names_rank_spend_and_claim_nothing_else():
    personas = load_personas()
    # Words that describe recency or frequency; "loyalty programme" (segment 1) is no claim.
    claims = re.compile(
        r"\b(new|newcomers?|recent(ly)?|lapsed|loyal|at-risk|hibernating|regulars?|"
        r"one-timers?|occasional|often|frequent)\b",
        re.IGNORECASE,
    )
    for k in range(2, 21):
        found = persona_lookup(personas, k)
        names = [persona.name for persona in found.values()]
        assert names[0] == "Insiders" and len(set(names)) == k
        for persona in found.values():
            assert not claims.search(f"{persona.name} {persona.description}"), (k, persona)


# --------------------------------------------------------------------------- real pipeline


def test_two_builds_give_row_for_row_identical_customer_segments(sample_build, tmp_path):
    # Only customer_segments and what it is built from (the data tests ran in sample_build).
    second = build_ok(
        tmp_path / "second",
        args=[
            "build",
            "--select",
            "+customer_segments",
            "--exclude-resource-type",
            "test",
            "unit_test",
        ],
    )
    sql = "select * from marts.customer_segments"  # insertion order, as a reader sees it
    first_rows, second_rows = sample_build.query(sql), second.query(sql)
    assert len(first_rows) > 100
    assert first_rows == second_rows
    columns = [row[0] for row in second.query("describe marts.customer_segments")]
    assert columns[:4] == ["customer_id", "segment_id", "segment_name", "k"]
    assert second.query("select count(*) from marts.customer_rfm") == [(len(first_rows),)]
