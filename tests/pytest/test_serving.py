"""The serving file: atomic publishing under concurrent readers and crashes, the safe read-only
connection, a Superset-style SQLAlchemy connection, and descriptions inside the database.

Builds run through the real dbt CLI (conftest `run_dbt`); publishing runs as a subprocess
(`python -m customer_segmentation.publish`), exactly as `make build` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from conftest import DBT, PROJECT_DIR, DbtResult, run_dbt

from customer_segmentation.generate import generate
from customer_segmentation.publish import BUILD_INFO_TABLE
from customer_segmentation.serving import connect_readonly, sqlalchemy_url

PYTHON = sys.executable
NOT_COPIED = (".venv", ".git", "target", "logs", "warehouse", ".bench", "report", "__pycache__")


# -- helpers ---------------------------------------------------------------------------------


def publish_cli(
    build: Path, serving: Path, target: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`make publish` for one build: the CLI, with the build and serving files in the env."""
    proc = subprocess.run(
        [PYTHON, "-m", "customer_segmentation.publish", "--target-path", str(target)],
        cwd=PROJECT_DIR,
        env={**os.environ, "DUCKDB_PATH": str(build), "SERVING_DUCKDB_PATH": str(serving)},
        capture_output=True,
        text=True,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def target_of(build: DbtResult) -> Path:
    """The dbt target folder of a build made by conftest's `run_dbt`."""
    return build.duckdb_path.parent / "target"


def manifest_marts(build: DbtResult) -> list[str]:
    """Names of the relations the build's manifest declares in schema `marts`."""
    manifest = json.loads((target_of(build) / "manifest.json").read_text())
    return sorted(
        node.get("alias") or node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in {"model", "seed", "snapshot"}
        and node["schema"] == "marts"
        and node["config"].get("materialized") != "ephemeral"
    )


def build_id_of(build: DbtResult) -> str:
    return json.loads((target_of(build) / "run_results.json").read_text())["metadata"][
        "invocation_id"
    ]


def mart_counts(build: DbtResult) -> dict[str, int]:
    """Rows per mart in a build file: what a reader of its published copy must see."""
    return {
        name: build.query(f'select count(*) from marts."{name}"')[0][0]
        for name in manifest_marts(build)
    }


def serving_snapshot(serving: Path) -> tuple[str, dict[str, int]]:
    """(build_id, rows per mart) read from the serving file in one transaction."""
    with connect_readonly(serving) as con:
        con.execute("begin transaction")
        build_id = con.execute(f"select build_id from marts.{BUILD_INFO_TABLE}").fetchone()[0]
        names = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' "
            "and table_name <> ? order by 1",
            [BUILD_INFO_TABLE],
        ).fetchall()
        counts = {
            n: con.execute(f'select count(*) from marts."{n}"').fetchone()[0] for (n,) in names
        }
        con.execute("rollback")
    return build_id, counts


def temp_files(serving: Path) -> list[Path]:
    return sorted(serving.parent.glob(f".{serving.name}.publish-*"))


def small_sample(path: Path, seed: int) -> Path:
    """Another data set of the UCI shape, smaller than the bundled sample: a second build whose
    every mart differs in row count from the sample's, so a mix of the two would show."""
    generate(rows=15000, seed=seed, output=str(path))
    return path


def copy_project(tmp_path: Path) -> Path:
    """A copy of the project (no virtualenv, artifacts or warehouse) to add nodes to."""
    ignore = shutil.ignore_patterns(*NOT_COPIED)
    return Path(shutil.copytree(PROJECT_DIR, tmp_path / "project", ignore=ignore))


@pytest.fixture(scope="module")
def served(sample_build: DbtResult, tmp_path_factory) -> Path:
    """The sample build published to a serving file of its own."""
    serving = tmp_path_factory.mktemp("served") / "serving.duckdb"
    publish_cli(sample_build.duckdb_path, serving, target_of(sample_build))
    return serving


# -- publishing ------------------------------------------------------------------------------


