"""The serving file: what may be published (decided from the records the build keeps in the
build file), atomic publishing under concurrent readers and crashes, the safe read-only
connection, a Superset-style SQLAlchemy connection, and descriptions inside the database.

Builds run through the real dbt CLI (conftest `run_dbt`); a `dbt build` publishes itself (its
last node, publish_serving_file); `make publish` runs as a subprocess
(`python -m customer_segmentation.publish`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml
from conftest import BUILD, DBT, PROJECT_DIR, DbtResult, run_dbt

from customer_segmentation import publish
from customer_segmentation.generate import generate
from customer_segmentation.publish import BUILD_INFO_TABLE
from customer_segmentation.serving import connect_readonly, sqlalchemy_url

PYTHON = sys.executable
PUBLISH_NODE = "model.customer_segmentation.publish_serving_file"
NOT_COPIED = (".venv", ".git", "target", "logs", "warehouse", ".bench", "report", "__pycache__")
#: A line where dbt reports on a node (not a hook): `12 of 126 OK created ...`.
NODE_LINE = re.compile(r"\b\d+ of \d+ (?!(START|OK|ERROR) hook)")


# -- helpers ---------------------------------------------------------------------------------


def publish_cli(build: Path, serving: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`make publish` for one build file: the CLI, with the build and serving files in the env."""
    proc = subprocess.run(
        [PYTHON, "-m", "customer_segmentation.publish"],
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


def manifest_of(build: DbtResult) -> dict:
    return json.loads((target_of(build) / "manifest.json").read_text())


def manifest_marts(build: DbtResult) -> list[str]:
    """Names of the relations the build's manifest declares in schema `marts`."""
    return sorted(
        node.get("alias") or node["name"]
        for node in manifest_of(build)["nodes"].values()
        if node["resource_type"] in {"model", "seed", "snapshot"}
        and node["schema"] == "marts"
        and node["config"].get("materialized") != "ephemeral"
    )


def build_id_of(build: DbtResult) -> str:
    """The build's invocation id, from dbt's own run_results.json (not from the records)."""
    return json.loads((target_of(build) / "run_results.json").read_text())["metadata"][
        "invocation_id"
    ]


def mart_counts(build: DbtResult | Path) -> dict[str, int]:
    """Rows per mart in a build file: what a reader of its published copy must see."""
    path = build.duckdb_path if isinstance(build, DbtResult) else build
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' union all "
            "select view_name from duckdb_views() where schema_name = 'marts'"
        ).fetchall()
        return {n: con.execute(f'select count(*) from marts."{n}"').fetchone()[0] for (n,) in names}


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


def copy_build(build: DbtResult, workdir: Path) -> Path:
    """A copy of a build file, under the same name (its views name their catalog), with the
    build's dbt artifacts in `workdir/target`, where `make publish` used to look for them."""
    (workdir / "target").mkdir(parents=True)
    copy = workdir / build.duckdb_path.name
    shutil.copy(build.duckdb_path, copy)
    for name in ("run_results.json", "manifest.json"):
        shutil.copy(target_of(build) / name, workdir / "target" / name)
    return copy


def records(build_file: Path, sql: str) -> list[tuple]:
    """Query the build's own records (schema meta) in a build file."""
    with duckdb.connect(str(build_file), read_only=True) as con:
        return con.execute(sql).fetchall()


def copy_project(tmp_path: Path) -> Path:
    """A copy of the project (no virtualenv, artifacts or warehouse) to add nodes to."""
    ignore = shutil.ignore_patterns(*NOT_COPIED)
    return Path(shutil.copytree(PROJECT_DIR, tmp_path / "project", ignore=ignore))


def serving_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "Serving file " in line]


@pytest.fixture(scope="module")
def served(sample_build: DbtResult, tmp_path_factory) -> Path:
    """The sample build republished by `make publish` to a serving file of its own."""
    serving = tmp_path_factory.mktemp("served") / "serving.duckdb"
    publish_cli(sample_build.duckdb_path, serving)
    return serving


