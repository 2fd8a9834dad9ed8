"""The lineage is data lineage, and the declared schedule holds.

- Every ref of a model is read: a SQL model's compiled query names each relation it refs
  outside comments (no `-- depends_on:` hints), and a Python model never throws a ref away.
  The publish node is the one exception: it refs every mart so that it runs last, and it
  does read them (it copies each to the serving file by name).
- The models of schedule.TAKE_TURNS never run their work side by side: the listed models
  are run by dbt in this process on four threads, each one's work timed, and no two of the
  timed intervals may overlap. Each does its work under the turn's lower DuckDB
  memory_limit, and the build's limit is set again after a turn, whatever became of it.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import threading
import time

import duckdb
import pytest
from conftest import PROJECT_DIR

# Nodes that ref without reading, with why: see the module docstring.
REFS_WITHOUT_READING = {"publish_serving_file"}
# Refs read where the SQL is written rather than in it: stg_raw_invoice_lines' select is
# written from stg_input_files' rows when it is compiled (one reader per input file), and it
# unions stg_excel_invoice_lines only when an input is an Excel file.
READ_WHEN_COMPILED = {
    ("stg_raw_invoice_lines", "stg_input_files"),
    ("stg_raw_invoice_lines", "stg_excel_invoice_lines"),
    # the files to take again on a refresh (macro input_files_written_since) and, in its
    # post-hook, the files still held; a full build's SQL takes every line
    ("int_order_line_groups", "int_invoice_line_files"),
}

SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def manifest_of(build) -> dict:
    return json.loads((build.duckdb_path.parent / "target" / "manifest.json").read_text())


def discarded_refs(code: str) -> list[str]:
    """The dbt.ref(...) calls of a Python model whose result is thrown away (a bare
    expression statement, alone or in a tuple)."""
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Expr):
            continue
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        for value in values:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "ref"
            ):
                found.append(ast.unparse(value))
    return found


def test_every_ref_is_read(sample_build):
    manifest = manifest_of(sample_build)
    nodes = manifest["nodes"]
    problems = []
    checked = 0
    for node in nodes.values():
        if node["resource_type"] != "model" or node["name"] in REFS_WITHOUT_READING:
            continue
        if node["language"] == "python":
            problems += [
                f"{node['name']}: {call} is discarded" for call in discarded_refs(node["raw_code"])
            ]
            continue
        query = SQL_COMMENT.sub("", node["compiled_code"])
        for parent_id in node["depends_on"]["nodes"]:
            parent = nodes.get(parent_id)
            if parent is None or parent["resource_type"] not in {"model", "seed"}:
                continue
            if (node["name"], parent["name"]) in READ_WHEN_COMPILED:
                continue
            checked += 1
            if parent["relation_name"] not in query:
                problems.append(f"{node['name']} refs {parent['name']} but does not read it")
    assert checked > 50
    assert not problems, problems


def test_the_check_sees_a_depends_on_hint_and_a_discarded_ref():
    compiled = '-- depends_on: "db"."s"."a"\nselect * /* "db"."s"."c" */ from "db"."s"."b"'
    assert SQL_COMMENT.sub("", compiled).strip() == 'select *  from "db"."s"."b"'
    code = 'def model(dbt, session):\n    dbt.ref("a")\n    return dbt.ref("b")\n'
    assert discarded_refs(code) == ["dbt.ref('a')"]
    assert discarded_refs('def model(dbt, s):\n    (dbt.ref("a"), dbt.ref("b"))\n') == [
        "dbt.ref('a')",
        "dbt.ref('b')",
    ]


# The package function doing each listed model's work (the model file calls it).
WORK = {
    "int_product_pairs": ("customer_segmentation.baskets", "product_pairs"),
    "recommendation_evaluation": ("customer_segmentation.recommend", "recommendation_evaluation"),
    "customer_recommendations": ("customer_segmentation.recommend", "customer_recommendations"),
}


def test_the_listed_models_never_run_side_by_side(sample_build, tmp_path, monkeypatch):
    from dbt.cli.main import dbtRunner

    from customer_segmentation import schedule

    assert set(WORK) == set(schedule.TAKE_TURNS), "time the work of every listed model"
    intervals: list[tuple[str, float, float]] = []
    limits: dict[str, str] = {}
    guard = threading.Lock()
    for model, (module_name, function_name) in WORK.items():
        module = importlib.import_module(module_name)
        work = getattr(module, function_name)

        def timed(session, *args, _work=work, _model=model, **kwargs):
            limits[_model] = setting(session, "memory_limit")
            started = time.monotonic()
            # long enough that two models started together would be seen side by side
            time.sleep(1.0)
            result = _work(session, *args, **kwargs)
            with guard:
                intervals.append((_model, started, time.monotonic()))
            return result

        monkeypatch.setattr(module, function_name, timed)
    # the sample build's file, with the listed models run again on four dbt threads
    shutil.copy(sample_build.duckdb_path, tmp_path / "retail.duckdb")
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "retail.duckdb"))
    monkeypatch.setenv("DUCKDB_TEMP_DIRECTORY", str(tmp_path / "duckdb_tmp"))
    monkeypatch.setenv("SERVING_DUCKDB_PATH", str(tmp_path / "serving.duckdb"))
    monkeypatch.setenv("DBT_PARTIAL_PARSE", "false")
    result = dbtRunner().invoke(
        [
            "run",
            "--select",
            *WORK,
            "--threads",
            "4",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ]
    )
    assert result.success, result.exception
    assert sorted(m for m, _, _ in intervals) == sorted(WORK)
    meetings = [
        (a[0], b[0])
        for i, a in enumerate(intervals)
        for b in intervals[i + 1 :]
        if a[1] < b[2] and b[1] < a[2]
    ]
    assert not meetings, f"ran side by side: {meetings}"
    assert limits == dict.fromkeys(WORK, turn_limit())


def setting(con, name: str) -> str:
    return con.execute("select current_setting(?)", [name]).fetchall()[0][0]


def turn_limit() -> str:
    """DuckDB's memory_limit during a turn, as DuckDB shows it."""
    from customer_segmentation import memory, schedule

    share = memory.size_bytes(memory.duckdb_memory_limit()) * schedule.TURN_DUCKDB_SHARE
    with duckdb.connect(config={"memory_limit": f"{int(share) >> 20}MiB"}) as con:
        return setting(con, "memory_limit")


def test_a_turn_lowers_duckdbs_limit_and_sets_the_builds_again(monkeypatch):
    from customer_segmentation import schedule

    monkeypatch.setenv("DUCKDB_MEMORY_LIMIT", "2GB")
    with duckdb.connect(config={"memory_limit": "2GB"}) as con:
        build = setting(con, "memory_limit")
        with schedule.take_turn("int_product_pairs", con):
            assert setting(con, "memory_limit") == turn_limit() != build
        assert setting(con, "memory_limit") == build
        with pytest.raises(RuntimeError, match="the model failed"):
            with schedule.take_turn("customer_recommendations", con):
                raise RuntimeError("the model failed")
        assert setting(con, "memory_limit") == build


def test_a_model_outside_the_list_cannot_take_a_turn():
    from customer_segmentation import schedule

    with pytest.raises(ValueError, match="not in schedule.TAKE_TURNS"):
        with schedule.take_turn("customer_rfm", None):
            pass
