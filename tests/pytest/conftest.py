"""Shared fixtures: run the real dbt project on real files in a temporary folder.

Each dbt invocation is a process of its own running the `dbt` CLI of this virtualenv, with its
own DuckDB file, target and log folders, so tests never share state or touch `warehouse/`.
The process is forked from a server that has imported dbt and the libraries of the Python
models (multiprocessing's forkserver), not started afresh: the imports took ~2 s of each of the
suite's ~140 invocations, and ~4 s more of each whole build.
"""

from __future__ import annotations

import atexit
import gc
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLE_CSV = PROJECT_DIR / "data" / "sample" / "online_retail_sample.csv"
DBT = str(Path(sys.executable).with_name("dbt"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


# The test files that take longest (seconds in a run of make test), run first: pytest-xdist
# gives a worker the next test or group when it finishes one (--dist loadgroup, see below), so
# a long file that came last in the alphabet ran alone at the end while the other worker idled.
SLOWEST_FIRST = [
    "test_refresh.py",  # 189
    "test_serving.py",  # 185
    "test_forget.py",  # 155
    "test_ingest.py",  # 149
    "test_orchestration.py",  # 130
    "test_real_size.py",  # 88
    "test_clv.py",  # 87
    "test_clear_errors.py",  # 77
    "test_pseudonyms.py",  # 73
    "test_dates.py",  # 69
    "test_real_inputs.py",  # 69
    "test_few_customers.py",  # 44
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of SLOWEST_FIRST first, in that order; the tests of a file keep theirs. The
    tests of a file that share a module-scoped fixture (a build, mostly) run on one worker
    (an xdist group per file); every other test goes to whichever worker is free."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        scopes = {
            defs[-1].scope
            for defs in (definitions.name2fixturedefs.values() if definitions else ())
            if defs
        }
        if "module" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.path.name))


@dataclass
class DbtResult:
    returncode: int
    output: str
    duckdb_path: Path

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def df(self, sql: str):
        with duckdb.connect(str(self.duckdb_path), read_only=True) as con:
            return con.execute(sql).df()


# Imported once by the fork server (an import that fails is skipped and happens in the child).
PRELOAD = [
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "duckdb",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy.optimize",
    "sklearn.cluster",
    "implicit",
    "pymc_marketing.clv",
]
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(PRELOAD)


def _dbt_main(args: list[str], cwd: str, env: dict, stdout: str, stderr: str) -> None:
    """In the forked process: the `dbt` console script's `cli()` with this environment,
    folder and command line, its output to the two files; it exits with dbt's code."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = ["dbt", *args]
    from dbt.cli.main import cli

    try:
        cli.main(args=args, prog_name="dbt")
    finally:
        # what the interpreter does on exit, which multiprocessing's child skips (os._exit):
        # the exit handlers, and the objects collected, so DuckDB closes (and checkpoints)
        # the build file as it does when the dbt command ends
        atexit._run_exitfuncs()
        gc.collect()
        sys.stdout.flush()
        sys.stderr.flush()


def dbt_process(args: list[str], cwd: Path, env: dict) -> tuple[int, str]:
    """`dbt <args>` in a process of its own (forked from the server): exit code, and its
    standard output followed by its standard error."""
    with tempfile.TemporaryDirectory() as folder:
        outputs = [str(Path(folder) / name) for name in ("stdout", "stderr")]
        process = _FORKS.Process(target=_dbt_main, args=(args, str(cwd), env, *outputs))
        process.start()
        process.join()
        text = "".join(
            Path(p).read_text(errors="replace") if Path(p).exists() else "" for p in outputs
        )
    if not text and process.exitcode:
        text = f"the forked dbt process ended with {process.exitcode} before it ran dbt"
    return process.exitcode, text


def run_dbt(
    workdir: Path,
    args: list[str],
    dbt_vars: dict | None = None,
    duckdb_path: Path | None = None,
    env: dict | None = None,
    project_dir: Path = PROJECT_DIR,
) -> DbtResult:
    """Run `dbt <args>` on the project (or a copy of it) with its own DuckDB file under
    `workdir`; the serving file is `workdir/serving.duckdb` unless `env` says otherwise."""
    workdir.mkdir(parents=True, exist_ok=True)
    duckdb_path = duckdb_path or workdir / "retail.duckdb"
    cmd = [
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
    ]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dbt_vars)]
    full_env = {
        **os.environ,
        "DUCKDB_PATH": str(duckdb_path),
        "DUCKDB_TEMP_DIRECTORY": str(workdir / "duckdb_tmp"),
        "SERVING_DUCKDB_PATH": str(workdir / "serving.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "false",
        **(env or {}),
    }
    returncode, output = dbt_process(cmd, project_dir, full_env)
    return DbtResult(returncode, output, duckdb_path)


#: `dbt build` of the whole project but its unit tests: they check the models' logic on their own
#: fixtures, whatever the input files, so they run once, in the sample build (`sample_build`).
BUILD = ["build", "--exclude-resource-type", "unit_test"]


def build_ok(
    workdir: Path, dbt_vars: dict | None = None, args: list[str] | None = None
) -> DbtResult:
    """`dbt <args>` (BUILD by default) that must succeed; the dbt log is shown when it does
    not."""
    result = run_dbt(workdir, args or BUILD, dbt_vars)
    assert result.returncode == 0, failure_summary(result.output)
    return result


def failure_summary(output: str) -> str:
    """The error blocks of a dbt log (not the long list of skipped nodes)."""
    lines = output.splitlines()
    keep = [i for i, line in enumerate(lines) if "Error" in line or "FAIL" in line]
    picked: list[str] = []
    for i in keep[:20]:
        picked.extend(lines[i : i + 12])
    return "\n".join(picked)[-8000:] or output[-4000:]


#: Set by `make test`: the folder of the `dbt build` it ran just before pytest (the whole
#: project on the bundled sample with default vars, from no build file): its build file and
#: serving file, dbt's target and logs, and its output (build.log).
MADE_BUILD = "SAMPLE_BUILD_DIR"


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory) -> DbtResult:
    """The whole project built once on the bundled sample with default vars, unit tests
    included: under `make test`, a copy of the build it has just made (the same command), else
    a build of its own."""
    workdir = tmp_path_factory.mktemp("sample_build")
    made = os.environ.get(MADE_BUILD)
    if not made:
        return build_ok(workdir, args=["build"])
    made_dir = PROJECT_DIR / made
    output = (made_dir / "build.log").read_text()
    assert "Completed successfully" in output, failure_summary(output)
    for name in ("retail.duckdb", "serving.duckdb"):
        shutil.copyfile(made_dir / name, workdir / name)
    shutil.copytree(made_dir / "target", workdir / "target")
    shutil.copytree(made_dir / "logs", workdir / "logs")
    return DbtResult(0, output, workdir / "retail.duckdb")


@pytest.fixture(scope="module")
def chrome(tmp_path_factory):
    """Headless Debian Chromium under Debian's chromedriver, logging console and network."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        message = "Debian's chromium and chromium-driver are not installed (make test-setup)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # A driver path given to the Service: Selenium Manager (which downloads) is never run.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def remote_requests(driver) -> list[str]:
    """The network addresses (http, ws, ftp) the page asked for since the log was last read
    (the performance log of `chrome`); file: and data: addresses are not network."""
    requests = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.add(message["params"]["request"]["url"])
    return sorted(url for url in requests if re.match(r"(https?|wss?|ftp):", url))