# -- publishing ------------------------------------------------------------------------------


def test_publish_copies_every_mart_and_only_marts(sample_build: DbtResult, served: Path):
    build_id, counts = serving_snapshot(served)
    assert build_id == build_id_of(sample_build)
    assert counts == mart_counts(sample_build)
    assert sorted(counts) == manifest_marts(sample_build)
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
            f"select built_at, published_at, published_tables, published_rows, dbt_vars "
            f"from marts.{BUILD_INFO_TABLE}"
        ).fetchone()
    assert schemas == {"marts"}
    assert storage == "v1.0.0+"
    assert views[0] == 0
    assert info[2] == ", ".join(sorted(counts)) and info[3] == sum(counts.values())
    assert info[0] <= info[1]
    assert info[4] == "{}"


def test_every_model_takes_its_schema_from_its_folder_and_every_mart_is_served(
    sample_build: DbtResult,
):
    """Schemas come once from the folder config in dbt_project.yml: every model lies in a
    configured folder (models/<layer>/ or python_models/<layer>/) and has that folder's schema,
    so no mart, SQL or Python, can end up outside schema marts (a .py left at the top of
    python_models/ would); and every model the manifest puts in schema marts is in the serving
    file the build published."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    folders = {
        name: config
        for name, config in project["models"][project["name"]].items()
        if isinstance(config, dict)
    }
    models = [
        n for n in manifest_of(sample_build)["nodes"].values() if n["resource_type"] == "model"
    ]
    misplaced = {
        node["original_file_path"]: node["schema"]
        for node in models
        if len(node["fqn"]) != 3
        or node["fqn"][1] not in folders
        or node["schema"] != folders[node["fqn"][1]]["+schema"]
    }
    assert not misplaced, f"models outside a configured folder or its config: {misplaced}"
    by_folder = sorted(n.get("alias") or n["name"] for n in models if n["fqn"][1] == "marts")
    assert by_folder == manifest_marts(sample_build)
    _, served = serving_snapshot(sample_build.duckdb_path.parent / "serving.duckdb")
    missing = sorted(set(manifest_marts(sample_build)) - set(served))
    assert not missing, f"marts missing from the serving file: {missing}"


def test_a_plain_dbt_build_publishes_itself(sample_build: DbtResult):
    """Case (c): `dbt build`, with no make and no publish command, leaves the serving file
    (SERVING_DUCKDB_PATH, here the build's own folder) holding that build, and says so last."""
    serving = sample_build.duckdb_path.parent / "serving.duckdb"
    assert serving_snapshot(serving) == (build_id_of(sample_build), mart_counts(sample_build))
    assert serving_lines(sample_build.output)[-1].endswith(
        f"now holds this build ({build_id_of(sample_build)}): "
        f"{len(manifest_marts(sample_build))} marts, "
        f"{sum(mart_counts(sample_build).values())} rows."
    )
    assert sample_build.query(
        "select command, is_published, reason from meta.publish_serving_file"
    ) == [("build", True, "published")]
    assert sample_build.query(
        "select status, is_full_selection from meta.dbt_invocations where invocation_id = ?",
        [build_id_of(sample_build)],
    ) == [("passed", True)]


def test_the_publish_node_comes_after_every_relation_and_test(sample_build: DbtResult):
    """The publish node refs every mart (a new mart cannot be forgotten), and every relation
    and data test of the project is upstream of it, so dbt runs it last and skips it when any
    of them fails (a test blocks the nodes below all of its parents)."""
    manifest = manifest_of(sample_build)
    node = manifest["nodes"][PUBLISH_NODE]
    marts = {
        uid
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] == "model" and n["schema"] == "marts"
    }
    assert marts and marts <= set(node["depends_on"]["nodes"])
    ancestors, todo = set(), [PUBLISH_NODE]
    while todo:
        for parent in manifest["parent_map"][todo.pop()]:
            if parent not in ancestors:
                ancestors.add(parent)
                todo.append(parent)
    below = {
        uid
        for uid, n in manifest["nodes"].items()
        if n["resource_type"] in {"model", "seed", "snapshot"} and uid != PUBLISH_NODE
    }
    assert below <= ancestors, sorted(below - ancestors)
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    assert tests and all(set(t["depends_on"]["nodes"]) <= ancestors for t in tests)


