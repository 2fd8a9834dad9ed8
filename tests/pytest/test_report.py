"""The visual report: one self-contained HTML file, drawn from the serving file, that renders
every chart in a real browser (Debian's headless Chromium, driven by Selenium and Debian's
chromedriver: no browser is downloaded; conftest's `chrome`) with no console error and no
network request.

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
from conftest import PROJECT_DIR, DbtResult, remote_requests

from customer_segmentation.report import CHART_IDS, CHARTS, LABEL_CHARS, write_report

PYTHON = sys.executable

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
    assert {"chart-segment-top-products", "chart-starter-products"} <= set(CHART_IDS)
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


def sections(text: str) -> dict[str, str]:
    """The report's sections, by chart id."""
    found = re.findall(r'<section [^>]*id="section-([^"]+)">(.*?)</section>', text, re.S)
    return dict(found)


def test_report_without_the_product_marts_keeps_the_playbook(served: Path, tmp_path: Path):
    """An older build has no product marts: both product sections name the missing table, and
    the playbook, for which segment_top_products is optional, is drawn without its products."""
    partial = tmp_path / "serving.duckdb"
    shutil.copy(served, partial)
    with duckdb.connect(str(partial)) as con:
        con.execute("drop table marts.segment_top_products")
        con.execute("drop table marts.new_customer_starter_products")
    text = write_report(partial, tmp_path / "report.html").read_text(encoding="utf-8")
    parts = sections(text)
    assert text.count('class="missing"') == 2
    assert (
        "marts.segment_top_products is not in the serving file"
        in parts["chart-segment-top-products"]
    )
    assert (
        "marts.new_customer_starter_products is not in the serving file"
        in parts["chart-starter-products"]
    )
    assert 'id="chart-segment-playbook"' in parts["chart-segment-playbook"]
    assert "Top products" not in parts["chart-segment-playbook"]
    full = sections(write_report(served, tmp_path / "full.html").read_text(encoding="utf-8"))
    assert "Top products" in full["chart-segment-playbook"]


def test_report_is_declared_as_a_dbt_exposure(sample_build: DbtResult):
    manifest = json.loads(
        (sample_build.duckdb_path.parent / "target" / "manifest.json").read_text()
    )
    exposures = [
        e for e in manifest["exposures"].values() if e["name"] == "customer_segments_report"
    ]
    assert len(exposures) == 1
    depends = set(exposures[0]["depends_on"]["nodes"])
    read = {table for chart in CHARTS for table in (*chart.tables, *chart.optional)}
    assert {f"model.customer_segmentation.{table}" for table in read} <= depends


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
    remote = remote_requests(chrome)
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


def shown_label(description: str) -> str:
    """A product description as the report shows it on an axis or in a table cell."""
    text = " ".join(description.split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1].rstrip() + "\u2026"


#: Texts of a chart drawn in the browser, each list top to bottom: the tick labels and bar
#: labels of each subplot (by its class, `xy`, `x2y2`, ...), the subplot titles, and the
#: lines of each table cell (empty for a one-line cell) with the top of its text, which for a
#: cell of several lines sits a few pixels below that of a one-line cell of the same row.
DRAWN_TEXTS = """
const gd = document.getElementById(arguments[0]);
const top = e => e.getBoundingClientRect().top;
const texts = els => [...els].sort((a, b) => top(a) - top(b)).map(e => e.textContent);
const subplots = {};
for (const g of gd.querySelectorAll('g.subplot')) {
  const name = g.getAttribute('class').replace('subplot', '').trim();
  subplots[name] = {
    ticks: texts(g.querySelectorAll('.yaxislayer-above .ytick text')),
    bars: texts(g.querySelectorAll('.bars .point text')),
  };
}
const cells = [...gd.querySelectorAll('.cell-text')].map(e => ({
  lines: [...e.querySelectorAll('tspan.line')].map(t => t.textContent),
  text: e.textContent,
  top: Math.round(top(e)),
}));
return {subplots: subplots, titles: texts(gd.querySelectorAll('.annotation-text')), cells: cells};
"""


def test_report_shows_the_products_of_the_sample_build(chrome, served: Path, report: Path):
    """The product sections, drawn in Chromium, show what the marts of the sample build say:
    segment 1's first product is the one segment_top_products ranks first, with its share and
    lift; the first starter product with its share and comeback rate; the playbook's first RFM
    segment with its first three products."""
    with duckdb.connect(str(served), read_only=True) as con:
        segment_id, name, customers = con.execute(
            "select segment_id, segment_name, customers from marts.segment_profiles "
            "order by segment_id limit 1"
        ).fetchone()
        top = con.execute(
            "select description, share_of_segment_customers, lift "
            "from marts.segment_top_products "
            "where segment_kind = 'kmeans' and segment_id = ? order by rank",
            [segment_id],
        ).fetchall()
        (segments,) = con.execute("select count(*) from marts.segment_profiles").fetchone()
        starter = con.execute(
            "select description, share_of_first_orders, first_orders, "
            "returned_within_90_days, first_orders_observed_90_days "
            "from marts.new_customer_starter_products order by rank limit 1"
        ).fetchone()
        (rfm_segment,) = con.execute(
            "select rfm_segment from marts.rfm_segment_summary "
            "where customers > 0 order by segment_order limit 1"
        ).fetchone()
        rfm_top = [
            description
            for (description,) in con.execute(
                "select description from marts.segment_top_products "
                "where segment_kind = 'rfm' and rfm_segment = ? and rank <= 3 order by rank",
                [rfm_segment],
            ).fetchall()
        ]
    assert len(top) == 10 and len(rfm_top) == 3 and starter[3] is not None

    chrome.get(report.resolve().as_uri())
    products = chrome.execute_script(DRAWN_TEXTS, "chart-segment-top-products")
    first = products["subplots"]["xy"]
    assert f"{segment_id} \u00b7 {name} ({customers:,} customers)" in products["titles"]
    assert first["ticks"] == [shown_label(d) for d, _, _ in top]
    description, share, lift = top[0]
    assert first["bars"][0] == f"{share:.0%} \u00b7 lift {lift:.2f}"
    assert len(products["subplots"]) == segments

    starters = chrome.execute_script(DRAWN_TEXTS, "chart-starter-products")
    description, share, first_orders, returned, observed = starter
    assert starters["subplots"]["xy"]["ticks"][0] == shown_label(description)
    assert starters["subplots"]["xy"]["bars"][0] == f"{share:.1%} ({first_orders:,})"
    assert starters["subplots"]["x2y2"]["bars"][0] == f"{returned:.0%} of {observed:,}"

    playbook = chrome.execute_script(DRAWN_TEXTS, "chart-segment-playbook")
    assert any(c["text"].startswith("Top products") for c in playbook["cells"])
    (row,) = [c["top"] for c in playbook["cells"] if c["text"] == rfm_segment]
    in_row = [c["lines"] for c in playbook["cells"] if abs(c["top"] - row) <= 4]
    assert [shown_label(d) for d in rfm_top] in in_row
