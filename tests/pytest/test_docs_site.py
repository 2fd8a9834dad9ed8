"""`make docs`: dbt's documentation site as one HTML file (`dbt docs generate --static`), made
on the sample build, holds every model, column and data test, and opens from the file in
Chromium (conftest's `chrome`, no server): a mart's page shows its description and columns,
and its lineage graph draws the mart between its parent and its children.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, DbtResult, remote_requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MART = "monthly_kpis"


@pytest.fixture(scope="module")
def docs_site(sample_build: DbtResult, tmp_path_factory) -> tuple[Path, dict]:
    """`make docs` on the sample build, with its target in a folder of its own; the site and
    the manifest it was made from."""
    target = tmp_path_factory.mktemp("docs") / "target"
    proc = subprocess.run(
        ["make", "--no-print-directory", "docs"],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "DUCKDB_PATH": str(sample_build.duckdb_path),
            "SERVING_DUCKDB_PATH": str(target.parent / "serving.duckdb"),
            "DUCKDB_TEMP_DIRECTORY": str(target.parent / "duckdb_tmp"),
            "DBT_TARGET_PATH": str(target),
            "DBT_LOG_PATH": str(target.parent / "logs"),
            "DBT_PARTIAL_PARSE": "false",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    site = target / "static_index.html"
    assert site.is_file(), sorted(p.name for p in target.iterdir())
    return site, json.loads((target / "manifest.json").read_text())


def test_the_site_is_one_file_with_every_model_column_and_test(docs_site):
    site, manifest = docs_site
    text = site.read_text(encoding="utf-8")
    nodes = [n for n in manifest["nodes"].values() if n["package_name"] == "customer_segmentation"]
    models = [n for n in nodes if n["resource_type"] == "model"]
    tests = [n for n in nodes if n["resource_type"] == "test"]
    assert len(models) > 50 and len(tests) > 150
    for model in models:
        assert f'"{model["unique_id"]}"' in text, model["name"]
        for column in model["columns"]:
            assert f'"{column}"' in text, (model["name"], column)
    missing_tests = [t["name"] for t in tests if f'"{t["unique_id"]}"' not in text]
    assert not missing_tests, missing_tests[:5]
    # the catalog from the build file: column types
    assert '"DECIMAL(38,4)"' in text
    # nothing to fetch: no external script, style sheet or font
    assert not re.search(r"<script[^>]*\ssrc=\"?https?:", text)
    assert not re.search(r"<link[^>]*\shref=\"?https?:", text)


def test_the_site_shows_a_mart_and_its_lineage_in_chromium(chrome, docs_site):
    site, manifest = docs_site
    unique_id = f"model.customer_segmentation.{MART}"
    mart = manifest["nodes"][unique_id]
    parents = {manifest["nodes"][p]["name"] for p in mart["depends_on"]["nodes"]}
    children = {
        manifest["nodes"][c]["name"]
        for c in manifest["child_map"][unique_id]
        if manifest["nodes"].get(c, {}).get("resource_type") == "model"
    }
    assert parents == {"int_order_line_groups"} and "publish_serving_file" in children

    chrome.get(f"{site.resolve().as_uri()}#!/model/{unique_id}")
    wait = WebDriverWait(chrome, 30)
    wait.until(lambda d: MART in d.find_element(By.TAG_NAME, "h1").text)
    body = chrome.find_element(By.TAG_NAME, "body").text
    words = mart["description"].split("`")[0].strip()  # its first words, before any markup
    assert words.startswith("One row per calendar month from the first")
    assert words in " ".join(body.split())
    for column in ("new_customers", "active_customers", "net_revenue"):
        assert column in body

    chrome.find_element(By.CSS_SELECTOR, 'a[title="View Lineage Graph"]').click()
    drawn = """
        const el = document.getElementById('cy');
        const cy = el && el._cyreg && el._cyreg.cy;
        if (!cy || !cy.nodes().length) return null;
        const box = el.getBoundingClientRect();
        return {
            nodes: cy.nodes().filter(n => n.visible()).map(n => n.data('label')),
            edges: cy.edges().filter(e => e.visible()).length,
            canvases: el.querySelectorAll('canvas').length,
            width: box.width,
            height: box.height,
        };
    """
    graph = wait.until(lambda d: d.execute_script(drawn))
    assert {MART, *parents, *children} <= set(graph["nodes"]), graph["nodes"]
    assert graph["edges"] >= len(parents) + len(children)
    assert graph["canvases"] >= 1 and graph["width"] > 200 and graph["height"] > 200, graph

    remote = remote_requests(chrome)
    assert not remote, f"the docs site fetched from the network: {remote[:5]}"