def test_every_mart_carries_its_descriptions(sample_build: DbtResult, served: Path):
    """Table and column descriptions of every mart (SQL and Python models) are DuckDB comments
    in the serving file, where BI tools show them."""
    documented = {
        (node.get("alias") or node["name"]): node
        for node in manifest_of(sample_build)["nodes"].values()
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


def test_publish_refuses_what_the_records_do_not_vouch_for(
    sample_build: DbtResult, served: Path, tmp_path: Path
):
    """`make publish` decides from the records in the build file: no complete passing build,
    a relation rewritten by another command, a later command killed after writing, or no
    records at all, and it refuses, saying why, with the serving file untouched."""
    before = serving_snapshot(served)
    build_id = build_id_of(sample_build)

    def attempt(*statements: str) -> str:
        build_file = tmp_path / f"case{len(list(tmp_path.iterdir()))}" / "retail.duckdb"
        build_file.parent.mkdir()
        shutil.copy(sample_build.duckdb_path, build_file)
        with duckdb.connect(str(build_file)) as con:
            for sql in statements:
                con.execute(sql.replace("{build}", build_id))
        proc = publish_cli(build_file, served, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert serving_snapshot(served) == before
        return proc.stderr

    later = (
        "insert into meta.dbt_invocations values ('{id}', '{cmd}', now() + interval 1 minute, "
        "null, '{status}', '1.11', '{{}}', [], false)"
    )
    assert "no complete `dbt build` that passed" in attempt(
        "update meta.dbt_invocations set status = 'failed' where invocation_id = '{build}'"
    )
    assert "no complete `dbt build` that passed" in attempt(
        "update meta.dbt_invocations set is_full_selection = false"
    )
    rewritten = attempt(
        later.format(id="a-later-dbt-run", cmd="run", status="passed"),
        "update meta.relation_writes set invocation_id = 'a-later-dbt-run' "
        "where relation_name = 'fct_orders'",
    )
    assert "marts.fct_orders (by a-later-dbt-run (`dbt run`" in rewritten
    killed = attempt(
        later.format(id="a-killed-build", cmd="build", status="running"),
        "insert into meta.relation_writes values ('marts', 'new_mart', 'a-killed-build', now())",
    )
    assert "a-killed-build (`dbt build`" in killed and "recorded as running" in killed
    assert "marts.new_mart" in killed
    assert "no build records" in attempt("drop schema meta cascade")


def test_publish_refuses_a_build_file_a_partial_build_rewrote(
    sample_build: DbtResult, tmp_path: Path
):
    """Case (a): after a full build and its publish, `dbt build --select customer_rfm` with
    other vars rewrites customer_rfm in the build file, its dbt artifacts written elsewhere
    (`--target-path`) or not at all (`--no-write-json`). `make publish` then refuses, naming
    customer_rfm and the build that rewrote it, and the serving file still answers with the
    full build."""
    for case, extra, as_of_date in (
        ("target_path", [], "2011-06-01"),
        ("no_write_json", ["--no-write-json"], "2011-12-20"),
    ):
        workdir = tmp_path / case
        build_file = copy_build(sample_build, workdir)
        serving = workdir / "serving.duckdb"
        publish_cli(build_file, serving)
        first = serving_snapshot(serving)
        assert first == (build_id_of(sample_build), mart_counts(sample_build))

        partial = run_dbt(
            workdir / "elsewhere" if case == "target_path" else workdir,
            ["build", "--select", "customer_rfm", *extra],
            {"as_of_date": as_of_date},
            duckdb_path=build_file,
            env={"SERVING_DUCKDB_PATH": str(serving)},
        )
        # Earlier as_of_date: fewer customers, and the relationship tests from the old
        # segments to customer_rfm fail; later: the same customers, but the tests that hold
        # customer_rfm equal to the history and lifetime summary of the old date fail.
        assert partial.returncode == 1, partial.output[-3000:]
        if case == "no_write_json":
            assert "Failure in test assert_segment_history_matches_current" in partial.output
        assert serving_snapshot(serving) == first

        refused = publish_cli(build_file, serving, check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert serving_snapshot(serving) == first
        rewriter = records(
            build_file,
            "select invocation_id from meta.relation_writes where relation_name = 'customer_rfm'",
        )[0][0]
        assert rewriter != first[0]
        assert "marts.customer_rfm (by " + rewriter in refused.stderr
        assert "still holds build " + first[0] in serving_lines(partial.output)[-1]


def test_publish_copies_the_builds_lines_whatever_became_of_the_input_files(tmp_path: Path):
    """Case (b): the marts hold the lines as the build read them (int_invoice_lines), so a
    publish after an input file grew, changed under the same size and time, or went, still
    copies that build's lines and counts, row for row."""
    data = small_sample(tmp_path / "lines.csv", seed=5)
    build = run_dbt(tmp_path / "build", BUILD, {"transactions_path": str(data)})
    assert build.returncode == 0, build.output[-4000:]
    built = mart_counts(build)
    serving = build.duckdb_path.parent / "serving.duckdb"
    original, stat = data.read_bytes(), os.stat(data)

    lines = original.splitlines(keepends=True)
    with data.open("ab") as handle:
        handle.writelines(lines[1:4])
    assert mart_counts(build) == built
    publish_cli(build.duckdb_path, serving)
    assert serving_snapshot(serving) == (build_id_of(build), built)

    # Same size, same modification time, other bytes; then no file at all.
    data.write_bytes(original.replace(b"United Kingdom", b"United Kingdon", 1))
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    publish_cli(build.duckdb_path, serving)
    data.unlink()
    publish_cli(build.duckdb_path, serving)
    assert serving_snapshot(serving) == (build_id_of(build), built)
    with duckdb.connect(str(serving), read_only=True) as con:
        countries = con.execute(
            "select count(*) filter (where country = 'United Kingdon') from marts.fct_order_lines"
        ).fetchall()
    assert countries == [(0,)]


def test_a_build_with_a_failing_test_leaves_the_serving_file_and_says_which_build_it_holds(
    sample_build: DbtResult, tmp_path: Path
):
    """Case (c), failed: a full `dbt build` in which a data test fails skips the publish node;
    the serving file still holds the last good build, and the run's last line says which."""
    project = copy_project(tmp_path)
    (project / "tests" / "data" / "assert_injected_failure.sql").write_text(
        "-- Injected by test_serving: returns a row, so it fails.\n"
        "select * from {{ ref('fct_orders') }} limit 1\n"
    )
    workdir = tmp_path / "build"
    build_file = copy_build(sample_build, workdir)
    serving = workdir / "serving.duckdb"
    shutil.copy(sample_build.duckdb_path.parent / "serving.duckdb", serving)
    good = serving_snapshot(serving)
    assert good[0] == build_id_of(sample_build)

    data = small_sample(tmp_path / "other.csv", seed=3)
    failed = run_dbt(
        workdir,
        BUILD,
        {"transactions_path": str(data)},
        duckdb_path=build_file,
        project_dir=project,
    )
    assert failed.returncode == 1
    assert "FAIL 1 assert_injected_failure" in failed.output
    assert "SKIP relation meta.publish_serving_file" in failed.output
    assert serving_snapshot(serving) == good
    last = serving_lines(failed.output)[-1]
    assert f"still holds build {good[0]} (finished " in last
    assert "publish_serving_file was skipped" in last
    # Nothing dbt reports about a node comes after it.
    lines = failed.output.splitlines()
    assert not any(NODE_LINE.search(line) for line in lines[lines.index(last) + 1 :])


def test_the_publish_node_publishes_only_a_full_dbt_build(sample_build: DbtResult, tmp_path: Path):
    """`dbt run` never publishes (its tests did not run), nor does a `dbt build --select`
    that leaves relations of another build; the node's row says why and the last line says
    which build the serving file still holds."""
    workdir = tmp_path / "build"
    build_file = copy_build(sample_build, workdir)
    serving = workdir / "serving.duckdb"
    shutil.copy(sample_build.duckdb_path.parent / "serving.duckdb", serving)
    good = serving_snapshot(serving)
    for args, reason in (
        (["run", "--select", "publish_serving_file"], "`dbt run` does not publish"),
        (["build", "--select", "publish_serving_file"], "a partial `dbt build`"),
    ):
        result = run_dbt(workdir, args, duckdb_path=build_file)
        assert result.returncode == 0, result.output[-3000:]
        row = result.query("select command, is_published, reason from meta.publish_serving_file")
        assert row[0][:2] == (args[0], False) and row[0][2].startswith(reason), row
        assert serving_snapshot(serving) == good
        assert f"still holds build {good[0]}" in serving_lines(result.output)[-1]
        assert reason in serving_lines(result.output)[-1]


def test_the_node_publishes_while_dbt_holds_a_write_transaction_open(
    sample_build: DbtResult, tmp_path: Path, monkeypatch
):
    """A DuckDB transaction writes to one attached database only. dbt may hold a transaction
    open on the node's connection that has already written to the build file (a pre-hook);
    the node's ATTACH of the new serving file and its copy still work, on a cursor of their
    own, and the open transaction commits afterwards."""
    build_file = copy_build(sample_build, tmp_path / "build")
    serving = tmp_path / "serving.duckdb"
    monkeypatch.setenv("SERVING_DUCKDB_PATH", str(serving))
    monkeypatch.setattr(publish, "_current_invocation_id", lambda: build_id_of(sample_build))
    with duckdb.connect(str(build_file)) as con:
        con.execute("begin transaction")
        con.execute("create table meta.written_by_a_pre_hook as select 1 as x")
        row = publish.publish_in_build(con, "retail")
        con.execute("commit")
        assert con.execute("select x from meta.written_by_a_pre_hook").fetchall() == [(1,)]
    assert row["is_published"] and row["reason"] == "published"
    assert serving_snapshot(serving) == (build_id_of(sample_build), mart_counts(sample_build))


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
            "select {{ env_var('SCRATCH_VALUE', '1') }} as x\n"
        )
    (scratch / "scratch_python.py").write_text(
        "import pyarrow as pa\n\n\n"
        "def model(dbt, session):\n"
        "    dbt.config(materialized='table')\n"
        "    value = int(dbt.config.get('scratch_value'))\n"
        "    return pa.table({'x': [value]})\n"
    )
    (project / "seeds" / "scratch_seed.csv").write_text("x\n1\n")
    # env vars, not dbt vars: --vars may name only the vars dbt_project.yml declares
    fail_after = (
        "select case when {{ env_var('SCRATCH_FAIL', 'false') }} then error('injected') end"
    )
    (scratch / "scratch.yml").write_text(
        "version: 2\nmodels:\n"
        + "".join(
            f'  - name: {name}\n    config:\n      post_hook: ["{fail_after}"]\n'
            + (
                "      scratch_value: \"{{ env_var('SCRATCH_VALUE', '1') }}\"\n"
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
        duckdb_path=first.duckdb_path,
        env={"SCRATCH_FAIL": "true", "SCRATCH_VALUE": "2"},
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
    """Two reader processes query the serving file in a loop during a full `dbt build` of
    other data, which publishes itself to that file: one holds a single connection open, one
    reconnects for each batch. The build and its publish succeed, no reader query fails, and
    every batch of every reader (build id + row count of every mart, read in one transaction)
    is exactly one build's."""
    serving = tmp_path / "serving" / "serving.duckdb"
    serving.parent.mkdir()
    publish_cli(sample_build.duckdb_path, serving)
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
            BUILD,
            {"transactions_path": str(data)},
            env={"SERVING_DUCKDB_PATH": str(serving)},
        )
        assert new_build.returncode == 0, new_build.output[-4000:]
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
    """SIGKILL part-way, twice over. Case (a'): `make build` (a `dbt build` that would publish
    at its end, its artifacts written elsewhere) killed after it has rewritten some relations:
    the serving file still answers with the previous build, and `make publish` refuses the
    half-written build file, naming the relations and the killed build. Then publishes of a
    newer build killed while they copy: each time the serving file answers with the previous
    build; a last publish lands the newer one and removes the leftovers."""
    workdir = tmp_path / "build"
    build_file = copy_build(sample_build, workdir)
    serving = tmp_path / "serving" / "serving.duckdb"
    serving.parent.mkdir()
    publish_cli(build_file, serving)
    good = (build_id_of(sample_build), mart_counts(sample_build))
    assert serving_snapshot(serving) == good

    # 1. Kill `make build` while dbt writes models, over a copy of the good build.
    data = small_sample(tmp_path / "other.csv", seed=11)
    env = {
        **os.environ,
        "DUCKDB_PATH": str(build_file),
        "SERVING_DUCKDB_PATH": str(serving),
        "DUCKDB_TEMP_DIRECTORY": str(workdir / "duckdb_tmp"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "false",
    }
    log = workdir / "make_build.log"
    with log.open("w") as out:
        make_build = subprocess.Popen(
            [DBT, "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
            + ["--target-path", str(workdir / "elsewhere"), "--log-path", str(workdir / "logs")]
            + ["--vars", json.dumps({"transactions_path": str(data)})],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while log.read_text().count(" OK created ") < 2:
        assert make_build.poll() is None, f"build ended before it could be killed: {log}"
        assert time.monotonic() < deadline, "no model was built in time"
        time.sleep(0.05)
    os.killpg(make_build.pid, signal.SIGKILL)
    make_build.wait(timeout=30)
    assert make_build.returncode == -signal.SIGKILL
    assert serving_snapshot(serving) == good
    refused = publish_cli(build_file, serving, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    killed = records(
        build_file, "select invocation_id from meta.dbt_invocations where status = 'running'"
    )
    assert len(killed) == 1
    rewritten = records(
        build_file,
        "select schema_name || '.' || relation_name from meta.relation_writes "
        f"where invocation_id = '{killed[0][0]}' order by 1",
    )
    assert rewritten, "the killed build had rewritten nothing"
    assert f"(by {killed[0][0]} (`dbt build`" in refused.stderr
    assert "recorded as running" in refused.stderr
    assert all(name in refused.stderr for (name,) in rewritten[:8])
    assert serving_snapshot(serving) == good

    # 2. Build again to the end (publishing to its own serving file), then kill publishes of
    #    it to this one while they copy the marts.
    newer = run_dbt(workdir, BUILD, {"transactions_path": str(data)}, duckdb_path=build_file)
    assert newer.returncode == 0, newer.output[-4000:]
    mid_copy_kills = 0
    for delay in (0, 0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12):
        left_before = set(temp_files(serving))
        proc = subprocess.Popen(
            [PYTHON, "-m", "customer_segmentation.publish"],
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

    publish_cli(newer.duckdb_path, serving)
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
