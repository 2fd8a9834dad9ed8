"""Benchmark: the full `dbt build` against a pandas notebook and one bare DuckDB query (issue 6).

Usage (from the project folder; `make bench` runs the same with `BENCH_ARGS`)::

    .venv/bin/python scripts/bench.py [--sizes 1M,10M,100M] [--format parquet|csv]
        [--seed 42] [--cache-dir .bench] [--only dbt,pandas,duckdb]
        [--pandas-memory-cap-gb 16] [--json .bench/results.json]

For each size (a line count, with an optional k or M suffix: 100k, 1M, 10M, 100M):

1. Input: the project's generator (`python -m customer_segmentation.generate`) writes the file
   once into `<cache-dir>/inputs/`; a `.meta.json` beside it records rows, seed, format and a
   hash of the generator's source, and the file is reused while all of them match. Generation
   time is reported, but is not part of any comparison.
2. dbt: `dbt parse` from scratch is timed on its own line (dbt's fixed start-up cost, paid
   once per change of project files or vars), then the full `dbt build` (all models, seeds,
   data and unit tests; it reuses the parse, as any second build does) runs into a fresh folder
   `<cache-dir>/runs/<size>-<format>/` (DuckDB build and serving files, temp directory, target
   and log folders; deleted before the parse), with `--vars '{"transactions_path": <file>}'`.
   Per-node times come from that run's `run_results.json`; start-up = wall time - dbt's
   `elapsed_time`.
3. pandas reference: the notebook approach in a child process (drop guests, Quantity > 0,
   UnitPrice > 0, RFM by `groupby().agg` with lambdas, `qcut` quintile scores, log1p +
   StandardScaler + KMeans(4, n_init=10, random_state=42)). A watchdog kills it when its
   resident memory exceeds `--pandas-memory-cap-gb`, so it cannot take the machine down.
4. Bare DuckDB reference: one RFM query with the same cleaning, fetched as numpy, then the same
   log1p + StandardScaler + KMeans fit, in a child process; DuckDB threads and memory_limit are
   those the dbt profile uses (`DUCKDB_THREADS`, default 2; `DUCKDB_MEMORY_LIMIT`, default read
   from profiles.yml).

Measurement: every step is a child process; seconds are its wall time (interpreter start-up and
imports included, as a user would wait for them); peak RSS is the larger of the child's
`ru_maxrss` from `os.wait4` (the largest single process among it and its reaped descendants)
and the peak of the summed resident memory of its live process tree, sampled from /proc every
0.2 s. GB means 10^9 bytes. The input file is read once before the timed runs so that every
run starts with it in the page cache. Runs are sequential; other load on the machine skews
them, so the load average before each run is recorded in the JSON.

Output: a table per size, the issue's targets as PASS/FAIL lines, and everything (machine,
versions, per-node times, reference phases) as JSON (`--json`, rewritten after each size).

The references agree with each other by construction (same rows, same customers in the same
order); the JSON records customers and KMeans inertia of both so a drift shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
GENERATOR_SOURCE = PROJECT_DIR / "customer_segmentation" / "generate.py"
PROFILES = PROJECT_DIR / "profiles.yml"
GB = 1_000_000_000
RUNS = ("dbt", "pandas", "duckdb")
NAME_WIDTH = 52  # first column of the table
SAMPLE_SECONDS = 0.2
RESCAN_EVERY = 5  # ticks between two scans of /proc for new descendants
KMEANS = {"n_clusters": 4, "n_init": 10, "random_state": 42}
# Issue 6's targets.
TARGET_TIME_ROWS = 10_000_000
TARGET_SCALE_ROWS = 100_000_000
TARGET_SCALE_PEAK_GB = 4.0
TARGET_SCALE_TIME_RATIO = 3.0
VERSIONED_PACKAGES = (
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
)


# --------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    """Wall time and memory of one child process (and its descendants)."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the child and its reaped descendants
    maxrss_bytes: int  # ru_maxrss: the largest single process of the tree
    tree_peak_bytes: int  # peak of the sampled sum over the live process tree
    killed: str | None = None  # why the watchdog killed it, if it did

    @property
    def peak_bytes(self) -> int:
        return max(self.maxrss_bytes, self.tree_peak_bytes)


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the parent pid is 2nd after its ")".
        parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return parents


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    found, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS, from /proc/<pid>/statm); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def run_measured(
    cmd: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cap_bytes: int | None = None,
) -> Measured:
    """Run `cmd` from the project folder, stdout and stderr to `log_path`; measure it.

    The child leads its own process group. A watchdog thread samples the resident memory of
    its process tree every SAMPLE_SECONDS and, above `cap_bytes`, kills the group. The child
    is waited for without being reaped (waitid WNOWAIT) so its pid, and so its group id, stay
    ours until the watchdog has stopped; then os.wait4 reaps it and returns its rusage.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid = proc.pid
    stop = threading.Event()
    state: dict = {"peak": 0, "killed": None}

    def watch() -> None:
        # Ctrl-C and SIGTERM must reach the main thread, to interrupt its wait below.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        tree = {pid}
        tick = 0
        while not stop.is_set():
            if tick % RESCAN_EVERY == 0:
                tree = _descendants(pid)
            tick += 1
            rss = sum(_rss_bytes(p) for p in tree)
            state["peak"] = max(state["peak"], rss)
            if cap_bytes is not None and rss > cap_bytes:
                state["killed"] = f"killed: over {cap_bytes / GB:g} GB"
                os.killpg(pid, signal.SIGKILL)
                return
            stop.wait(SAMPLE_SECONDS)

    watchdog = threading.Thread(target=watch, name=f"watch-{pid}", daemon=True)
    watchdog.start()
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except BaseException:  # Ctrl-C or any error here: do not leave the child running
        os.killpg(pid, signal.SIGKILL)
        raise
    finally:
        wall = time.perf_counter() - start
        stop.set()
        watchdog.join()
        _, status, usage = os.wait4(pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=proc.returncode,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        maxrss_bytes=usage.ru_maxrss * 1024,  # KiB on Linux
        tree_peak_bytes=state["peak"],
        killed=state["killed"],
    )


def measured_json(m: Measured) -> dict:
    return {**asdict(m), "peak_rss_bytes": m.peak_bytes, "load_average_before": _loadavg()}


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def failure_excerpt(path: Path, first: int = 12, last: int = 15) -> str:
    """The first error lines of a dbt log (which node failed, and why), then its tail."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if re.search(r"\b(ERROR|FAIL|Error)\b", line)]
    head = errors[:first]
    return "\n".join([*head, "..." if head else "", *lines[-last:]]).strip()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- settings