def test_publish_copies_every_mart_and_only_marts(sample_build: DbtResult, served: Path):
    build_id, counts = serving_snapshot(served)
    assert build_id == build_id_of(sample_build)
    assert counts == mart_counts(sample_build)
    with connect_readonly(served) as con:
        schemas = {
            s for (s,) in con.execute("select distinct schema_name from duckdb_tables()").fetchall()
        }
        views = con.execute("select count(*) from duckdb_views() where not internal").fetchone()
        # Written in the format every DuckDB since 1.0 reads, for BI tools' older drivers.
        storage = con.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = 'serving'"
        ).fetchone()[0]
        info = con.execute(
            f"select built_at, published_at, published_tables, published_rows "
            f"from marts.{BUILD_INFO_TABLE}"
        ).fetchone()
    assert schemas == {"marts"}
    assert storage == "v1.0.0+"
    assert views[0] == 0
    assert info[2] == ", ".join(sorted(counts)) and info[3] == sum(counts.values())
    assert info[0] <= info[1]


def test_every_mart_carries_its_descriptions(sample_build: DbtResult, served: Path):
    """Table and column descriptions of every mart (SQL and Python models) are DuckDB comments
    in the serving file, where BI tools show them."""
    manifest = json.loads((target_of(sample_build) / "manifest.json").read_text())
    documented = {
        (node.get("alias") or node["name"]): node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    with connect_readonly(served) as con:
        tables = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        )
        columns = {
            (t, c): comment
            for t, c, comment in con.execute(
                "select table_name, column_name, comment from duckdb_columns() "
                "where schema_name = 'marts'"
            ).fetchall()
        }
    for name, comment in tables.items():
        assert comment and comment.strip(), f"marts.{name} has no comment"
    for name, node in documented.items():
        for column, spec in node["columns"].items():
            if spec.get("description"):
                assert columns.get((name, column)), f"marts.{name}.{column} has no comment"


