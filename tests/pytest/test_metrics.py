"""The semantic layer (models/semantic/, docs/metrics.md): MetricFlow's `mf` CLI validates it
against the sample build, and its metrics give, month for month, the numbers of
`monthly_kpis`; by segment, the numbers of the lines and orders summed in SQL here.

`mf` reads `target/semantic_manifest.json` under the folder it runs in and connects through
the dbt profile: it runs in a folder holding the project file and the sample build's target.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, DbtResult

from customer_segmentation.serving import connect_readonly

MF = str(Path(sys.executable).with_name("mf"))

#: metric -> the monthly_kpis column it must equal, month for month.
MONTHLY_METRICS = {
    "revenue": "net_revenue",
    "active_customers": "active_customers",
    "new_customers": "new_customers",
    "gross_revenue": "revenue",
    "returns_amount": "returns_amount",
    "items_sold": "items_sold",
    "orders": "orders",
    "returning_customers": "returning_customers",
    "average_order_value": "avg_order_value",
    "return_rate": "return_rate",
    "new_customer_ratio": "new_customer_ratio",
}
COUNTS = {"active_customers", "new_customers", "items_sold", "orders", "returning_customers"}
AMOUNTS = {"revenue", "gross_revenue", "returns_amount"}


@pytest.fixture(scope="module")
def mf_folder(sample_build: DbtResult, tmp_path_factory) -> Path:
    """A folder where `mf` finds the project file and the sample build's target."""
    folder = tmp_path_factory.mktemp("mf")
    (folder / "dbt_project.yml").symlink_to(PROJECT_DIR / "dbt_project.yml")
    (folder / "target").symlink_to(sample_build.duckdb_path.parent / "target")
    return folder


