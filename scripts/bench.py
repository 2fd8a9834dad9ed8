"""Benchmark (issue 16): the dbt builds beside a pandas notebook, a bare DuckDB query and a
DuckDB reference that does the same work as the project, on inputs of a given size and shape.

Usage (from the project folder; `make bench` runs the same with `BENCH_ARGS`)::

    .venv/bin/python scripts/bench.py [--sizes 1M,10M,100M] [--inputs generated,repeated]
        [--only production,full,path,publish,publish_pseudonymous,refresh,same_work,bare,pandas]
        [--format parquet|csv]
        [--seed 42] [--cache-dir .bench] [--pandas-memory-cap-gb 16] [--json FILE]

For each size (a line count with an optional k or M suffix: 100k, 1M, 10M, 100M) and each
input kind:

1. Input, cached in `<cache-dir>/inputs/` with a `.meta.json` (rows, seed, format, a hash of
   the generator's source; the file is reused while they match) that also keeps its shape
   (lines, customers, stock codes, invoices: one DuckDB query), printed beside the UCI data's.
   `generated`: the project's generator at that size. `repeated`: the generator at the UCI size
   (541,909 lines) repeated, each copy with its own invoice numbers and customer ids (REPEAT_SQL;
   the last copy cut at the line count), written as Parquet with DuckDB's COPY: the shape of
   "the UCI data repeated", which the issue's reference figures used. Generation time is shown,
   never compared.
2. dbt runs (`DBT_RUNS`), each into its own fresh folder `<cache-dir>/runs/<size>-<kind>-
   <format>/<run>/` (DuckDB build and serving files, temp directory, target, logs), with
   `--vars '{"transactions_path": <file>}'`, after a timed `dbt parse` from scratch there (dbt's
   fixed cost; the build reuses it): `production` = `dbt build --exclude-resource-type
   unit_test` (what `make build` runs), `full` = `dbt build` (unit tests too), `path` = the
   path from the raw lines to the segments (issue 16's first target's command). Per-node
   times come from `run_results.json` (shown per model for `production` only); start-up = wall
   time - dbt's `elapsed_time`. The builds publish the customer ids (SERVING_CUSTOMER_KEY is
   unset for them); `publish` and `publish_pseudonymous` then publish the production build's
   file again (`make publish`, a child process) into their own folders, without and with a
   random SERVING_CUSTOMER_KEY (docs/privacy.md).
3. References (scripts/bench_references.py), each a child process:
   `same_work`: scripts/same_work_reference.sql in one DuckDB connection (the project's parse,
   cleaning rules and reasons, exact duplicates, the quarantine table, distinct products, RFM,
   scores and named segments), then the package's own model selection and segment fit;
   tests/pytest/test_bench.py checks it equals the pipeline's marts. `bare`: one RFM query
   (guests, Quantity and UnitPrice <= 0 dropped) + log1p, StandardScaler, KMeans(4). `pandas`:
   the notebook (the same cleaning, `groupby().agg` with lambdas, `qcut` scores, the same
   KMeans); a watchdog kills it above `--pandas-memory-cap-gb`. DuckDB threads and
   memory_limit are the dbt profile's (`DUCKDB_THREADS`, `DUCKDB_MEMORY_LIMIT`).

Measurement: seconds are the child's wall time (interpreter start-up and imports included, as
a user waits for them); peak RSS is the larger of the child's `ru_maxrss` (the largest single
process of its tree) and the peak of the summed resident memory of its live process tree,
sampled from /proc every 0.2 s. GB means 10^9 bytes. The input is read once before the runs so
that each starts with it in the page cache. Runs are sequential; other load skews them, so the
load average before each run is kept in the JSON.

Output: a table per size and input (each run with seconds, peak RSS and the ratios to pandas
and to the same-work reference), issue 16's targets as PASS/FAIL/NOT RUN lines with their
figures, and everything as JSON (`--json`, default `<cache-dir>/results.json`, rewritten after
each table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import secrets
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

from bench_references import (
    input_shape,
    reference_duckdb,
    reference_pandas,
    reference_same_work,
    same_work_differences,
    sql_literal,
)

from customer_segmentation.memory import duckdb_memory_limit
from customer_segmentation.pseudonyms import KEY_ENV

PROJECT_DIR = Path(__file__).resolve().parents[1]
GENERATOR_SOURCE = PROJECT_DIR / "customer_segmentation" / "generate.py"
PROFILES = PROJECT_DIR / "profiles.yml"
GB = 1_000_000_000
# The runs of each size and input, in the order they run (`--only` picks some).
DBT_RUNS = {
    # what `make build` runs (then it publishes): models, seeds and data tests
    "production": ["build", "--exclude-resource-type", "unit_test"],
    # what `make test` builds: unit tests too
    "full": ["build"],
    # issue 16's first target: the path from the raw lines to the segments, with its data tests
    "path": [
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--select",
        "+customer_segments",
        "quarantined_transactions",
        "--indirect-selection",
        "cautious",
    ],
}
# The production build's marts published again (`make publish`, into the run's own folder):
# with the customer ids, and with pseudonyms (a random SERVING_CUSTOMER_KEY, docs/privacy.md).
PUBLISH_RUNS = {"publish": False, "publish_pseudonymous": True}
# The refresh sequence (issue 28), in its own build file, on the input cut into one Parquet
# file per calendar month (`ensure_monthly`): a full build of every month but the last, then
# the last month added without its last day ("one new month"), then its file written again
# with that day ("the last month grew by a day"); each refresh beside the full build.
REFRESH_STEPS = {
    "full": "full build: every month but the last",
    "new_month": "refresh after one new month",
    "grew_a_day": "refresh after the last month grew by a day",
}
REFERENCES = ("same_work", "bare", "pandas")
RUNS = (*DBT_RUNS, *PUBLISH_RUNS, "refresh", *REFERENCES)
INPUT_KINDS = ("generated", "repeated")
# The UCI "Online Retail" export (541,909 lines), which the bench inputs should resemble.
UCI_SHAPE = {
    "lines": 541_909,
    "customers": 4_372,
    "stock_codes": 4_070,
    "invoices": 25_900,
}
NAME_WIDTH = 52  # first column of the table
SHOWN_MODELS = 15  # the production build's slowest models, one line each (all in the JSON)
SAMPLE_SECONDS = 0.2
RESCAN_EVERY = 5  # ticks between two scans of /proc for new descendants
# The targets (issue 27).
TARGET_TIME_ROWS = 10_000_000
TARGET_PATH_RATIO = 1.2  # path to the segments / pandas, at most
TARGET_PATH_SAME_WORK_RATIO = 1.5  # path to the segments / same-work reference, at most
TARGET_SCALE_ROWS = 100_000_000
TARGET_SCALE_PEAK_GB = 4.0  # with DUCKDB_MEMORY_LIMIT=2GB, the small-laptop setting
TARGET_SCALE_PEAK_LIMIT = "2GB"
TARGET_SCALE_TIME_RATIO = 5.0  # production build / same-work reference, at most
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
        "memory_limit": duckdb_memory_limit(),
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


def _cached(path: Path, wanted: dict) -> dict | None:
    """The meta of a cached input when it matches `wanted` and its size, else None."""
    meta_path = path.with_name(path.name + ".meta.json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    same = all(meta.get(k) == v for k, v in wanted.items())
    return meta if same and meta.get("bytes") == path.stat().st_size else None


def _save_meta(path: Path, meta: dict) -> dict:
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def ensure_generated(rows: int, seed: int, fmt: str, cache_dir: Path) -> dict:
    """The generated input for (rows, seed, format), generated unless a matching one is cached."""
    inputs = cache_dir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    path = inputs / f"online_retail_{rows}_seed{seed}.{fmt}"
    wanted = {
        "kind": "generated",
        "rows": rows,
        "seed": seed,
        "format": fmt,
        "generator_sha256": file_sha256(GENERATOR_SOURCE),
    }
    meta = _cached(path, wanted)
    if meta is not None:
        return {**meta, "path": str(path), "cached": True}
    path.unlink(missing_ok=True)
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
    return {**_save_meta(path, meta), "path": str(path), "cached": False}


# The generator's UCI-sized output repeated, each copy with its own invoices and customers:
# invoice numbers (after a letter prefix such as the C of cancellations) and customer ids are
# offset by the copy number times their span in the base; guests stay guests (no CustomerID);
# an invoice number that is not letters + digits gets `-<copy>` appended. The copies follow each
# other in file order and the last one is cut at the line count.
REPEAT_SQL = """
copy (
    with

    base as (
        select
            *,
            regexp_extract(InvoiceNo, '^([A-Za-z]*)([0-9]+)$', ['prefix', 'digits']) as parts,
            file_row_number as base_row
        from read_parquet({base}, file_row_number = true)
    ),

    spans as (
        select
            max(try_cast(parts.digits as bigint)) - min(try_cast(parts.digits as bigint)) + 1
                as invoice_span,
            cast(max(CustomerID) - min(CustomerID) + 1 as bigint) as customer_span
        from base
    ),

    copies as (
        select range as copy_number from range({copies})
    )

    select
        case
            when copies.copy_number = 0 then base.InvoiceNo
            when base.parts.digits != ''
                then base.parts.prefix || cast(
                    cast(base.parts.digits as bigint) + copies.copy_number * spans.invoice_span
                    as varchar
                )
            else base.InvoiceNo || '-' || copies.copy_number
        end as InvoiceNo,
        base.StockCode,
        base.Description,
        base.Quantity,
        base.InvoiceDate,
        base.UnitPrice,
        base.CustomerID + copies.copy_number * spans.customer_span as CustomerID,
        base.Country
    from copies
    cross join base
    cross join spans
    order by copies.copy_number, base.base_row
    limit {rows}
) to {target} (format parquet)
"""


def ensure_repeated(rows: int, seed: int, cache_dir: Path) -> dict:
    """The generator's output at the UCI size (541,909 lines) repeated up to `rows` lines
    (REPEAT_SQL), as Parquet, written unless a matching one is cached."""
    base = ensure_generated(UCI_SHAPE["lines"], seed, "parquet", cache_dir)
    path = cache_dir / "inputs" / f"online_retail_{rows}_seed{seed}_repeated.parquet"
    copies = -(-rows // UCI_SHAPE["lines"])
    wanted = {
        "kind": "repeated",
        "rows": rows,
        "seed": seed,
        "format": "parquet",
        "generator_sha256": base["generator_sha256"],
        "base": Path(base["path"]).name,
        "copies": copies,
        "repeat_sql_sha256": hashlib.sha256(REPEAT_SQL.encode()).hexdigest(),
    }
    meta = _cached(path, wanted)
    if meta is not None:
        return {**meta, "path": str(path), "cached": True}
    import duckdb

    progress(f"[{size_label(rows)}] repeating the UCI-sized input {copies} times ...")
    path.unlink(missing_ok=True)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    started = time.perf_counter()
    settings = duckdb_settings()
    con = duckdb.connect(
        config={
            "threads": int(settings["threads"]),
            "memory_limit": settings["memory_limit"],
            # the sort that keeps the copies in order spills here at 100M lines
            "temp_directory": str(cache_dir / "inputs" / "repeat_tmp"),
        }
    )
    con.execute(
        REPEAT_SQL.format(
            base=sql_literal(base["path"]),
            copies=int(copies),
            rows=int(rows),
            target=sql_literal(str(partial)),
        )
    )
    con.close()
    partial.replace(path)
    meta = {
        **wanted,
        "bytes": path.stat().st_size,
        "generation_seconds": round(time.perf_counter() - started, 3),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return {**_save_meta(path, meta), "path": str(path), "cached": False}


def ensure_input(kind: str, rows: int, seed: int, fmt: str, cache_dir: Path) -> dict:
    """The input of one kind and size, with its shape (counted once, kept in its meta)."""
    if kind == "repeated":
        inp = ensure_repeated(rows, seed, cache_dir)
    else:
        inp = ensure_generated(rows, seed, fmt, cache_dir)
    if "shape" not in inp:
        path = Path(inp.pop("path"))
        cached = inp.pop("cached")
        inp["shape"] = input_shape(path)
        inp = {**_save_meta(path, inp), "path": str(path), "cached": cached}
    return inp


def warm_page_cache(path: Path) -> None:
    """Read the file once so every timed run finds it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