def test_publish_refuses_a_failed_or_partial_or_killed_build(
    sample_build: DbtResult, served: Path, tmp_path: Path
):
    """The gate before publishing: only a complete `dbt build` whose every node passed."""
    before = serving_snapshot(served)
    source = target_of(sample_build)

    def attempt(edit) -> str:
        target = tmp_path / f"target{len(list(tmp_path.iterdir()))}"
        target.mkdir()
        for name in ("run_results.json", "manifest.json"):
            shutil.copy(source / name, target / name)
        run_results = json.loads((target / "run_results.json").read_text())
        manifest = json.loads((target / "manifest.json").read_text())
        edit(run_results, manifest)
        (target / "run_results.json").write_text(json.dumps(run_results))
        (target / "manifest.json").write_text(json.dumps(manifest))
        proc = publish_cli(sample_build.duckdb_path, served, target, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert serving_snapshot(served) == before
        return proc.stderr

    def failed_test(run_results, _manifest):
        test = next(r for r in run_results["results"] if r["unique_id"].startswith("test."))
        test["status"] = "fail"

    def partial(run_results, _manifest):
        run_results["results"] = [
            r for r in run_results["results"] if not r["unique_id"].endswith(".fct_orders")
        ]

    def other_command(run_results, _manifest):
        run_results["args"]["which"] = "run"

    def killed_later(_run_results, manifest):
        manifest["metadata"]["invocation_id"] = "a-build-that-was-killed"

    assert "did not succeed" in attempt(failed_test)
    assert "did not build every mart" in attempt(partial)
    assert "not `build`" in attempt(other_command)
    assert "another dbt invocation" in attempt(killed_later)


def test_a_write_is_recorded_inside_the_relations_transaction(tmp_path: Path):
    """The post-hook records each write in the transaction that writes the relation, for
    every materialization (SQL table and view, Python table, seed): when something fails
    after the record (a later post-hook here), the relation and its record both stay as the
    last successful run left them."""
    project = copy_project(tmp_path)
    scratch = project / "models" / "scratch"
    scratch.mkdir()
    for name, kind in (("scratch_table", "table"), ("scratch_view", "view")):
        (scratch / f"{name}.sql").write_text(
            f"{{{{ config(materialized='{kind}') }}}}\n"
            "select {{ var('scratch_value', 1) }} as x\n"
        )
    (scratch / "scratch_python.py").write_text(
        "import pyarrow as pa\n\n\n"
        "def model(dbt, session):\n"
        "    dbt.config(materialized='table')\n"
        "    value = int(dbt.config.get('scratch_value'))\n"
        "    return pa.table({'x': [value]})\n"
    )
    (project / "seeds" / "scratch_seed.csv").write_text("x\n1\n")
    fail_after = "select case when {{ var('scratch_fail', false) }} then error('injected') end"
    (scratch / "scratch.yml").write_text(
        "version: 2\nmodels:\n"
        + "".join(
            f'  - name: {name}\n    config:\n      post_hook: ["{fail_after}"]\n'
            + (
                "      scratch_value: \"{{ var('scratch_value', 1) }}\"\n"
                if name == "scratch_python"
                else ""
            )
            for name in ("scratch_table", "scratch_view", "scratch_python")
        )
        + f'seeds:\n  - name: scratch_seed\n    config:\n      post_hook: ["{fail_after}"]\n'
    )
    nodes = ["scratch_table", "scratch_view", "scratch_python", "scratch_seed"]
    first = run_dbt(tmp_path / "run", ["build", "--select", *nodes], project_dir=project)
    assert first.returncode == 0, first.output[-3000:]
    manifest = json.loads((tmp_path / "run" / "target" / "manifest.json").read_text())
    for uid, node in manifest["nodes"].items():
        if node["name"] in nodes:
            hooks = [h["sql"] for h in node["config"]["post-hook"]]
            assert "record_relation_write" in hooks[0] and "injected" in hooks[1], uid

    def state() -> dict[str, tuple]:
        writes = dict(
            first.query(
                "select relation_name, invocation_id from meta.relation_writes "
                "where relation_name like 'scratch%'"
            )
        )
        return {
            n: (writes.get(n), first.query(f"select x from {schema}.{n}"))
            for n, schema in zip(nodes, ["main"] * 3 + ["reference"], strict=True)
        }

    first_id = first.query(
        "select invocation_id from meta.dbt_invocations order by started_at desc limit 1"
    )[0][0]
    assert state() == {n: (first_id, [(1,)]) for n in nodes}

    again = run_dbt(
        tmp_path / "run",
        ["build", "--select", *nodes],
        {"scratch_fail": True, "scratch_value": 2},
        duckdb_path=first.duckdb_path,
        project_dir=project,
    )
    assert again.returncode == 1
    assert again.output.count("injected") >= len(nodes), again.output[-3000:]
    assert state() == {n: (first_id, [(1,)]) for n in nodes}
    assert first.query(
        "select status from meta.dbt_invocations order by started_at desc limit 1"
    ) == [("failed",)]


READER = r"""
import json, sys, time
from pathlib import Path
from customer_segmentation.serving import connect_readonly

serving, stop, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def snapshot(con):
    # One transaction: the build id and every mart's row count, as a dashboard refresh reads.
    con.execute("begin transaction")
    try:
        build_id = con.execute("select build_id from marts.build_info").fetchone()[0]
        names = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' "
            "and table_name <> 'build_info' order by 1").fetchall()
        counts = {n: con.execute(f'select count(*) from marts."{n}"').fetchone()[0]
                  for (n,) in names}
    finally:
        con.execute("rollback")
    return {"build_id": build_id, "counts": counts, "t": time.time()}

def emit(record):
    print(json.dumps(record), flush=True)

def guarded(read):
    try:
        emit(read())
    except Exception as exc:
        emit({"error": repr(exc), "t": time.time()})

if mode == "hold":
    # Holds one connection open for the whole build, like a BI tool's pool.
    con = connect_readonly(serving)
    while not stop.exists():
        guarded(lambda: snapshot(con))
        time.sleep(0.02)
    con.close()
    with connect_readonly(serving) as fresh:
        guarded(lambda: {**snapshot(fresh), "after_reconnect": True})
else:
    # Opens a new connection for every query batch: sees each publish as it lands.
    while not stop.exists():
        def read():
            with connect_readonly(serving) as con:
                return snapshot(con)
        guarded(read)
        time.sleep(0.005)
"""


def start_reader(serving: Path, stop: Path, mode: str, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    proc = subprocess.Popen(
        [PYTHON, "-c", READER, str(serving), str(stop), mode],
        cwd=PROJECT_DIR,
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    handle.close()
    return proc


def read_log(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_for_lines(log: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(read_log(log)) < count:
        assert time.monotonic() < deadline, f"reader wrote nothing: {log.read_text()[-2000:]}"
        time.sleep(0.05)


def test_readers_holding_the_serving_file_never_block_a_build_nor_see_a_mix(
    sample_build: DbtResult, tmp_path: Path
):
    """Two reader processes query the serving file in a loop during a full `dbt build` and
    publish of other data: one holds a single connection open, one reconnects for each batch.
    The build and the publish succeed, no reader query fails, and every batch of every reader
    (build id + row count of every mart, read in one transaction) is exactly one build's."""
    serving = tmp_path / "serving" / "serving.duckdb"
    serving.parent.mkdir()
    publish_cli(sample_build.duckdb_path, serving, target_of(sample_build))
    old_id, old_counts = build_id_of(sample_build), mart_counts(sample_build)

    stop = tmp_path / "stop"
    hold_log, reopen_log = tmp_path / "hold.jsonl", tmp_path / "reopen.jsonl"
    readers = [
        start_reader(serving, stop, "hold", hold_log),
        start_reader(serving, stop, "reopen", reopen_log),
    ]
    try:
        wait_for_lines(hold_log, 1)
        wait_for_lines(reopen_log, 1)
        data = small_sample(tmp_path / "other.csv", seed=7)
        new_build = run_dbt(
            tmp_path / "build",
            ["build"],
            {"transactions_path": str(data)},
            env={"SERVING_DUCKDB_PATH": str(serving)},
        )
        assert new_build.returncode == 0, new_build.output[-4000:]
        publish_cli(new_build.duckdb_path, serving, target_of(new_build))
        published_at = time.time()
        # Let both readers run a few more batches after the publish has landed.
        settle = len(read_log(hold_log)) + 5
        wait_for_lines(hold_log, settle)
        wait_for_lines(reopen_log, len(read_log(reopen_log)) + 5)
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=60)

    new_id, new_counts = build_id_of(new_build), mart_counts(new_build)
    assert new_id != old_id
    differing = [t for t in old_counts if old_counts[t] != new_counts.get(t)]
    assert "fct_order_lines" in differing, "the two builds must differ to detect a mix"
    expected = {old_id: old_counts, new_id: new_counts}

    for log in (hold_log, reopen_log):
        records = read_log(log)
        errors = [r for r in records if "error" in r]
        assert not errors, f"{log.name}: reader errors: {errors[:3]}"
        for record in records:
            assert record["build_id"] in expected, record
            assert record["counts"] == expected[record["build_id"]], (
                f"{log.name}: a batch mixes builds: build {record['build_id']} "
                f"with counts {record['counts']}"
            )

    hold = read_log(hold_log)
    during = [r for r in hold if not r.get("after_reconnect")]
    assert {r["build_id"] for r in during} == {old_id}, "the held connection switched builds"
    assert any(r["t"] > published_at for r in during), "no held read after the publish"
    assert hold[-1].get("after_reconnect") and hold[-1]["build_id"] == new_id

    reopen_ids = [r["build_id"] for r in read_log(reopen_log)]
    switch = reopen_ids.index(new_id)
    assert switch > 0 and set(reopen_ids[:switch]) == {old_id}
    assert set(reopen_ids[switch:]) == {new_id}, "a reader went back to the old build"
    assert serving_snapshot(serving) == (new_id, new_counts)


def test_a_build_or_publish_killed_part_way_leaves_the_last_good_serving_file(
    sample_build: DbtResult, tmp_path: Path
):
    """SIGKILL part-way, twice over: a `dbt build && publish` killed while dbt writes models,
    then publishes of a newer build killed while they copy. Each time the serving file opens
    and answers with the previous build; nothing can publish the half-written build file."""
    serving = tmp_path / "serving" / "serving.duckdb"
    serving.parent.mkdir()
    publish_cli(sample_build.duckdb_path, serving, target_of(sample_build))
    good = (build_id_of(sample_build), mart_counts(sample_build))

    # 1. Kill `make build` (dbt build && publish) while dbt writes models. It rebuilds over a
    #    copy of the good build, with the good build's artifacts in its target folder.
    workdir = tmp_path / "build"
    (workdir / "target").mkdir(parents=True)
    shutil.copy(sample_build.duckdb_path, workdir / "retail.duckdb")
    for name in ("run_results.json", "manifest.json"):
        shutil.copy(target_of(sample_build) / name, workdir / "target" / name)
    data = small_sample(tmp_path / "other.csv", seed=11)
    env = {
        **os.environ,
        "DUCKDB_PATH": str(workdir / "retail.duckdb"),
        "SERVING_DUCKDB_PATH": str(serving),
        "DUCKDB_TEMP_DIRECTORY": str(workdir / "duckdb_tmp"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "false",
    }
    dbt_args = (
        f"'{DBT}' build --project-dir '{PROJECT_DIR}' --profiles-dir '{PROJECT_DIR}' "
        f"--target-path '{workdir}/target' --log-path '{workdir}/logs' "
        f"--vars '{json.dumps({'transactions_path': str(data)})}'"
    )
    log = workdir / "make_build.log"
    with log.open("w") as out:
        make_build = subprocess.Popen(
            [
                "bash",
                "-c",
                f"{dbt_args} && '{PYTHON}' -m customer_segmentation.publish "
                f"--target-path '{workdir}/target'",
            ],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while " OK created " not in log.read_text():
        assert make_build.poll() is None, f"build ended before it could be killed: {log}"
        assert time.monotonic() < deadline, "no model was built in time"
        time.sleep(0.05)
    os.killpg(make_build.pid, signal.SIGKILL)
    make_build.wait(timeout=30)
    assert make_build.returncode == -signal.SIGKILL
    assert serving_snapshot(serving) == good
    refused = publish_cli(workdir / "retail.duckdb", serving, workdir / "target", check=False)
    assert refused.returncode == 1 and "another dbt invocation" in refused.stderr
    assert serving_snapshot(serving) == good

    # 2. Build again to the end, then kill publishes of it while they copy the marts.
    newer = run_dbt(workdir, ["build"], {"transactions_path": str(data)})
    assert newer.returncode == 0, newer.output[-4000:]
    mid_copy_kills = 0
    for delay in (0, 0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12):
        left_before = set(temp_files(serving))
        proc = subprocess.Popen(
            [PYTHON, "-m", "customer_segmentation.publish", "--target-path", f"{workdir}/target"],
            cwd=PROJECT_DIR,
            env={**env, "DUCKDB_PATH": str(newer.duckdb_path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Wait for this publish's own temporary file: it is copying from then on.
        while proc.poll() is None and not set(temp_files(serving)) - left_before:
            time.sleep(0.0005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.returncode != -signal.SIGKILL or not set(temp_files(serving)) - left_before:
            break  # this publish finished before the kill: later ones would start from it
        mid_copy_kills += 1
        assert serving_snapshot(serving) == good, f"killed {delay}s into the copy"
    assert mid_copy_kills >= 3, "too few kills landed while a publish was copying"

    publish_cli(newer.duckdb_path, serving, workdir / "target")
    assert serving_snapshot(serving) == (build_id_of(newer), mart_counts(newer))
    assert temp_files(serving) == [], "stale temporary files were not cleaned up"


# -- the safe connection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "attach '{tmp}/other.duckdb' as other",
        "attach ':memory:' as scratch",
        "install httpfs",
        "load httpfs",
        "copy (select 1 as x) to '{tmp}/out.csv'",
        "copy marts.fct_orders to '{tmp}/orders.parquet'",
        "set enable_external_access = true",
        "set threads = 1",
        "reset lock_configuration",
        "create table marts.scratch as select 1 as x",
    ],
)
def test_safe_connection_refuses(served: Path, tmp_path: Path, sql: str):
    with connect_readonly(served) as con:
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(tmp=tmp_path))
        # The connection still answers after the refusal.
        assert con.execute("select count(*) from marts.fct_orders").fetchone()[0] > 0
    assert list(tmp_path.iterdir()) == [], "a refused statement still wrote a file"


def test_safe_connection_settings_are_in_force(served: Path):
    with connect_readonly(served) as con:
        settings = dict(
            con.execute(
                "select name, value from duckdb_settings() where name in ('access_mode', "
                "'enable_external_access', 'lock_configuration', 'autoload_known_extensions', "
                "'autoinstall_known_extensions')"
            ).fetchall()
        )
    assert settings == {
        "access_mode": "read_only",
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
    }


def test_safe_connection_needs_a_published_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="make build"):
        connect_readonly(tmp_path / "serving.duckdb")
    assert not (tmp_path / "serving.duckdb").exists()


# -- a Superset-style SQLAlchemy connection --------------------------------------------------


def test_superset_style_sqlalchemy_connection_queries_every_mart(
    sample_build: DbtResult, served: Path
):
    """Superset connects with duckdb-engine and the URL `docs/serving.md` gives; through it,
    the inspector lists every mart with its columns and comment, and each mart answers."""
    url = sqlalchemy_url(served)
    assert url.startswith(f"duckdb:///{served.resolve()}?access_mode=read_only")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    expected = mart_counts(sample_build)
    try:
        inspector = sa.inspect(engine)
        # duckdb-engine names schemas `<catalog>.<schema>`; the catalog is the file's stem.
        assert "serving.marts" in inspector.get_schema_names()
        tables = sorted(inspector.get_table_names(schema="marts"))
        assert tables == sorted(inspector.get_table_names(schema="serving.marts"))
        assert tables == sorted([*expected, BUILD_INFO_TABLE])
        with engine.connect() as con:
            for table in tables:
                columns = inspector.get_columns(table, schema="marts")
                assert columns, table
                # What Superset shows as the dataset's and columns' descriptions.
                assert inspector.get_table_comment(table, schema="marts")["text"], table
                assert any(c.get("comment") for c in columns), table
                quoted = ", ".join(f'"{c["name"]}"' for c in columns)
                rows = con.execute(sa.text(f'select {quoted} from marts."{table}" limit 5'))
                assert len(rows.fetchall()) == min(5, expected.get(table, 1))
                count = con.execute(sa.text(f'select count(*) from marts."{table}"')).scalar()
                assert count == expected.get(table, 1), table
            with pytest.raises(sa.exc.DBAPIError, match="disabled by configuration"):
                con.execute(sa.text("select * from read_csv('/etc/passwd')"))
    finally:
        engine.dispose()


# -- dbt docs --------------------------------------------------------------------------------


def test_dbt_docs_generate_works_offline(sample_build: DbtResult, tmp_path: Path):
    """`dbt docs generate` on a built file with no network: a proxy that refuses everything."""
    build_file = tmp_path / "retail.duckdb"
    shutil.copy(sample_build.duckdb_path, build_file)
    offline = {
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    result = run_dbt(tmp_path, ["docs", "generate"], duckdb_path=build_file, env=offline)
    assert result.returncode == 0, result.output[-4000:]
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    marts = {
        node["metadata"]["name"]: node
        for node in catalog["nodes"].values()
        if node["metadata"]["schema"] == "marts"
    }
    assert set(manifest_marts(sample_build)) <= set(marts)
    assert all(node["metadata"].get("comment") for node in marts.values())
    assert (tmp_path / "target" / "index.html").is_file()
