"""Time and peak memory of the segmentation models on synthetic (or copied) customers.

    .venv/bin/python scripts/bench_segmentation.py [--customers 1000000] [--seed 7]
        [--rfm-from build.duckdb]  # instead: the marts.customer_rfm of a dbt build
        [--workdir /tmp/bench_segmentation]
        [--dbt]                 # also run the real dbt models on the same table
        [--compare-minibatch]   # also time KMeans against MiniBatchKMeans at this size
        [--warm]                # also time a second run of each model in its process

1. A customer_rfm-shaped table of synthetic customers is written to a DuckDB file as
   `marts.customer_rfm`, with the seed `segment_personas` as `reference.segment_personas`.
   The customers follow the skew of the UCI data: a third buy once, frequency has a long tail,
   recent customers buy more often, spend per order is log-normal, about 30% return something
   and about 1% return everything (monetary 0). With `--rfm-from`, the `marts.customer_rfm` of
   that DuckDB file (e.g. a `dbt build` of the generated 10M-line data) is copied instead.
2. Each Python model of the segmentation runs in a process of its own, in dependency order: the
   model file itself is loaded and its `model(dbt, session)` called with a stand-in `dbt` whose
   `ref()` returns the DuckDB relation (as dbt-duckdb does) and whose `config.get()` returns the
   project's defaults; the returned Arrow table is written back the way dbt-duckdb does
   (`create table ... as select * from <registered table>`). Its wall time and its own peak RSS
   (os.wait4 of that process) are printed, with the split: import (loading the model file,
   which imports customer_segmentation and what it needs at module level), load (DuckDB to
   Arrow), compute (the model's own work, including imports made inside functions) and write.
   The summary repeats the split; "wall" also holds the interpreter's start-up (about 0.3 s
   for Python, numpy, pyarrow and duckdb). `--warm`: each model then runs a second time in
   its process, with the libraries loaded (as every Python model after the first in one dbt
   process), and that compute time is shown too; its table must equal the first one (the
   second run adds to wall and peak RSS, so compare those without `--warm`).
3. `--dbt`: the same Python models and the SQL marts built on them (segment_profiles and the
   loyalty marts) through `dbt run`, each in its own dbt process, then all of them in one
   process (what `dbt build` does); the time and peak RSS include dbt itself.
4. `--compare-minibatch`: for every k of the default sweep (2..10), on one thread as the models
   run, KMeans (n_init=10) on the sweep sample (what the models do), KMeans on all customers and
   MiniBatchKMeans (n_init=10, default batch size) on all customers; time and inertia on all
   customers. Then the final refit of customer_segments (from given centroids, n_init=1) with
   both. The issue allows MiniBatchKMeans only if it measures faster.

Peak RSS is the resident-set high-water mark of each step's process (a fresh Python process
starts at about 200 MB with numpy, pyarrow, duckdb and scikit-learn loaded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

AS_OF = dt.date(2011, 12, 10)
# Dependency order of the Python models (each reads only tables made before it), with the
# folder of python_models/ each lies in: its schema (folder config in dbt_project.yml).
MODELS = {
    "segment_model_selection": "marts",
    "customer_segments": "marts",
    "segment_silhouettes": "marts",
    "customer_value_tiers": "marts",
}
# The SQL marts on top of them, built only with --dbt.
SQL_MODELS = ("segment_profiles", "loyalty_programme", "loyalty_programme_summary")
# Where each ref lives (generate_schema_name gives the configured schema names as they are).
SCHEMAS = {"segment_personas": "reference", **MODELS}


# --------------------------------------------------------------------------- synthetic data


def synthetic_customer_rfm(customers: int, seed: int = 7) -> pa.Table:
    """A customer_rfm-shaped Arrow table with realistic, skewed RFM distributions."""
    rng = np.random.default_rng(seed)
    n = customers
    ids = np.arange(12346, 12346 + n, dtype=np.int64)
    rate = rng.gamma(shape=0.6, scale=4.0, size=n)
    frequency = 1 + rng.poisson(rate)
    recency = np.minimum(373, 1 + rng.exponential(160.0 / np.sqrt(frequency))).astype(np.int32)
    tenure = np.where(frequency > 1, (rng.random(n) * (373 - recency)), 0).astype(np.int32)
    aov = np.exp(rng.normal(5.8, 0.7, n))
    gross = np.round(frequency * aov * np.exp(rng.normal(0.0, 0.2, n)), 2)
    has_return = rng.random(n) < 0.30
    full_return = rng.random(n) < 0.01
    returned = np.where(has_return, np.round(gross * rng.beta(1.0, 8.0, n), 2), 0.0)
    returned = np.where(full_return, gross, returned)
    monetary = np.maximum(gross - returned, 0.0)
    items = np.maximum(1, (gross / np.exp(rng.normal(1.0, 0.5, n))).astype(np.int64))
    distinct = np.minimum(items, 1 + rng.poisson(frequency * 8.0))
    return_lines = np.where(has_return | full_return, 1 + rng.poisson(1.0, n), 0)
    last = np.datetime64(AS_OF) - recency.astype("timedelta64[D]")
    first = last - tenure.astype("timedelta64[D]")
    dec = pa.decimal128(18, 4)
    r_score = np.clip(5 - recency // 75, 1, 5).astype(np.int32)
    f_score = np.clip(frequency, 1, 5).astype(np.int32)
    m_score = np.clip((np.log10(np.maximum(monetary, 1)) * 1.5).astype(int) - 2, 1, 5)
    m_score = m_score.astype(np.int32)
    cell = (r_score * 100 + f_score * 10 + m_score).astype(str)
    return pa.table(
        {
            "customer_id": ids,
            "as_of_date": pa.array([AS_OF] * n, pa.date32()),
            "first_purchase_at": pa.array(first.astype("datetime64[us]")),
            "last_purchase_at": pa.array(last.astype("datetime64[us]")),
            "recency_days": pa.array(recency, pa.int32()),
            "frequency": pa.array(frequency, pa.int64()),
            "gross_revenue": pa.array(gross, pa.float64()).cast(dec),
            "returned_amount": pa.array(returned, pa.float64()).cast(dec),
            "monetary": pa.array(np.round(monetary, 2), pa.float64()).cast(dec),
            "avg_order_value": pa.array(np.round(gross / frequency, 2), pa.float64()).cast(dec),
            "total_items": pa.array(items, pa.int64()),
            "distinct_products": pa.array(distinct, pa.int64()),
            "return_lines": pa.array(return_lines, pa.int64()),
            "tenure_days": pa.array(tenure, pa.int32()),
            "country": pa.array(np.where(rng.random(n) < 0.9, "United Kingdom", "Germany")),
            "r_score": pa.array(r_score, pa.int32()),
            "f_score": pa.array(f_score, pa.int32()),
            "m_score": pa.array(m_score, pa.int32()),
            "rfm_cell": pa.array(cell),
            "fm_score": pa.array((f_score + m_score) // 2, pa.int32()),
            "rfm_segment": pa.array(np.where(r_score >= 4, "Champions", "Hibernating")),
        }
    )


# --------------------------------------------------------------------------- steps (children)


def _connect(db: Path):
    import duckdb

    return duckdb.connect(str(db))


def step_generate(db: Path, customers: int, seed: int, rfm_from: Path | None = None) -> None:
    """Write marts.customer_rfm (synthetic, or copied from `rfm_from`) and the persona seed to
    a fresh DuckDB file."""
    if rfm_from is not None:
        with _connect(rfm_from) as source:
            rfm = source.sql("select * from marts.customer_rfm").to_arrow_table()
    else:
        rfm = synthetic_customer_rfm(customers, seed)
    customers = rfm.num_rows
    with _connect(db) as con:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists reference")
        con.execute("create schema if not exists intermediate")
        con.register("rfm_arrow", rfm)
        con.execute("create or replace table marts.customer_rfm as select * from rfm_arrow")
        con.unregister("rfm_arrow")
        con.execute(
            "create or replace table reference.segment_personas as select * from read_csv(?, "
            "header = true, columns = {'k': 'integer', 'rank': 'integer', "
            "'segment_name': 'varchar', 'description': 'varchar', "
            "'marketing_action': 'varchar'})",
            [str(PROJECT_DIR / "seeds" / "segment_personas.csv")],
        )
    print(f"  {customers:,} customers written to {db}")


def project_config() -> dict[str, dict[str, Any]]:
    """The config each model reads with dbt.config.get(): the project's defaults."""
    import yaml

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    tiers_yml = PROJECT_DIR / "python_models" / "marts" / "customer_value_tiers.yml"
    tiers = yaml.safe_load(tiers_yml.read_text())
    dbt_vars = project["vars"]
    return {
        "segment_model_selection": {
            name: dbt_vars[name]
            for name in ("segment_k_min", "segment_k_max", "segment_k", "segment_features")
        },
        "customer_value_tiers": {
            "clusters_per_dimension": tiers["models"][0]["config"]["clusters_per_dimension"]
        },
    }


