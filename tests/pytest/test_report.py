"""The visual report: one self-contained HTML file, drawn from the serving file, that renders
every chart in a real browser (Debian's headless Chromium, driven by Selenium and Debian's
chromedriver: no browser is downloaded) with no console error and no network request.

Set `REPORT_SCREENSHOT=docs/report.png` to keep the screenshot the browser test takes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, DbtResult
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from customer_segmentation.report import CHART_IDS, CHARTS, write_report

PYTHON = sys.executable
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: What a drawn chart has inside its container, per kind of trace: bars, lines and markers,
#: heatmap images, treemap tiles, table cells, indicator numbers.
DRAWN = ", ".join(
    [
        "g.trace.bars .point path",
        ".scatterlayer .js-line",
        ".scatterlayer .point",
        "g.hm image",
        ".treemaplayer path.surface",
        ".table .cell-text",
        ".indicatorlayer text.number",
    ]
)


def render_cli(serving: Path, output: Path) -> Path:
    """`make report`: the CLI on a given serving file."""
    proc = subprocess.run(
        [PYTHON, "-m", "customer_segmentation.report", "--serving", str(serving)]
        + ["--output", str(output)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return output


@pytest.fixture(scope="module")
def served(sample_build: DbtResult, tmp_path_factory) -> Path:
    """The sample build republished (`make publish`) to a serving file of its own."""
    serving = tmp_path_factory.mktemp("report_serving") / "serving.duckdb"
    proc = subprocess.run(
        [PYTHON, "-m", "customer_segmentation.publish"],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "DUCKDB_PATH": str(sample_build.duckdb_path),
            "SERVING_DUCKDB_PATH": str(serving),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return serving


@pytest.fixture(scope="module")
def report(served: Path, tmp_path_factory) -> Path:
    return render_cli(served, tmp_path_factory.mktemp("report") / "customer_segments.html")


def test_report_is_one_self_contained_file(report: Path):
    text = report.read_text(encoding="utf-8")
    # Nothing is fetched: no external script, style sheet, image or font.
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert not re.search(r"<link[^>]*\shref=", text)
    assert not re.search(r"<img[^>]*\ssrc=\"?https?:", text)
    assert "@import" not in text
    assert text.count('<script type="text/javascript">') == 1, "plotly.js inlined once"
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in text, f"{chart_id} not drawn"
    assert 'class="missing"' not in text


def test_report_is_deterministic(served: Path, report: Path, tmp_path: Path):
    again = render_cli(served, tmp_path / "again.html")
    assert again.read_bytes() == report.read_bytes()


def test_report_names_each_missing_mart_and_draws_the_rest(served: Path, tmp_path: Path):
    """A serving file from an older build lacks some marts: their charts become a message
    naming the table, the other charts are still drawn."""
    partial = tmp_path / "serving.duckdb"
    shutil.copy(served, partial)
    with duckdb.connect(str(partial)) as con:
        con.execute("drop table marts.cohort_retention")
        con.execute("drop table marts.segment_model_selection")
    text = write_report(partial, tmp_path / "report.html").read_text(encoding="utf-8")
    assert text.count('class="missing"') == 2
    assert "marts.cohort_retention is not in the serving file" in text
    assert "marts.segment_model_selection is not in the serving file" in text
    for chart in CHARTS:
        drawn = f'id="{chart.chart_id}"' in text
        lost = {"cohort_retention", "segment_model_selection"} & set(chart.tables)
        assert drawn != bool(lost), chart.chart_id


def test_report_is_declared_as_a_dbt_exposure(sample_build: DbtResult):
    manifest = json.loads(
        (sample_build.duckdb_path.parent / "target" / "manifest.json").read_text()
    )
    exposures = [
        e for e in manifest["exposures"].values() if e["name"] == "customer_segments_report"
    ]
    assert len(exposures) == 1
    depends = set(exposures[0]["depends_on"]["nodes"])
    read = {table for chart in CHARTS for table in chart.tables}
    assert {f"model.customer_segmentation.{table}" for table in read} <= depends


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


def test_report_renders_every_chart_in_chromium(chrome, report: Path, tmp_path: Path):
    chrome.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.__errors = [];"
            "window.addEventListener('error', e => window.__errors.push(String(e.message)));"
            "window.addEventListener('unhandledrejection', e => "
            "window.__errors.push(String(e.reason)));"
        },
    )
    chrome.get(report.resolve().as_uri())
    charts = chrome.execute_script(
        """
        return arguments[0].map(id => {
          const gd = document.getElementById(id);
          if (!gd) return {id: id, found: false};
          const box = gd.getBoundingClientRect();
          return {
            id: id,
            found: true,
            svgs: gd.querySelectorAll('.main-svg').length,
            traces: (gd.data || []).length,
            drawn: gd.querySelectorAll(arguments[1]).length,
            width: box.width,
            height: box.height,
          };
        });
        """,
        list(CHART_IDS),
        DRAWN,
    )
    for chart in charts:
        assert chart["found"], f"{chart['id']}: no container"
        assert chart["svgs"] >= 1, f"{chart['id']}: plotly drew no svg"
        assert chart["traces"] >= 1, f"{chart['id']}: no data"
        assert chart["drawn"] >= 1, f"{chart['id']}: no bar, line, cell or tile drawn"
        assert chart["width"] > 200 and chart["height"] > 150, chart
    assert chrome.execute_script("return document.querySelectorAll('.missing').length") == 0

    errors = chrome.execute_script("return window.__errors")
    console = [e for e in chrome.get_log("browser") if e["level"] in {"SEVERE", "ERROR"}]
    assert not errors and not console, f"console errors: {errors} {console}"
    requests = set()
    for entry in chrome.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.add(message["params"]["request"]["url"])
    remote = sorted(u for u in requests if re.match(r"(https?|wss?|ftp):", u))
    assert not remote, f"the report fetched from the network: {remote[:5]}"

    height = chrome.execute_script("return document.documentElement.scrollHeight")
    shot = chrome.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1400, "height": height, "scale": 0.6},
        },
    )
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    (tmp_path / "report.png").write_bytes(png)
    if os.environ.get("REPORT_SCREENSHOT"):
        Path(os.environ["REPORT_SCREENSHOT"]).write_bytes(png)