def run_mf(folder: Path, build: DbtResult, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`mf <args>` on the sample build. Its check for a newer version on pypi.org is sent to a
    closed local port, so the test never waits on the network."""
    proc = subprocess.run(
        [MF, *args],
        cwd=folder,
        env={
            **os.environ,
            "DBT_PROFILES_DIR": str(PROJECT_DIR),
            "DUCKDB_PATH": str(build.duckdb_path),
            "DUCKDB_TEMP_DIRECTORY": str(folder / "duckdb_tmp"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "HTTPS_PROXY": "http://127.0.0.1:9",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def number(text: str) -> Decimal | None:
    return Decimal(text) if text != "" else None


def test_metricflow_validates_the_semantic_layer(mf_folder: Path, sample_build: DbtResult):
    """`mf validate-configs`: the semantic manifest, and every semantic model, dimension,
    entity, measure and metric queried on the build file (a column that is not there fails)."""
    proc = run_mf(mf_folder, sample_build, ["validate-configs"])
    out = proc.stdout + proc.stderr
    for step in (
        "semantics of built manifest",
        "semantic models against data warehouse",
        "dimensions against",
        "entities against",
        "measures against",
        "metrics against",
    ):
        assert f"validated {step}" in out or f"validated the {step}" in out, (step, out[-3000:])
    assert out.count("(ERRORS: 0, FUTURE_ERRORS: 0, WARNINGS: 0)") == 6, out[-3000:]


@pytest.mark.parametrize(
    "metrics",
    [["revenue", "active_customers", "new_customers"], list(MONTHLY_METRICS)],
    ids=["revenue_active_and_new_customers", "every_monthly_metric"],
)
def test_monthly_metrics_equal_monthly_kpis(
    metrics: list[str], mf_folder: Path, sample_build: DbtResult
):
    """docs/metrics.md's first query (revenue, active and new customers by month), and every
    KPI of the layer in one query, against monthly_kpis: the same months, months without sales
    as 0, the same numbers (amounts to the cent, counts exactly, ratios to 1e-9)."""
    out = mf_folder / f"monthly_{len(metrics)}.csv"
    run_mf(
        mf_folder,
        sample_build,
        [
            "query",
            "--metrics",
            ",".join(metrics),
            "--group-by",
            "metric_time__month",
            "--csv",
            str(out),
            "--quiet",
        ],
    )
    rows = sorted(read_csv(out), key=lambda row: row["metric_time__month"])
    assert set(rows[0]) == {"metric_time__month", *metrics}
    compared = {metric: MONTHLY_METRICS[metric] for metric in metrics}
    columns = ", ".join(compared.values())
    kpis = sample_build.query(f"select month, {columns} from marts.monthly_kpis order by month")
    assert len(kpis) >= 12
    assert [row["metric_time__month"][:10] for row in rows] == [str(k[0]) for k in kpis]
    for row, kpi in zip(rows, kpis, strict=True):
        for (metric, column), expected in zip(compared.items(), kpi[1:], strict=True):
            got = number(row[metric])
            where = f"{metric} vs monthly_kpis.{column} in {kpi[0]}"
            if expected is None:
                assert got is None, where
            elif metric in COUNTS or metric in AMOUNTS:
                assert got == expected, (where, got, expected)
            else:
                assert got is not None and math.isclose(
                    float(got), float(expected), rel_tol=1e-9, abs_tol=5e-5
                ), (where, got, expected)
    # the sample's totals, so that equal tables cannot both be empty
    assert (
        sum(int(row["new_customers"]) for row in rows)
        == sample_build.query(
            "select count(distinct customer_id) from marts.fct_orders "
            "where not is_cancellation and not is_guest"
        )[0][0]
    )


def test_metrics_by_rfm_and_kmeans_segment(mf_folder: Path, sample_build: DbtResult):
    """Revenue, orders and active customers by the customer's RFM segment and KMeans segment
    (joins through the `customer` entity) equal the lines and orders grouped in SQL; guests
    fall under a null segment."""
    out = mf_folder / "segments.csv"
    run_mf(
        mf_folder,
        sample_build,
        [
            "query",
            "--metrics",
            "revenue,orders,active_customers",
            "--group-by",
            "customer__rfm_segment,customer__segment_id",
            "--csv",
            str(out),
            "--quiet",
        ],
    )
    got = {
        (
            row["customer__rfm_segment"] or None,
            int(row["customer__segment_id"]) if row["customer__segment_id"] else None,
        ): (Decimal(row["revenue"]), int(row["orders"]), int(row["active_customers"]))
        for row in read_csv(out)
    }
    expected_rows = sample_build.query(
        """
        with segments as (
            select rfm.customer_id, rfm.rfm_segment, kmeans.segment_id
            from marts.customer_rfm as rfm
            left join marts.customer_segments as kmeans using (customer_id)
        ),
        revenue as (
            select rfm_segment, segment_id, sum(line_amount) as revenue
            from marts.fct_order_lines as lines
            left join segments using (customer_id)
            group by all
        ),
        orders as (
            select
                rfm_segment,
                segment_id,
                count(*) filter (where not is_cancellation) as orders,
                count(distinct customer_id) filter (where not is_cancellation and not is_guest)
                    as active_customers
            from marts.fct_orders as orders
            left join segments using (customer_id)
            group by all
        )
        select
            coalesce(revenue.rfm_segment, orders.rfm_segment),
            coalesce(revenue.segment_id, orders.segment_id),
            revenue,
            orders,
            active_customers
        from revenue
        full join orders
            on revenue.rfm_segment is not distinct from orders.rfm_segment
            and revenue.segment_id is not distinct from orders.segment_id
        """
    )
    expected = {
        (rfm, segment): (revenue, orders or 0, customers or 0)
        for rfm, segment, revenue, orders, customers in expected_rows
    }
    assert len({rfm for rfm, _ in expected if rfm}) >= 5
    assert len({segment for _, segment in expected if segment}) >= 2
    assert got == expected


def test_the_explained_sql_runs_on_the_serving_file(mf_folder: Path, sample_build: DbtResult):
    """docs/metrics.md's recipe for a BI tool: `--explain`, the lines before the SQL and the
    build file's catalog dropped (its `sed`), gives monthly_kpis' numbers in the serving file."""
    doc = (PROJECT_DIR / "docs" / "metrics.md").read_text()
    assert """sed -e '1,/^$/d' -e 's/"retail"\\.//g'""" in doc
    proc = run_mf(
        mf_folder,
        sample_build,
        [
            "query",
            "--metrics",
            "revenue,active_customers,new_customers",
            "--group-by",
            "metric_time__month",
            "--explain",
        ],
    )
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if " SQL (remove --explain" in line)
    assert lines[header + 1] == ""
    sql = "\n".join(lines[header + 2 :]).replace('"retail".', "")
    with connect_readonly(sample_build.duckdb_path.parent / "serving.duckdb") as con:
        rows = sorted(con.execute(sql).fetchall())
        kpis = con.execute(
            "select month, net_revenue, active_customers, new_customers "
            "from marts.monthly_kpis order by month"
        ).fetchall()
    assert [(month.date(), *numbers) for month, *numbers in rows] == kpis