class _Config(dict):
    def __call__(self, **kwargs: Any) -> None:  # dbt.config(materialized=...)
        pass


class StandInDbt:
    """What a dbt-duckdb Python model sees of `dbt`: ref() gives a DuckDB relation."""

    def __init__(self, con, config: dict[str, Any]) -> None:
        self._con = con
        self.config = _Config(config)
        self.load_seconds = 0.0

    def ref(self, name: str):
        return _TimedRelation(self, self._con.table(f"{SCHEMAS.get(name, 'marts')}.{name}"))


class _TimedRelation:
    """A DuckDB relation (select and filter, as the models use) whose to_arrow_table() time
    counts as load time (the query runs then)."""

    def __init__(self, owner: StandInDbt, relation) -> None:
        self._owner, self._relation = owner, relation

    def select(self, *columns: str) -> _TimedRelation:
        return _TimedRelation(self._owner, self._relation.select(*columns))

    def filter(self, condition: str) -> _TimedRelation:
        return _TimedRelation(self._owner, self._relation.filter(condition))

    def to_arrow_table(self) -> pa.Table:
        start = time.perf_counter()
        table = self._relation.to_arrow_table()
        self._owner.load_seconds += time.perf_counter() - start
        return table


def step_model(db: Path, name: str, warm: bool = False) -> None:
    """Run python_models/<folder>/<name>.py as dbt-duckdb would, and materialize its table."""
    spec = importlib.util.spec_from_file_location(
        name, PROJECT_DIR / "python_models" / MODELS[name] / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    start = time.perf_counter()
    spec.loader.exec_module(module)
    imported = time.perf_counter() - start
    with _connect(db) as con:
        dbt = StandInDbt(con, project_config().get(name, {}))
        start = time.perf_counter()
        result = module.model(dbt, con)
        compute = time.perf_counter() - start - dbt.load_seconds
        start = time.perf_counter()
        con.register("__model_result", result)
        con.execute(
            f"create or replace table {MODELS[name]}.{name} as select * from __model_result"
        )
        con.unregister("__model_result")
        write = time.perf_counter() - start
        load = dbt.load_seconds
        again_seconds = float("nan")
        if warm:
            # Again in the same process: libraries loaded (as for every Python model after the
            # first in one dbt process), and the result must be the identical table.
            dbt.load_seconds = 0.0
            start = time.perf_counter()
            again = module.model(dbt, con)
            again_seconds = time.perf_counter() - start - dbt.load_seconds
            if not again.equals(result):
                raise SystemExit(f"{name}: a second run in the same process differs")
    print(
        f"  import {imported:.2f} s, load {load:.2f} s, compute {compute:.2f} s, "
        f"write {write:.2f} s; {result.num_rows:,} rows"
        + (f"; again, libraries loaded: compute {again_seconds:.2f} s" if warm else "")
    )
    split = {
        "import": imported,
        "load": load,
        "compute": compute,
        "warm": again_seconds,
        "write": write,
    }
    (db.parent / f"{name}.split.json").write_text(json.dumps(split))
    if name == "segment_model_selection":
        for row in result.to_pylist():
            print(
                f"    k={row['k']:>2} inertia={row['inertia']:10.0f} sil={row['silhouette']:.4f} "
                f"gmm={row['gmm_silhouette']:.4f} agg={row['agglomerative_silhouette']:.4f} "
                f"knee={row['knee_distance']:.3f}{'  <- selected' if row['is_selected'] else ''}"
            )
        first = result.slice(0, 1).to_pylist()[0]
        rows_used = ("fit_rows", "score_rows", "comparison_rows")
        print("    " + ", ".join(f"{c} {first[c]:,}" for c in rows_used if c in first))
    if name == "segment_silhouettes":
        for row in result.to_pylist():
            print(
                f"    segment {row['segment_id']}: silhouette {row['mean_silhouette']:.3f} "
                f"over {row['silhouette_sample_customers']:,} sampled customers"
            )


def step_minibatch(db: Path) -> None:
    """KMeans (as the models run it) against MiniBatchKMeans on all customers, per k."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from customer_segmentation.segmentation.clustering import N_INIT, RANDOM_STATE
    from customer_segmentation.segmentation.features import (
        SWEEP_SAMPLE_SIZE,
        prepare_features,
        sample_positions,
    )
    from customer_segmentation.segmentation.settings import DEFAULT_FEATURES
    from customer_segmentation.segmentation.threads import KMEANS_MODULES, single_threaded

    with _connect(db) as con:
        rfm = con.table("marts.customer_rfm").to_arrow_table()
    fm = prepare_features(rfm, DEFAULT_FEATURES)
    x_all = fm.standardised
    x_sweep = x_all[sample_positions(fm.customer_ids, SWEEP_SAMPLE_SIZE)]
    print(f"  {len(x_all):,} customers, sweep sample {len(x_sweep):,}; one thread; inertia on all")
    print(
        f"  {'k':>3} {'KMeans sample':>16} {'KMeans all':>16} {'MiniBatch all':>16}"
        f"   inertia (all customers): sample / all / minibatch"
    )
    totals = np.zeros(3)
    selected = {}
    with single_threaded(*KMEANS_MODULES):
        for k in range(2, 11):
            fits = []
            for estimator, x in (
                (KMeans(k, n_init=N_INIT, random_state=RANDOM_STATE), x_sweep),
                (KMeans(k, n_init=N_INIT, random_state=RANDOM_STATE), x_all),
                (MiniBatchKMeans(k, n_init=N_INIT, random_state=RANDOM_STATE), x_all),
            ):
                start = time.perf_counter()
                estimator.fit(x)
                fits.append((time.perf_counter() - start, -estimator.score(x_all), estimator))
            totals += [f[0] for f in fits]
            selected[k] = fits[0][2].cluster_centers_
            print(
                f"  {k:>3} {fits[0][0]:14.1f} s {fits[1][0]:14.1f} s {fits[2][0]:14.1f} s"
                f"   {fits[0][1]:9.0f} / {fits[1][1]:9.0f} / {fits[2][1]:9.0f}"
            )
        print(f"  sum {totals[0]:14.1f} s {totals[1]:14.1f} s {totals[2]:14.1f} s")
        print("  final refit on all customers from the sweep's centroids (n_init=1):")
        for k in (5, 8):
            for label, estimator in (
                ("KMeans", KMeans(k, init=selected[k], n_init=1, random_state=RANDOM_STATE)),
                (
                    "MiniBatchKMeans",
                    MiniBatchKMeans(k, init=selected[k], n_init=1, random_state=RANDOM_STATE),
                ),
            ):
                start = time.perf_counter()
                estimator.fit(x_all)
                took = time.perf_counter() - start
                print(
                    f"    k={k} {label:<16} {took:6.1f} s  inertia {-estimator.score(x_all):9.0f}"
                )


# --------------------------------------------------------------------------- parent


def run_measured(label: str, cmd: list[str], env: dict[str, str] | None = None) -> tuple:
    """Run one step as a child process; print and return its wall time, peak RSS (MB) and CPU
    time (user + system: on a shared machine steadier than the wall time)."""
    print(f"{label}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss / 1024  # Linux reports KiB
    cpu = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {proc.returncode}")
    print(f"  -> {wall:.1f} s (CPU {cpu:.1f} s), peak RSS {peak:.0f} MB", flush=True)
    return label, wall, peak, cpu


def _seconds(value: float) -> str:
    return f" {'-':>8}" if value != value else f" {value:7.2f}s"  # NaN: not measured


def print_summary(title: str, rows: list[tuple], splits: dict[str, dict] | None = None) -> None:
    """Wall time, CPU time and peak RSS per step; with `splits`, also each model's import /
    load / compute / warm / write seconds (from the child's <model>.split.json)."""
    parts = ("import", "load", "compute", "warm", "write")
    head = "".join(f" {p:>8}" for p in parts) if splits else ""
    print(f"\n{title}\n  {'step':<38} {'wall':>8} {'CPU':>8} {'peak RSS':>10}{head}")
    for label, wall, peak, cpu in rows:
        split = (splits or {}).get(label)
        tail = "".join(_seconds(split[p]) for p in parts) if split else ""
        print(f"  {label:<38} {wall:7.2f}s {cpu:7.2f}s {peak:7.0f} MB{tail}")
    if len(rows) > 1:
        total, total_cpu = sum(r[1] for r in rows), sum(r[3] for r in rows)
        tail = ""
        if splits:
            tail = "".join(_seconds(sum(s[p] for s in splits.values())) for p in parts)
        print(
            f"  {'total (peak = largest step)':<38} {total:7.2f}s {total_cpu:7.2f}s "
            f"{max(r[2] for r in rows):7.0f} MB{tail}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rfm-from", type=Path, help="copy marts.customer_rfm from this DuckDB file instead"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_segmentation"))
    parser.add_argument("--dbt", action="store_true")
    parser.add_argument("--compare-minibatch", action="store_true")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="run each model a second time in its process (libraries loaded) and time that too",
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step in a child
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.step:
        if args.step == "generate":
            step_generate(args.db, args.customers, args.seed, args.rfm_from)
        elif args.step == "minibatch":
            step_minibatch(args.db)
        else:
            step_model(args.db, args.step, args.warm)
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / "bench.duckdb"
    for leftover in (db, db.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    me = [sys.executable, str(Path(__file__).resolve()), "--db", str(db)]
    source = (
        f"customer_rfm of {args.rfm_from}" if args.rfm_from else f"{args.customers:,} customers"
    )
    print(f"{source}; DuckDB file {db}; {os.cpu_count()} CPU(s); load {os.getloadavg()[0]:.2f}\n")
    rows = [
        run_measured(
            "generate customer_rfm",
            [
                *me,
                "--step",
                "generate",
                "--customers",
                str(args.customers),
                "--seed",
                str(args.seed),
                *(["--rfm-from", str(args.rfm_from)] if args.rfm_from else []),
            ],
        )
    ]
    start = time.perf_counter()
    warm = ["--warm"] if args.warm else []
    model_rows = [run_measured(name, [*me, "--step", name, *warm]) for name in MODELS]
    splits = {name: json.loads((db.parent / f"{name}.split.json").read_text()) for name in MODELS}
    print_summary(
        "Python models (model code, Arrow in and out, one process each)", model_rows, splits
    )
    print(f"  (wall clock of the {len(MODELS)}: {time.perf_counter() - start:.1f} s)")
    rows += model_rows

    if args.dbt:
        dbt = str(Path(sys.executable).with_name("dbt"))
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(PROJECT_DIR),
            "DUCKDB_PATH": str(db),
            "DUCKDB_TEMP_DIRECTORY": str(args.workdir / "duckdb_tmp"),
            "SERVING_DUCKDB_PATH": str(args.workdir / "serving.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        paths = ["--target-path", str(args.workdir / "target")]
        paths += ["--log-path", str(args.workdir / "logs")]
        run_measured(
            "dbt seed segment_personas", [dbt, "seed", "-s", "segment_personas", *paths], env
        )
        every = [*MODELS, *SQL_MODELS]
        dbt_rows = [
            run_measured(f"dbt run -s {name}", [dbt, "run", "-s", name, *paths], env)
            for name in every
        ]
        dbt_rows.append(
            run_measured("dbt run -s <all> (one process)", [dbt, "run", "-s", *every, *paths], env)
        )
        print_summary("dbt (each includes dbt start-up and parsing)", dbt_rows[:-1])
        print_summary(f"dbt, the {len(every)} models in one process", dbt_rows[-1:])

    if args.compare_minibatch:
        run_measured("KMeans vs MiniBatchKMeans", [*me, "--step", "minibatch"])
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nparent process peak RSS {parent_peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
