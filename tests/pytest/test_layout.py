"""The data flows one way: staging -> intermediate -> marts -> serving (the manifest's graph).

A model reads only models of its own layer or earlier ones: no staging or intermediate model
depends on a mart (dbt-project-evaluator's layering rule), and every model sits in a layer.
"""

from __future__ import annotations

import json
import re

from conftest import PROJECT_DIR

LAYERS = ("staging", "intermediate", "marts", "meta")  # meta: the publish node (serving)


def test_no_model_reads_a_later_layer(sample_build):
    manifest = json.loads(
        (sample_build.duckdb_path.parent / "target" / "manifest.json").read_text()
    )
    models = {
        node_id: node
        for node_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
    layer = {node_id: node["config"]["schema"] for node_id, node in models.items()}
    assert set(layer.values()) == set(LAYERS), layer
    backwards = sorted(
        f"{node['name']} ({layer[node_id]}) reads {models[parent]['name']} ({layer[parent]})"
        for node_id, node in models.items()
        for parent in node["depends_on"]["nodes"]
        if parent in models and LAYERS.index(layer[parent]) > LAYERS.index(layer[node_id])
    )
    assert not backwards, backwards
    # the graph has edges to check: intermediate models read staging, marts read intermediate
    edges = {
        (layer[parent], layer[node_id])
        for node_id, node in models.items()
        for parent in node["depends_on"]["nodes"]
        if parent in models
    }
    assert {("staging", "intermediate"), ("intermediate", "marts"), ("marts", "meta")} <= edges


def test_the_readme_diagram_names_every_model():
    """A newcomer finds any model from the README's first picture: every model file's name is
    in it (read from the folders, so a new model cannot be left out)."""
    readme = (PROJECT_DIR / "README.md").read_text()
    diagram = readme.split("```")[1]
    models = sorted(
        path.stem
        for folder in ("models", "python_models")
        for path in (PROJECT_DIR / folder).rglob("*")
        if path.suffix in {".sql", ".py"} and not path.name.startswith("_")
    )
    assert len(models) > 50, models
    missing = [name for name in models if not re.search(rf"\b{name}\b", diagram)]
    assert not missing, f"models missing from the README's diagram: {missing}"