def parse_size(text: str) -> int:
    """'100k' -> 100_000, '1M' -> 1_000_000, '2.5M' -> 2_500_000, '60000' -> 60_000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text.replace("_", ""))
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 100k, 1M, 10M)")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    rows = round(float(match.group(1)) * factor)
    if rows < 1_000:
        raise argparse.ArgumentTypeError(f"size {text!r}: at least 1k lines")
    return rows


def size_label(rows: int) -> str:
    for factor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if rows >= factor and rows % (factor // 100) == 0:
            return f"{rows / factor:g}{suffix}"
    return str(rows)


def profile_default(var: str, fallback: str) -> str:
    """The default of `env_var(var, default)` in profiles.yml, so the bench follows it."""
    try:
        text = PROFILES.read_text()
    except OSError:
        return fallback
    match = re.search(rf"env_var\(\s*['\"]{var}['\"]\s*,\s*['\"]([^'\"]+)['\"]\s*\)", text)
    return match.group(1) if match else fallback


def duckdb_settings() -> dict[str, str]:
    """What the dbt profile gives DuckDB, from the same environment variables."""
    return {
        "threads": os.environ.get("DUCKDB_THREADS", profile_default("DUCKDB_THREADS", "2")),
        "memory_limit": os.environ.get(
            "DUCKDB_MEMORY_LIMIT", profile_default("DUCKDB_MEMORY_LIMIT", "8GB")
        ),
    }


def venv_tool(name: str) -> str:
    """A console script next to the running interpreter (the project venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found next to {sys.executable} nor on PATH")
    return found


# --------------------------------------------------------------------------- machine


def machine_info() -> dict:
    info: dict = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": _loadavg(),
        # Thread settings inherited by every child (OpenMP KMeans is very sensitive to load).
        "thread_env": {
            k: v
            for k, v in os.environ.items()
            if k.endswith("_NUM_THREADS") or k.startswith("OMP_")
        },
    }
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        info["ram_bytes"] = kib * 1024
        info["ram_gib"] = round(kib / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.+)", cpuinfo).group(1).strip()
    except (OSError, AttributeError):
        pass
    return info


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def git_info() -> dict:
    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
        )
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty_files": len(git("status", "--porcelain").splitlines()),
    }