MONTHLY_SQL = """
copy (
    select * exclude (file_row_number)
    from read_parquet({source}, file_row_number = true)
    where {where}
    order by file_row_number
) to {target} (format parquet)
"""


def ensure_monthly(rows: int, seed: int, cache_dir: Path) -> dict:
    """The generated Parquet input cut into one file per calendar month of InvoiceDate
    (`<stem>_monthly/YYYY-MM.parquet`, rows in file order; lines without a date go with the
    first month), plus `last_month_but_its_last_day.parquet` beside them: written unless a
    matching set is cached."""
    import duckdb

    source = Path(ensure_generated(rows, seed, "parquet", cache_dir)["path"])
    folder = source.with_name(f"{source.stem}_monthly")
    wanted = {"kind": "monthly", "source_sha256": file_sha256(source)}
    meta_path = folder / "monthly.meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()):
            return {**meta, "folder": str(folder)}
    shutil.rmtree(folder, ignore_errors=True)
    partial = fresh_dir(folder.with_name(folder.name + ".partial"))
    progress(f"[{size_label(rows)}] cutting the input into monthly files ...")
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        months, last_day = con.execute(
            "select list(distinct month order by month), max(InvoiceDate)::date from (select "
            "InvoiceDate, date_trunc('month', InvoiceDate) as month from "
            f"read_parquet({sql_literal(str(source))}))"
        ).fetchone()
        months = [m for m in months if m is not None]
        src = sql_literal(str(source))
        for i, month in enumerate(months):
            # lines without a date go with the first month
            after = "InvoiceDate is null" if i == 0 else f"InvoiceDate >= timestamp '{month}'"
            before = f"InvoiceDate < timestamp '{months[i + 1]}'" if i + 1 < len(months) else ""
            where = " and ".join(filter(None, [after, before])) if i else f"({after} or {before})"
            if len(months) == 1:
                where = "true"
            target = sql_literal(str(partial / f"{month:%Y-%m}.parquet"))
            con.execute(MONTHLY_SQL.format(source=src, where=where, target=target))
        last = sql_literal(str(partial / f"{months[-1]:%Y-%m}.parquet"))
        held = sql_literal(str(partial / "last_month_but_its_last_day.parquet"))
        con.execute(
            f"copy (select * from read_parquet({last}) where InvoiceDate < date '{last_day}') "
            f"to {held} (format parquet)"
        )
    finally:
        con.close()
    meta = {
        **wanted,
        "months": [f"{m:%Y-%m}" for m in months],
        "last_day": str(last_day),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (partial / "monthly.meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    partial.rename(folder)
    return {**meta, "folder": str(folder)}


# --------------------------------------------------------------------------- dbt


def dbt_command(dbt_args: list[str], run_dir: Path, input_path: Path) -> list[str]:
    return [
        venv_tool("dbt"),
        *dbt_args,
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
    """Everything dbt writes lands in `run_dir`; DuckDB settings come from the caller's env.
    Without SERVING_CUSTOMER_KEY: the builds publish the ids whatever the caller has set."""
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DUCKDB_PATH": str(run_dir / "build.duckdb"),
        "SERVING_DUCKDB_PATH": str(run_dir / "serving.duckdb"),
        "DUCKDB_TEMP_DIRECTORY": str(run_dir / "duckdb_tmp"),
    }
    env.pop(KEY_ENV, None)
    return env


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def time_dbt_parse(run_dir: Path, input_path: Path) -> dict:
    """`dbt parse` from scratch (no partial-parse state) into the build's own folder: dbt's
    fixed cost before any node. The build that follows reuses its partial-parse state, as
    every `dbt build` after the first with the same vars does."""
    m = run_measured(
        dbt_command(["parse"], run_dir, input_path),
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


def run_dbt_build(
    run_dir: Path, input_path: Path, dbt_args: list[str], step: str | None = None
) -> dict:
    """One `dbt build` (`dbt_args`) into a fresh DuckDB file, after a timed `dbt parse` from
    scratch in the same folder; with `step`, a build into the folder's DuckDB file as the
    last build left it (no parse: it reuses the last one). Never raises on a failed build."""
    if step is None:
        fresh_dir(run_dir)
        parse = time_dbt_parse(run_dir, input_path)
    else:
        parse = None
    out = run_dir / f"dbt_build{'_' + step if step else ''}.out"
    cmd = dbt_command(dbt_args, run_dir, input_path)
    m = run_measured(cmd, log_path=out, env=dbt_env(run_dir))
    result: dict = {
        "ok": m.returncode == 0,
        "command": "dbt " + " ".join(dbt_args),
        "run_dir": str(run_dir),
        **measured_json(m),
        **({"parse": parse} if parse else {}),
    }
    run_results = run_dir / "target" / "run_results.json"
    if run_results.exists():
        result.update(summarize_run_results(run_results))
        if result.get("elapsed_time") is not None:
            result["startup_seconds"] = round(m.wall_seconds - result["elapsed_time"], 3)
    if m.returncode != 0:
        result["log_tail"] = failure_excerpt(out)
    return result


def run_publish(run_dir: Path, name: str) -> dict:
    """`make publish` of the production build's file (`run_dir/production/`) into
    `run_dir/<name>/`, with a random key when PUBLISH_RUNS says so; never raises."""
    out_dir = fresh_dir(run_dir / name)
    env = {**dbt_env(out_dir), "DUCKDB_PATH": str(run_dir / "production" / "build.duckdb")}
    if PUBLISH_RUNS[name]:
        env[KEY_ENV] = secrets.token_urlsafe(32)
    out = out_dir / "publish.out"
    m = run_measured([sys.executable, "-m", "customer_segmentation.publish"], log_path=out, env=env)
    result: dict = {"ok": m.returncode == 0, **measured_json(m)}
    if m.returncode != 0:
        result["log_tail"] = log_tail(out)
    return result


def run_refresh_sequence(run_dir: Path, monthly: dict) -> dict:
    """REFRESH_STEPS in one build file: production builds on a folder of the monthly files
    (hard links; the last month's file a fresh copy, so it is a new file with a new time)."""
    folder = Path(monthly["folder"])
    fresh_dir(run_dir)
    exports = fresh_dir(run_dir / "exports")
    last = monthly["months"][-1]
    for month in monthly["months"][:-1]:
        try:
            os.link(folder / f"{month}.parquet", exports / f"{month}.parquet")
        except OSError:  # another file system
            shutil.copyfile(folder / f"{month}.parquet", exports / f"{month}.parquet")
    steps: dict = {}
    sources = {
        "new_month": folder / "last_month_but_its_last_day.parquet",
        "grew_a_day": folder / f"{last}.parquet",
    }
    for step in REFRESH_STEPS:
        if step in sources:
            shutil.copyfile(sources[step], exports / f"{last}.parquet.partial")
            (exports / f"{last}.parquet.partial").replace(exports / f"{last}.parquet")
        progress(f"  refresh sequence: {REFRESH_STEPS[step]} ...")
        if step == "full":
            parse = time_dbt_parse(run_dir, exports / "*.parquet")
        result = run_dbt_build(run_dir, exports / "*.parquet", DBT_RUNS["production"], step)
        steps[step] = result
        if not result["ok"]:
            break
    ran = list(steps.values())
    return {
        "ok": len(ran) == len(REFRESH_STEPS) and all(r["ok"] for r in ran),
        "wall_seconds": sum(r["wall_seconds"] for r in ran),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in ran),
        "months": monthly["months"],
        "last_day": monthly["last_day"],
        "parse": parse,
        "steps": steps,
    }


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
    database = run_dir / f"{kind}.duckdb"
    database.unlink(missing_ok=True)
    cmd += ["--_database", str(database)]
    out = run_dir / f"reference_{kind}.out"
    # the same-work reference imports the project's package
    python_path = os.pathsep.join(p for p in (str(PROJECT_DIR), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": python_path}
    m = run_measured(cmd, log_path=out, env=env, cap_bytes=cap_bytes)
    result: dict = {"ok": m.returncode == 0 and result_path.exists(), **measured_json(m)}
    if kind != "pandas":
        result["duckdb_settings"] = settings
    if result["ok"]:
        result.update(json.loads(result_path.read_text()))
    elif not m.killed:
        result["log_tail"] = log_tail(out)
    return result


def reference_main(args: argparse.Namespace) -> int:
    """Child-process entry point: run one reference, write its result as JSON."""
    kind, path = args._run_reference
    if kind == "pandas":
        result = reference_pandas(Path(path))
    elif kind == "bare":
        result = reference_duckdb(Path(path), args._threads, args._memory_limit, args._temp_dir)
    elif kind == "same_work":
        result = reference_same_work(
            Path(path), args._threads, args._memory_limit, args._temp_dir, args._database
        )
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


RUN_LABELS = {
    "production": "production build (make build: no unit tests)",
    "full": "full build (dbt build, unit tests too)",
    "path": "path to the segments (issue 16's target command)",
    "pandas": "pandas notebook (RFM + KMeans)",
    "bare": "bare DuckDB (1 RFM query + KMeans)",
    "same_work": "same-work DuckDB reference",
    "publish": "publish the production build (make publish)",
    "publish_pseudonymous": "publish it with SERVING_CUSTOMER_KEY (pseudonyms)",
    "refresh": "refresh sequence on monthly files (issue 28)",
}


def format_shape(inp: dict) -> str:
    """The input's shape beside the UCI export's."""
    shape = inp.get("shape") or {}
    if not shape:
        return "  shape: not counted"
    uci = UCI_SHAPE
    return (
        f"  shape: {shape['lines']:,} lines, {shape['customers']:,} customers, "
        f"{shape['stock_codes']:,} stock codes, {shape['invoices']:,} invoices, "
        f"{shape['lines_per_invoice']} lines per invoice, "
        f"{shape['invoices'] / shape['customers']:.2f} invoices per customer (all invoices / "
        f"customers; {shape['invoices_per_customer']} counting only invoices with a customer)\n"
        f"  UCI:   {uci['lines']:,} lines, {uci['customers']:,} customers, "
        f"{uci['stock_codes']:,} stock codes, {uci['invoices']:,} invoices, "
        f"{uci['lines'] / uci['invoices']:.1f} lines per invoice, "
        f"{uci['invoices'] / uci['customers']:.2f} invoices per customer (all invoices / "
        f"customers; guests' invoices included)"
    )


def format_table(size: dict) -> str:
    """One size and input: every run with seconds, peak RSS and the ratios to pandas and to
    the same-work reference; the production build's models, tests and start-up below it."""
    runs = size["runs"]

    def base(name: str) -> tuple[float | None, int | None]:
        run = runs.get(name)
        if run and run.get("ok"):
            return run["wall_seconds"], run["peak_rss_bytes"]
        return None, None

    pandas_s, pandas_rss = base("pandas")
    same_s, same_rss = base("same_work")
    inp = size["input"]
    gen = "cached" if inp["cached"] else "generated"
    title = (
        f"{size['label']} lines, {inp['kind']} input ({inp['format']}, "
        f"{inp['bytes'] / 1e6:.1f} MB; {gen}, generation "
        f"{_seconds(inp.get('generation_seconds'))} s, not compared)"
    )
    head = f"{'':<{NAME_WIDTH}}{'seconds':>9}{'peak GB':>9}"
    head += f"{'t/pandas':>10}{'t/same':>9}{'RSS/pandas':>12}{'RSS/same':>10}"
    lines = [title, format_shape(inp), head, "-" * len(head)]

    def row(name: str, run: dict | None) -> None:
        if run is None:
            lines.append(f"{name:<{NAME_WIDTH}}{'not run':>9}")
            return
        ok = run.get("ok")
        secs, rss = run["wall_seconds"], run["peak_rss_bytes"]
        ratios = (
            f"{_ratio(secs, pandas_s):>10}{_ratio(secs, same_s):>9}"
            f"{_ratio(rss, pandas_rss):>12}{_ratio(rss, same_rss):>10}"
            if ok
            else f"  {_status(run)}"
        )
        lines.append(f"{name:<{NAME_WIDTH}}{_seconds(secs):>9}{_gb(rss):>9}{ratios}")

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

    def dbt_details(run: dict) -> None:
        models = run.get("models", [])  # slowest first
        for model in models[:SHOWN_MODELS]:
            sub(f"model {model['name']}", model["seconds"])
        if len(models) > SHOWN_MODELS:
            rest = models[SHOWN_MODELS:]
            sub(f"{len(rest)} other models", sum(m["seconds"] for m in rest))
        if run.get("seeds", {}).get("count"):
            sub(f"seeds ({run['seeds']['count']})", run["seeds"]["seconds"])
        tests = run.get("tests")
        if tests:
            sub(
                f"tests ({tests['data_tests']} data, {tests['unit_tests']} unit)",
                tests["seconds"],
            )
            for test in tests["slowest"]:
                sub(test["name"], test["seconds"], indent=4)
        for other in run.get("others", []):
            if other["seconds"] >= 0.005:  # hooks; exposures take no time
                sub(f"{other['kind']} {other['name']}", other["seconds"])

    def dbt_startup(run: dict) -> None:
        sub("dbt start-up (wall - elapsed_time)", run.get("startup_seconds"))
        parse = run.get("parse")
        if parse is not None:
            sub("dbt parse from scratch (before the build, not in it)", parse.get("wall_seconds"))

    def refresh_rows(run: dict) -> None:
        """Each step: seconds, peak RSS, and the refreshes' share of the full build's time;
        each refresh's slowest models."""
        full = run["steps"].get("full", {})
        for step, label in REFRESH_STEPS.items():
            result = run["steps"].get(step)
            if result is None:
                lines.append(f"  {label:<{NAME_WIDTH - 2}}{'not run':>9}")
                continue
            share = (
                f"  {result['wall_seconds'] / full['wall_seconds']:.0%} of the full build"
                if step != "full" and result["ok"] and full.get("ok")
                else ""
            )
            status = "" if result["ok"] else f"  {_status(result)}"
            lines.append(
                f"  {label:<{NAME_WIDTH - 2}}{_seconds(result['wall_seconds']):>9}"
                f"{_gb(result['peak_rss_bytes']):>9}{share}{status}"
            )
            for model in result.get("models", [])[:5]:
                sub(f"model {model['name']}", model["seconds"], indent=4)
            if result.get("tests"):
                sub(f"tests ({result['tests']['data_tests']} data)", result["tests"]["seconds"], 4)

    for name in RUNS:
        if name not in runs:
            continue
        run = runs[name]
        if name == "refresh":
            lines.append(
                f"{RUN_LABELS[name]}: {len(run['months'])} months, the last day {run['last_day']}"
            )
            refresh_rows(run)
            continue
        row(RUN_LABELS[name], run)
        if name in DBT_RUNS:
            if name == "production":
                dbt_details(run)
            elif run.get("tests"):
                tests = run["tests"]
                sub(
                    f"{len(run.get('models', []))} models; tests ({tests['data_tests']} data, "
                    f"{tests['unit_tests']} unit)",
                    tests["seconds"],
                )
            dbt_startup(run)
            if not run.get("ok"):
                if run.get("not_ok"):
                    failing = ", ".join(f"{n['name']} ({n['status']})" for n in run["not_ok"][:10])
                    lines.append(f"dbt build failed; not ok: {failing}")
                lines.append("dbt log (first errors, then tail):\n" + run.get("log_tail", ""))
        else:
            if name in REFERENCES:
                phases(run)
            if not run.get("ok") and run.get("log_tail"):
                lines.append(f"{name} log tail:\n{run['log_tail']}")
    check = size.get("same_work_check")
    if check:
        verdict = "equal" if check["equal"] else "DIFFERENT (rows only in the mart, only in it)"
        lines.append(
            f"same-work reference vs the {check['build']} build's marts: {verdict}"
            + ("" if check["equal"] else f" {check['differences']}")
        )
    agree = references_agree(runs.get("pandas"), runs.get("bare"))
    if agree:
        lines.append(agree)
    return "\n".join(lines)


def check_same_work(runs: dict, run_dir: Path) -> dict | None:
    """After the runs (not timed): do the same-work reference's tables equal the marts of a
    dbt build of this input, row for row? None when no pair of them ran."""
    build = next((n for n in ("path", "production", "full") if _ok(runs.get(n))), None)
    if build is None or not _ok(runs.get("same_work")):
        return None
    differences = same_work_differences(
        run_dir / build / "build.duckdb", run_dir / "same_work.duckdb"
    )
    equal = all(d == [0, 0] for d in differences.values())
    return {"build": build, "equal": equal, "differences": differences}


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
        f"pandas and bare DuckDB {verdict}: {pandas['customers']:,} vs {duck['customers']:,} "
        f"customers, KMeans inertia {pandas['kmeans_inertia']:.3f} vs "
        f"{duck['kmeans_inertia']:.3f}"
    )


def _ok(run: dict | None) -> bool:
    return bool(run and run.get("ok"))


def evaluate_targets(sizes: list[dict]) -> list[dict]:
    """The targets (issue 27), on the sizes and inputs of this run that they name."""
    targets: list[dict] = []

    def add(name: str, result: str, detail: str) -> None:
        targets.append({"target": name, "result": result, "detail": detail})

    def versus(
        name: str, run: dict | None, base: dict | None, base_name: str, limit: float, strict: bool
    ) -> None:
        if not run or not base:
            add(name, "NOT RUN", f"needs this run and {base_name}")
            return
        if not _ok(run):
            add(name, "FAIL", f"the build failed ({_status(run)})")
            return
        secs = run["wall_seconds"]
        if not _ok(base):  # e.g. pandas killed over its memory cap
            add(
                name,
                "PASS" if base_name == "pandas" and base.get("killed") else "NOT RUN",
                f"{_seconds(secs)} s vs {base_name} {_status(base)} after "
                f"{_seconds(base['wall_seconds'])} s",
            )
            return
        ratio = secs / base["wall_seconds"]
        passed = ratio < limit if strict else ratio <= limit
        add(
            name,
            "PASS" if passed else "FAIL",
            f"{_seconds(secs)} s vs {base_name} {_seconds(base['wall_seconds'])} s = {ratio:.2f}x",
        )

    at_10m = [s for s in sizes if s["rows"] == TARGET_TIME_ROWS]
    if not at_10m:
        add(
            f"10M lines: path to the segments <= {TARGET_PATH_RATIO:g}x pandas",
            "NOT RUN",
            "needs 10M",
        )
        add(
            f"10M lines: path to the segments <= {TARGET_PATH_SAME_WORK_RATIO:g}x same-work",
            "NOT RUN",
            "needs 10M",
        )
    for size in at_10m:
        runs, kind = size["runs"], size["input"]["kind"]
        versus(
            f"10M lines, {kind} input: path to the segments <= {TARGET_PATH_RATIO:g}x pandas",
            runs.get("path"),
            runs.get("pandas"),
            "pandas",
            TARGET_PATH_RATIO,
            strict=False,
        )
        versus(
            f"10M lines, {kind} input: path to the segments <= "
            f"{TARGET_PATH_SAME_WORK_RATIO:g}x the same-work reference",
            runs.get("path"),
            runs.get("same_work"),
            "same-work reference",
            TARGET_PATH_SAME_WORK_RATIO,
            strict=False,
        )

    at_100m = [s for s in sizes if s["rows"] == TARGET_SCALE_ROWS]
    name_rss = (
        f"100M lines: production build peak RSS <= {TARGET_SCALE_PEAK_GB:g} GB "
        f"with DUCKDB_MEMORY_LIMIT={TARGET_SCALE_PEAK_LIMIT}"
    )
    name_time = (
        f"100M lines: production build <= {TARGET_SCALE_TIME_RATIO:g}x the same-work reference"
    )
    if not at_100m:
        add(name_time, "NOT RUN", "needs 100M")
        add(name_rss, "NOT RUN", "needs 100M")
    for size in at_100m:
        runs, kind = size["runs"], size["input"]["kind"]
        production = runs.get("production")
        versus(
            f"{name_time} ({kind} input)",
            production,
            runs.get("same_work"),
            "same-work reference",
            TARGET_SCALE_TIME_RATIO,
            strict=False,
        )
        limit = duckdb_memory_limit()
        if not production:
            add(f"{name_rss} ({kind} input)", "NOT RUN", "needs the production build")
        elif limit != TARGET_SCALE_PEAK_LIMIT:
            add(
                f"{name_rss} ({kind} input)",
                "NOT RUN",
                f"the peak target is for DUCKDB_MEMORY_LIMIT={TARGET_SCALE_PEAK_LIMIT} "
                f"(this run: {limit}); peak {production['peak_rss_bytes'] / GB:.2f} GB",
            )
        else:
            peak_gb = production["peak_rss_bytes"] / GB
            passed = _ok(production) and peak_gb <= TARGET_SCALE_PEAK_GB
            detail = f"peak {peak_gb:.2f} GB" + ("" if _ok(production) else ", but it failed")
            add(f"{name_rss} ({kind} input)", "PASS" if passed else "FAIL", detail)
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
        "--only",
        default=",".join(RUNS),
        help=f"runs to do, of {','.join(RUNS)} (default: all)",
    )
    parser.add_argument(
        "--inputs",
        default=",".join(INPUT_KINDS),
        help="input kinds, of generated,repeated (default: both; repeated is always Parquet)",
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
    parser.add_argument("--_database", type=Path, help=argparse.SUPPRESS)
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
        parser.error(f"--only: unknown run(s) {', '.join(unknown)} (choose from {','.join(RUNS)})")
    if set(args.runs) & set(PUBLISH_RUNS) and "production" not in args.runs:
        parser.error("--only: publish and publish_pseudonymous publish the production build")
    args.inputs = [k.strip() for k in args.inputs.split(",") if k.strip()]
    unknown = sorted(set(args.inputs) - set(INPUT_KINDS))
    if unknown or not args.inputs:
        parser.error(f"--inputs: give some of {','.join(INPUT_KINDS)}")
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
            "inputs": args.inputs,
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
    cap = int(args.pandas_memory_cap_gb * GB)
    for rows in args.rows:
        label = size_label(rows)
        for kind in args.inputs:
            inp = ensure_input(kind, rows, args.seed, args.format, args.cache_dir)
            input_path = Path(inp["path"])
            warm_page_cache(input_path)
            size: dict = {"label": label, "rows": rows, "input": inp, "runs": {}}
            run_dir = fresh_dir(args.cache_dir / "runs" / f"{label}-{kind}-{inp['format']}")
            for name in (r for r in RUNS if r in args.runs):
                progress(f"[{label} {kind}] {RUN_LABELS[name]} ...")
                if name in DBT_RUNS:
                    result = run_dbt_build(run_dir / name, input_path, DBT_RUNS[name])
                elif name in PUBLISH_RUNS:
                    result = run_publish(run_dir, name)
                elif name == "refresh":
                    if kind != "generated":
                        progress(f"[{label} {kind}] refresh: generated input only")
                        continue
                    monthly = ensure_monthly(rows, args.seed, args.cache_dir)
                    result = run_refresh_sequence(run_dir / name, monthly)
                else:
                    cap_bytes = cap if name == "pandas" else None
                    result = run_reference(name, input_path, run_dir, cap_bytes)
                size["runs"][name] = result
                progress(f"[{label} {kind}] {name}: {_seconds(result['wall_seconds'])} s")
            size["same_work_check"] = check_same_work(size["runs"], run_dir)
            report["sizes"].append(size)
            tables.append(format_table(size))
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
    print("Targets (issue 27):")
    for t in report["targets"]:
        print(f"  {t['result']:<8} {t['target']}: {t['detail']}")
    print(f"\nJSON: {args.json}  (bench took {report['bench_seconds']} s)")
    # Exit 1 when a dbt build failed (a killed pandas reference is an expected outcome).
    failed = any(
        not run["ok"]
        for s in report["sizes"]
        for name, run in s["runs"].items()
        if name in DBT_RUNS or name == "refresh"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); the running child was killed", file=sys.stderr)
        sys.exit(130)
