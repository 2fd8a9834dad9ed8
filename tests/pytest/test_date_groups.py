"""int_customer_rfm_snapshots is written in groups of dates (materialization
table_in_date_groups): any grouping gives the rows of one select over every date."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
from conftest import PROJECT_DIR, run_dbt

NOT_COPIED = (".venv", ".bench", ".git", "warehouse", "target", "logs", "dbt_packages", "report")
# the statement that starts a group, as dbt logs it
GROUP_STARTS = re.compile(r"(?<!re)set variable date_group_first = date")
SNAPSHOTS_YAML = Path("models/intermediate/int_customer_rfm_snapshots.yml")


def test_one_date_per_group_gives_the_same_snapshots(sample_build, tmp_path):
    # a copy of the project whose snapshots take one date per group (every group's rows x
    # bytes_per_row is above a quarter of any memory limit), run on the sample build's file
    project = Path(
        shutil.copytree(
            PROJECT_DIR, tmp_path / "project", ignore=shutil.ignore_patterns(*NOT_COPIED)
        )
    )
    yaml = project / SNAPSHOTS_YAML
    text, changed = re.subn(
        r"bytes_per_row: \d+", "bytes_per_row: 1000000000000000", yaml.read_text()
    )
    assert changed == 1
    yaml.write_text(text)
    build_file = tmp_path / "retail.duckdb"
    shutil.copy(sample_build.duckdb_path, build_file)
    result = run_dbt(
        tmp_path / "run",
        # --full-refresh: a build that changed nothing would keep every snapshot
        ["run", "--select", "int_customer_rfm_snapshots", "--full-refresh"],
        duckdb_path=build_file,
        project_dir=project,
    )
    assert result.returncode == 0, result.output[-3000:]
    log = (tmp_path / "run" / "logs" / "dbt.log").read_text()
    with duckdb.connect(str(build_file), read_only=True) as con:
        dates = con.execute("select count(*) from intermediate.int_rfm_snapshot_dates").fetchone()[
            0
        ]
        assert dates >= 12
        assert len(GROUP_STARTS.findall(log)) == dates
        con.execute(f"attach '{sample_build.duckdb_path}' as whole (read_only)")
        one_select = "whole.intermediate.int_customer_rfm_snapshots"
        grouped = "intermediate.int_customer_rfm_snapshots"
        differing = con.execute(
            f"select (select count(*) from (from {one_select} except all from {grouped})),"
            f" (select count(*) from (from {grouped} except all from {one_select})),"
            f" (select count(*) from {grouped})"
        ).fetchone()
    assert differing[:2] == (0, 0) and differing[2] > 1000, differing


def test_the_sample_build_takes_all_dates_in_one_group(sample_build):
    log = (sample_build.duckdb_path.parent / "logs" / "dbt.log").read_text()
    assert len(GROUP_STARTS.findall(log)) == 1


def test_no_sale_line_no_snapshot(tmp_path):
    """Every line quarantined: no snapshot date, and the snapshots table is empty."""
    lines = tmp_path / "returns_only.csv"
    lines.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,-6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
    )
    dbt_vars = {"transactions_path": str(lines)}
    assert run_dbt(tmp_path, ["seed"], dbt_vars).returncode == 0
    result = run_dbt(tmp_path, ["run", "--select", "+int_customer_rfm_snapshots"], dbt_vars)
    assert result.returncode == 0, result.output[-3000:]
    with duckdb.connect(str(result.duckdb_path), read_only=True) as con:
        assert con.execute(
            "select count(*) from intermediate.int_rfm_snapshot_dates"
        ).fetchone() == (0,)
        assert con.execute(
            "select count(*) from intermediate.int_customer_rfm_snapshots"
        ).fetchone() == (0,)
