"""Every model of the marts and intermediate layers has a primary-key test (dbt-project-evaluator's
rule, read from the manifest so that a new model cannot be left out): `unique` on a column that
is not null (a `not_null` test, `not_null_columns`, or a not-null constraint of an enforced
contract), or `unique_combination` on its key columns. A key test that looks at part of the
rows (a `where` slice, `first_rows`, `written_by`) says why in its description.
"""

from __future__ import annotations

import json
from collections import defaultdict

from conftest import PROJECT_DIR, DbtResult

LAYERS = ("marts", "intermediate")


def key_tests(manifest: dict) -> dict[str, list[dict]]:
    """The primary-key tests of each model of LAYERS (an empty list: the model has none)."""
    models = {
        node_id: node
        for node_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"]["schema"] in LAYERS
    }
    tests = defaultdict(list)
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("test_metadata"):
            tests[node["attached_node"]].append(node)
    found = {}
    for node_id, model in models.items():
        not_null = set()
        for test in tests[node_id]:
            if test["test_metadata"]["name"] == "not_null":
                not_null.add(test["column_name"])
            if test["test_metadata"]["name"] == "not_null_columns":
                not_null.update(test["test_metadata"]["kwargs"]["columns"])
        if model["config"].get("contract", {}).get("enforced"):
            not_null.update(
                name
                for name, column in model["columns"].items()
                if {c["type"] for c in column.get("constraints", [])} & {"not_null", "primary_key"}
            )
        found[model["name"]] = [
            test
            for test in tests[node_id]
            if test["config"]["severity"].lower() == "error"
            and (
                test["test_metadata"]["name"] == "unique_combination"
                or (test["test_metadata"]["name"] == "unique" and test["column_name"] in not_null)
            )
        ]
    return found


def test_every_mart_and_intermediate_model_has_a_primary_key_test(sample_build: DbtResult):
    manifest = json.loads(
        (sample_build.duckdb_path.parent / "target" / "manifest.json").read_text()
    )
    found = key_tests(manifest)
    # every model file of the two layers, SQL and Python, is looked at
    files = {
        path.stem
        for folder in ("models", "python_models")
        for layer in LAYERS
        for path in (PROJECT_DIR / folder / layer).glob("*")
        if path.suffix in {".sql", ".py"}
    }
    assert len(files) > 50
    assert set(found) == files
    missing = sorted(name for name, tests in found.items() if not tests)
    assert not missing, f"models without a primary-key test: {missing}"
    partial = [
        test
        for tests in found.values()
        for test in tests
        if test["config"].get("where")
        or {"first_rows", "written_by"} & set(test["test_metadata"]["kwargs"])
    ]
    assert len(partial) >= 7
    unexplained = sorted(test["name"] for test in partial if len(test["description"]) < 40)
    assert not unexplained, f"key tests on part of the rows without a reason: {unexplained}"