# --------------------------------------------------------------------------- inputs


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_input(rows: int, seed: int, fmt: str, cache_dir: Path) -> dict:
    """The generated input for (rows, seed, format), generated unless a matching one is cached."""
    inputs = cache_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    path = inputs / f"online_retail_{rows}_seed{seed}.{fmt}"
    meta_path = path.with_name(path.name + ".meta.json")
    wanted = {
        "rows": rows,
        "seed": seed,
        "format": fmt,
        "generator_sha256": file_sha256(GENERATOR_SOURCE),
    }
    if path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        same = all(meta.get(k) == v for k, v in wanted.items())
        if same and meta.get("bytes") == path.stat().st_size:
            return {**meta, "path": str(path), "cached": True}
    path.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    progress(f"[{size_label(rows)}] generating {rows:,} lines ({fmt}) ...")
    cmd = [sys.executable, "-m", "customer_segmentation.generate", "--rows", str(rows)]
    cmd += ["--seed", str(seed), "--output", str(partial), "--format", fmt]
    gen_log = inputs / f"{path.stem}.generate.log"
    m = run_measured(cmd, log_path=gen_log)
    if m.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SystemExit(f"generator failed (exit {m.returncode}):\n{log_tail(gen_log)}")
    partial.replace(path)
    meta = {
        **wanted,
        "bytes": path.stat().st_size,
        "generation_seconds": round(m.wall_seconds, 3),
        "generation_peak_rss_bytes": m.peak_bytes,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": cmd,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return {**meta, "path": str(path), "cached": False}


def warm_page_cache(path: Path) -> None:
    """Read the file once so every timed run finds it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


# --------------------------------------------------------------------------- dbt


def dbt_command(subcommand: str, run_dir: Path, input_path: Path) -> list[str]:
    return [
        venv_tool("dbt"),
        subcommand,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(run_dir / "target"),
        "--log-path",
        str(run_dir / "logs"),
        "--no-use-colors",
        "--vars",
        json.dumps({"transactions_path": str(input_path)}),
    ]


def dbt_env(run_dir: Path) -> dict[str, str]:
    """Everything dbt writes lands in `run_dir`; DuckDB settings come from the caller's env."""
    return {
        **os.environ,
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DUCKDB_PATH": str(run_dir / "build.duckdb"),
        "SERVING_DUCKDB_PATH": str(run_dir / "serving.duckdb"),
        "DUCKDB_TEMP_DIRECTORY": str(run_dir / "duckdb_tmp"),
    }


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def time_dbt_parse(run_dir: Path, input_path: Path) -> dict:
    """`dbt parse` from scratch (no partial-parse state) into the build's own folder: dbt's
    fixed cost before any node. The build that follows reuses its partial-parse state, as
    every `dbt build` after the first with the same vars does."""
    m = run_measured(
        dbt_command("parse", run_dir, input_path),
        log_path=run_dir / "dbt_parse.out",
        env=dbt_env(run_dir),
    )
    result = {"ok": m.returncode == 0, **measured_json(m)}
    if m.returncode != 0:
        result["log_tail"] = log_tail(run_dir / "dbt_parse.out")
    return result


def node_kind(unique_id: str) -> str:
    kind = unique_id.split(".", 1)[0]
    return {"test": "data_test"}.get(kind, kind)


def node_name(unique_id: str) -> str:
    """model.pkg.NAME, seed.pkg.NAME, test.pkg.NAME[.hash], unit_test.pkg.model.NAME."""
    parts = unique_id.split(".")
    if parts[0] == "unit_test" or len(parts) < 3:
        return parts[-1]
    return parts[2]


def summarize_run_results(path: Path) -> dict:
    """Per-node times from dbt's run_results.json, grouped: models, seeds, tests, others."""
    results = json.loads(path.read_text())
    nodes = [
        {
            "unique_id": r["unique_id"],
            "name": node_name(r["unique_id"]),
            "kind": node_kind(r["unique_id"]),
            "status": r.get("status"),
            "seconds": round(r.get("execution_time") or 0.0, 3),
        }
        for r in results.get("results", [])
    ]
    by_time = sorted(nodes, key=lambda n: n["seconds"], reverse=True)
    models = [n for n in by_time if n["kind"] == "model"]
    seeds = [n for n in by_time if n["kind"] == "seed"]
    tests = [n for n in by_time if n["kind"] in ("data_test", "unit_test")]
    others = [n for n in by_time if n["kind"] not in ("model", "seed", "data_test", "unit_test")]
    statuses: dict[str, int] = {}
    for n in nodes:
        statuses[n["status"]] = statuses.get(n["status"], 0) + 1
    return {
        "elapsed_time": results.get("elapsed_time"),
        "statuses": statuses,
        "models": models,
        "seeds": {"count": len(seeds), "seconds": round(sum(n["seconds"] for n in seeds), 3)},
        "tests": {
            "count": len(tests),
            "data_tests": sum(n["kind"] == "data_test" for n in tests),
            "unit_tests": sum(n["kind"] == "unit_test" for n in tests),
            "seconds": round(sum(n["seconds"] for n in tests), 3),
            "slowest": tests[:5],
        },
        "others": others,
        "not_ok": [n for n in nodes if n["status"] not in ("success", "pass")],
    }


def run_dbt_build(run_dir: Path, input_path: Path) -> dict:
    """The full `dbt build` into a fresh DuckDB file, after a timed `dbt parse` from scratch in
    the same folder; never raises on a failed build."""
    fresh_dir(run_dir)
    parse = time_dbt_parse(run_dir, input_path)
    out = run_dir / "dbt_build.out"
    m = run_measured(dbt_command("build", run_dir, input_path), log_path=out, env=dbt_env(run_dir))
    result: dict = {
        "ok": m.returncode == 0,
        "run_dir": str(run_dir),
        **measured_json(m),
        "parse": parse,
    }
    run_results = run_dir / "target" / "run_results.json"
    if run_results.exists():
        result.update(summarize_run_results(run_results))
        if result.get("elapsed_time") is not None:
            result["startup_seconds"] = round(m.wall_seconds - result["elapsed_time"], 3)
    if m.returncode != 0:
        result["log_tail"] = failure_excerpt(out)
    return result


# --------------------------------------------------------------------------- references


def run_reference(kind: str, input_path: Path, run_dir: Path, cap_bytes: int | None) -> dict:
    """Run one reference in a child process (this script with --_run-reference)."""
    result_path = run_dir / f"reference_{kind}.json"
    result_path.unlink(missing_ok=True)
    settings = duckdb_settings()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_run-reference", kind]
    cmd += [str(input_path), "--_result", str(result_path)]
    cmd += ["--_threads", settings["threads"], "--_memory-limit", settings["memory_limit"]]
    cmd += ["--_temp-dir", str(run_dir / f"{kind}_tmp")]
    out = run_dir / f"reference_{kind}.out"
    m = run_measured(cmd, log_path=out, cap_bytes=cap_bytes)
    result: dict = {"ok": m.returncode == 0 and result_path.exists(), **measured_json(m)}
    if kind == "duckdb":
        result["duckdb_settings"] = settings
    if result["ok"]:
        result.update(json.loads(result_path.read_text()))
    elif not m.killed:
        result["log_tail"] = log_tail(out)
    return result


def _input_format(path: Path) -> str:
    return "parquet" if path.suffix == ".parquet" else "csv"


def _kmeans_summary(features, started: float, phases: dict) -> dict:
    """log1p + StandardScaler + one KMeans fit on (recency, frequency, monetary)."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler  # imported by the caller: no cost here

    t = time.perf_counter()
    x = StandardScaler().fit_transform(np.log1p(np.asarray(features, dtype=np.float64)))
    km = KMeans(**KMEANS).fit(x)
    phases["kmeans"] = round(time.perf_counter() - t, 3)
    phases["total_in_process"] = round(time.perf_counter() - started, 3)
    sizes = np.bincount(km.labels_, minlength=KMEANS["n_clusters"])
    totals = np.asarray(features, dtype=np.float64).sum(axis=0)
    return {
        "phases_seconds": phases,
        "customers": int(x.shape[0]),
        "sum_recency": int(totals[0]),
        "sum_frequency": int(totals[1]),
        "sum_monetary": round(float(totals[2]), 2),
        "kmeans_inertia": float(km.inertia_),
        "cluster_sizes": sorted(int(s) for s in sizes),
    }


def reference_pandas(path: Path) -> dict:
    """The notebook approach, as published analyses of this data write it."""
    started = time.perf_counter()
    import pandas as pd
    import sklearn.cluster  # noqa: F401  (timed with the imports, not with the fit)

    phases: dict[str, float] = {"import": round(time.perf_counter() - started, 3)}
    t = time.perf_counter()
    if _input_format(path) == "parquet":
        df = pd.read_parquet(path)
    else:
        text_columns = ("InvoiceNo", "StockCode", "Description", "Country")
        df = pd.read_csv(path, encoding="ISO-8859-1", dtype=dict.fromkeys(text_columns, str))
        df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M")
    rows_read = len(df)
    phases["read"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    df = df.dropna(subset=["CustomerID"])
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)].copy()
    df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
    reference_date = df["InvoiceDate"].max() + pd.Timedelta(days=1)
    phases["clean"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    rfm = df.groupby("CustomerID").agg(
        {
            "InvoiceDate": lambda x: (reference_date - x.max()).days,
            "InvoiceNo": lambda x: x.nunique(),
            "TotalPrice": lambda x: x.sum(),
        }
    )
    rfm.columns = ["Recency", "Frequency", "Monetary"]
    phases["rfm"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    rfm["R"] = pd.qcut(rfm["Recency"].rank(method="first"), 5, labels=[5, 4, 3, 2, 1])
    rfm["F"] = pd.qcut(rfm["Frequency"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5])
    rfm["M"] = pd.qcut(rfm["Monetary"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5])
    rfm["RFM_Score"] = rfm["R"].astype(str) + rfm["F"].astype(str) + rfm["M"].astype(str)
    phases["scores"] = round(time.perf_counter() - t, 3)

    summary = _kmeans_summary(rfm[["Recency", "Frequency", "Monetary"]], started, phases)
    return {"rows_read": rows_read, "rows_clean": len(df), **summary}


def reference_duckdb(path: Path, threads: str, memory_limit: str, temp_dir: Path) -> dict:
    """One DuckDB RFM query (one scan of the file) with the pandas reference's cleaning."""
    started = time.perf_counter()
    import duckdb
    import numpy as np
    import sklearn.cluster  # noqa: F401  (timed with the imports, not with the fit)

    phases: dict[str, float] = {"import": round(time.perf_counter() - started, 3)}
    if _input_format(path) == "parquet":
        source = "read_parquet($path)"
    else:
        columns = (
            "{'InvoiceNo': 'VARCHAR', 'StockCode': 'VARCHAR', 'Description': 'VARCHAR', "
            "'Quantity': 'BIGINT', 'InvoiceDate': 'TIMESTAMP', 'UnitPrice': 'DOUBLE', "
            "'CustomerID': 'DOUBLE', 'Country': 'VARCHAR'}"
        )
        source = (
            f"read_csv($path, header = true, auto_detect = false, columns = {columns}, "
            "encoding = 'latin-1', timestampformat = '%m/%d/%Y %H:%M')"
        )
    # Recency as pandas computes it: whole days from the last purchase to the reference date
    # (the day after the last clean line), i.e. the max over customers of their last purchase.
    query = f"""
        with per_customer as (
            select
                CustomerID as customer_id,
                max(InvoiceDate) as last_purchase,
                count(distinct InvoiceNo) as frequency,
                sum(Quantity * UnitPrice) as monetary
            from {source}
            where CustomerID is not null and Quantity > 0 and UnitPrice > 0
            group by CustomerID
        )
        select
            date_diff(
                'second', last_purchase, max(last_purchase) over () + interval 1 day
            ) // 86400 as recency,
            frequency,
            monetary
        from per_customer
        order by customer_id
    """
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "threads": int(threads),
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    t = time.perf_counter()
    columns = con.execute(query, {"path": str(path)}).fetchnumpy()
    phases["rfm_query"] = round(time.perf_counter() - t, 3)
    con.close()

    features = np.column_stack([columns["recency"], columns["frequency"], columns["monetary"]])
    return _kmeans_summary(features, started, phases)


def reference_main(args: argparse.Namespace) -> int:
    """Child-process entry point: run one reference, write its result as JSON."""
    kind, path = args._run_reference
    if kind == "pandas":
        result = reference_pandas(Path(path))
    elif kind == "duckdb":
        result = reference_duckdb(Path(path), args._threads, args._memory_limit, args._temp_dir)
    else:
        raise SystemExit(f"unknown reference {kind!r}")
    Path(args._result).write_text(json.dumps(result, indent=2) + "\n")
    return 0


# --------------------------------------------------------------------------- report


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _gb(value: int | None) -> str:
    return "-" if value is None else f"{value / GB:.2f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def _status(run: dict) -> str:
    if run.get("ok"):
        return ""
    if run.get("killed"):
        return run["killed"]
    return f"FAILED (exit {run.get('returncode')})"


def format_table(size: dict, parse: dict | None) -> str:
    """One size's table: dbt build with its breakdown, then the two references."""
    dbt, pandas, duck = size.get("dbt"), size.get("pandas"), size.get("duckdb")
    base_s = duck["wall_seconds"] if duck and duck.get("ok") else None
    base_rss = duck["peak_rss_bytes"] if duck and duck.get("ok") else None
    inp = size["input"]
    gen = "cached" if inp["cached"] else "generated"
    title = (
        f"{size['label']} lines ({inp['format']}, {inp['bytes'] / 1e6:.1f} MB; {gen}, "
        f"generation {_seconds(inp.get('generation_seconds'))} s, not compared)"
    )
    head = f"{'':<{NAME_WIDTH}}{'seconds':>9}{'peak RSS GB':>13}"
    head += f"{'time vs DuckDB':>16}{'RSS vs DuckDB':>15}"
    lines = [title, head, "-" * len(head)]

    def row(name: str, run: dict | None) -> None:
        if run is None:
            lines.append(f"{name:<{NAME_WIDTH}}{'not run':>9}")
            return
        ok = run.get("ok")
        secs, rss = run["wall_seconds"], run["peak_rss_bytes"]
        lines.append(
            f"{name:<{NAME_WIDTH}}{_seconds(secs):>9}{_gb(rss):>13}"
            f"{_ratio(secs, base_s) if ok else '-':>16}{_ratio(rss, base_rss) if ok else '-':>15}"
            + (f"  {_status(run)}" if not ok else "")
        )

    def sub(name: str, seconds: float | None, indent: int = 2) -> None:
        label = " " * indent + name
        if len(label) >= NAME_WIDTH:
            label = label[: NAME_WIDTH - 2] + "~"
        lines.append(f"{label:<{NAME_WIDTH}}{_seconds(seconds):>9}")

    def phases(run: dict | None) -> None:
        """A reference's own phases; start-up = interpreter start and imports."""
        if not run or not run.get("ok"):
            return
        timed = dict(run["phases_seconds"])
        in_process = timed.pop("total_in_process")
        startup = run["wall_seconds"] - in_process + timed.pop("import")
        for name, seconds in timed.items():
            sub(name.replace("_", " "), seconds)
        sub("start-up and imports", startup)

    row("dbt build (all models and tests)", dbt)
    if dbt is not None:
        for model in dbt.get("models", []):
            sub(f"model {model['name']}", model["seconds"])
        if dbt.get("seeds", {}).get("count"):
            sub(f"seeds ({dbt['seeds']['count']})", dbt["seeds"]["seconds"])
        tests = dbt.get("tests")
        if tests:
            sub(
                f"tests ({tests['data_tests']} data, {tests['unit_tests']} unit)",
                tests["seconds"],
            )
            for test in tests["slowest"]:
                sub(test["name"], test["seconds"], indent=4)
        for other in dbt.get("others", []):
            if other["seconds"] >= 0.005:  # hooks; exposures take no time
                sub(f"{other['kind']} {other['name']}", other["seconds"])
        sub("dbt start-up (wall - elapsed_time)", dbt.get("startup_seconds"))
        if parse is not None:
            sub("dbt parse from scratch (before the build, not in it)", parse.get("wall_seconds"))
    row("pandas reference (notebook)", pandas)
    phases(pandas)
    row("bare DuckDB reference (1 query + KMeans)", duck)
    phases(duck)
    if dbt is not None and not dbt.get("ok"):
        if dbt.get("not_ok"):
            failing = ", ".join(f"{n['name']} ({n['status']})" for n in dbt["not_ok"][:10])
            lines.append(f"dbt build failed; not ok: {failing}")
        lines.append("dbt log (first errors, then tail):\n" + dbt.get("log_tail", ""))
    for name, run in (("pandas", pandas), ("duckdb", duck)):
        if run is not None and not run.get("ok") and run.get("log_tail"):
            lines.append(f"{name} reference log tail:\n{run['log_tail']}")
    agree = references_agree(pandas, duck)
    if agree:
        lines.append(agree)
    return "\n".join(lines)


def references_agree(pandas: dict | None, duck: dict | None) -> str | None:
    if not (pandas and duck and pandas.get("ok") and duck.get("ok")):
        return None
    same = (
        pandas["customers"] == duck["customers"]
        and pandas["sum_recency"] == duck["sum_recency"]
        and pandas["sum_frequency"] == duck["sum_frequency"]
        and abs(pandas["kmeans_inertia"] - duck["kmeans_inertia"])
        <= 1e-6 * max(1.0, pandas["kmeans_inertia"])
    )
    verdict = "agree" if same else "DISAGREE"
    return (
        f"references {verdict}: {pandas['customers']:,} vs {duck['customers']:,} customers, "
        f"KMeans inertia {pandas['kmeans_inertia']:.3f} vs {duck['kmeans_inertia']:.3f}"
    )


def evaluate_targets(sizes: list[dict]) -> list[dict]:
    """Issue 6's two targets, on the sizes of this run that they name."""
    by_rows = {s["rows"]: s for s in sizes}
    targets = []

    name = "10M lines: dbt build time < pandas time (RFM + KMeans)"
    size = by_rows.get(TARGET_TIME_ROWS)
    if size is None or not size.get("dbt") or not size.get("pandas"):
        targets.append({"target": name, "result": "NOT RUN", "detail": "needs 10M, dbt, pandas"})
    else:
        dbt, pandas = size["dbt"], size["pandas"]
        parse_s = (dbt.get("parse") or {}).get("wall_seconds")
        detail = (
            f"dbt build {_seconds(dbt['wall_seconds'])} s "
            f"(parse from scratch before it: {_seconds(parse_s)} s) vs pandas "
        )
        if not dbt["ok"]:
            passed, detail = False, "dbt build failed"
        elif pandas["ok"]:
            passed = dbt["wall_seconds"] < pandas["wall_seconds"]
            detail += f"{_seconds(pandas['wall_seconds'])} s"
        else:  # pandas did not finish: killed over the cap, or failed
            passed = True
            detail += f"{_status(pandas)} after {_seconds(pandas['wall_seconds'])} s"
        targets.append({"target": name, "result": "PASS" if passed else "FAIL", "detail": detail})

    size = by_rows.get(TARGET_SCALE_ROWS)
    name_rss = f"100M lines: dbt build peak RSS <= {TARGET_SCALE_PEAK_GB:g} GB"
    name_time = f"100M lines: dbt build time <= {TARGET_SCALE_TIME_RATIO:g}x bare DuckDB"
    if size is None or not size.get("dbt"):
        for name in (name_rss, name_time):
            targets.append({"target": name, "result": "NOT RUN", "detail": "needs 100M, dbt"})
        return targets
    dbt, duck = size["dbt"], size.get("duckdb")
    peak_gb = dbt["peak_rss_bytes"] / GB
    passed = dbt["ok"] and peak_gb <= TARGET_SCALE_PEAK_GB
    detail = f"peak {peak_gb:.2f} GB" + ("" if dbt["ok"] else ", but dbt build failed")
    targets.append({"target": name_rss, "result": "PASS" if passed else "FAIL", "detail": detail})
    if duck is None or not duck.get("ok"):
        targets.append({"target": name_time, "result": "NOT RUN", "detail": "no DuckDB result"})
    else:
        ratio = dbt["wall_seconds"] / duck["wall_seconds"]
        passed = dbt["ok"] and ratio <= TARGET_SCALE_TIME_RATIO
        detail = (
            f"dbt {_seconds(dbt['wall_seconds'])} s vs DuckDB "
            f"{_seconds(duck['wall_seconds'])} s = {ratio:.2f}x"
        )
        targets.append(
            {"target": name_time, "result": "PASS" if passed else "FAIL", "detail": detail}
        )
    return targets


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time and peak memory of the full dbt build beside a pandas notebook and "
        "one bare DuckDB query, on generated inputs (issue 6).",
    )
    parser.add_argument(
        "--sizes",
        default="1M,10M",
        help="comma-separated line counts, k/M suffixes allowed (default: 1M,10M)",
    )
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench"))
    parser.add_argument(
        "--only", default=",".join(RUNS), help="runs to do, of dbt,pandas,duckdb (default: all)"
    )
    parser.add_argument(
        "--pandas-memory-cap-gb",
        type=float,
        default=16.0,
        help="kill the pandas reference above this resident memory (default: 16)",
    )
    parser.add_argument("--json", type=Path, default=None, help="default: <cache-dir>/results.json")
    # Child-process mode (internal).
    parser.add_argument(
        "--_run-reference", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--_threads", default="2", help=argparse.SUPPRESS)
    parser.add_argument("--_memory-limit", default="8GB", help=argparse.SUPPRESS)
    parser.add_argument("--_temp-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._run_reference:
        return args
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
        args.rows = list(dict.fromkeys(sizes))  # in order, each once
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not args.rows:
        parser.error("--sizes: give at least one size")
    args.runs = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = sorted(set(args.runs) - set(RUNS))
    if unknown:
        parser.error(f"--only: unknown run(s) {', '.join(unknown)} (choose from dbt,pandas,duckdb)")
    args.cache_dir = (PROJECT_DIR / args.cache_dir).resolve()
    args.json = (PROJECT_DIR / (args.json or args.cache_dir / "results.json")).resolve()
    return args


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._run_reference:
        return reference_main(args)
    # SIGTERM (and SIGINT, even where a shell started us ignoring it) unwinds like Ctrl-C,
    # so run_measured kills the running child instead of leaving it behind.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)

    started = time.perf_counter()
    report: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": {
            "sizes": [size_label(r) for r in args.rows],
            "format": args.format,
            "seed": args.seed,
            "runs": args.runs,
            "pandas_memory_cap_gb": args.pandas_memory_cap_gb,
        },
        "machine": machine_info(),
        "versions": versions(),
        "git": git_info(),
        "duckdb_settings": duckdb_settings(),
        "units": {"seconds": "wall", "bytes": "peak RSS", "GB": 1_000_000_000},
        "sizes": [],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")

    tables = []
    for rows in args.rows:
        label = size_label(rows)
        inp = ensure_input(rows, args.seed, args.format, args.cache_dir)
        input_path = Path(inp["path"])
        warm_page_cache(input_path)
        size: dict = {"label": label, "rows": rows, "input": inp}
        run_dir = fresh_dir(args.cache_dir / "runs" / f"{label}-{args.format}")
        if "dbt" in args.runs:
            progress(f"[{label}] dbt parse, then dbt build ...")
            size["dbt"] = run_dbt_build(run_dir / "dbt", input_path)
            progress(f"[{label}] dbt build: {_seconds(size['dbt']['wall_seconds'])} s")
        if "duckdb" in args.runs:
            progress(f"[{label}] bare DuckDB reference ...")
            size["duckdb"] = run_reference("duckdb", input_path, run_dir, None)
            progress(f"[{label}] bare DuckDB: {_seconds(size['duckdb']['wall_seconds'])} s")
        if "pandas" in args.runs:
            progress(f"[{label}] pandas reference ...")
            cap = int(args.pandas_memory_cap_gb * GB)
            size["pandas"] = run_reference("pandas", input_path, run_dir, cap)
            progress(f"[{label}] pandas: {_seconds(size['pandas']['wall_seconds'])} s")
        report["sizes"].append(size)
        tables.append(format_table(size, (size.get("dbt") or {}).get("parse")))
        save()

    report["targets"] = evaluate_targets(report["sizes"])
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    save()

    machine = report["machine"]
    print(
        f"Machine: {machine.get('cores')} cores, {machine.get('ram_gib')} GiB RAM, "
        f"load {machine['load_average_at_start']}; DuckDB threads "
        f"{report['duckdb_settings']['threads']}, memory_limit "
        f"{report['duckdb_settings']['memory_limit']}; GB = 10^9 bytes"
    )
    print(", ".join(f"{k} {v}" for k, v in report["versions"].items() if v))
    load = machine["load_average_at_start"][0]
    if load >= 0.5:
        print(
            f"WARNING: the machine was busy (load {load} on {machine.get('cores')} cores): "
            "times are inflated, the KMeans fits (OpenMP) most of all."
        )
    for table in tables:
        print()
        print(table)
    print()
    print("Targets (issue 6):")
    for t in report["targets"]:
        print(f"  {t['result']:<8} {t['target']}: {t['detail']}")
    print(f"\nJSON: {args.json}  (bench took {report['bench_seconds']} s)")
    # Exit 1 when a dbt build failed (a killed pandas reference is an expected outcome).
    return 1 if any(s.get("dbt") and not s["dbt"]["ok"] for s in report["sizes"]) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); the running child was killed", file=sys.stderr)
        sys.exit(130)
