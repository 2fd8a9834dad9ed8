"""Failures that name their cause, on the real pipeline: when no customer is left to analyse
(everything quarantined, only guests, as_of_date before the data), a bad environment variable,
a file reached twice, and the recovery after a publish that failed."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import duckdb
import pytest
from conftest import PROJECT_DIR, SAMPLE_CSV, run_dbt
from test_ingest import CLEANING, GOOD, HEADER, MONTH_FIRST, write

# The models up to customer_rfm and its tests (has_customers among them).
TO_CUSTOMERS = ["build", "-s", "+customer_rfm", "--indirect-selection", "cautious"]


def sample_head(tmp_path, rows: int = 2_000, **changes) -> str:
    """The first `rows` lines of the bundled sample, each column in `changes` rewritten by its
    function, as a new CSV; its path."""
    with open(SAMPLE_CSV, encoding="latin-1", newline="") as src:
        reader = csv.DictReader(src)
        lines = [row for _, row in zip(range(rows), reader, strict=False)]
        fields = reader.fieldnames
    out = tmp_path / "export.csv"
    with open(out, "w", encoding="latin-1", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=fields, delimiter=";", lineterminator="\n")
        writer.writeheader()
        for row in lines:
            writer.writerow({k: changes[k](v) if k in changes else v for k, v in row.items()})
    return str(out)


def why_no_customers(tmp_path, dbt_vars: dict) -> str:
    """The has_customers error of a build that must stop there, and nothing after it ran."""
    result = run_dbt(tmp_path / "b", TO_CUSTOMERS, dbt_vars)
    assert result.returncode != 0
    errors = [x for x in result.output.splitlines() if "ERROR" in x and " of " in x]
    assert len(errors) == 1 and "has_customers_customer_rfm" in errors[0], errors
    return next(x for x in result.output.splitlines() if "customer_rfm holds no customer" in x)


# -- 8. no customer left -----------------------------------------------------------------------


def test_every_row_quarantined_says_how_many_and_why(tmp_path):
    path = sample_head(tmp_path, UnitPrice=lambda p: p.replace(".", ","))
    message = why_no_customers(tmp_path, {"transactions_path": path})
    assert "no input line was accepted: all 2,000 rows of 1 file(s) were quarantined" in message
    assert "(invalid_unit_price 2,000)" in message


def test_a_too_strict_var_is_named(tmp_path):
    message = why_no_customers(
        tmp_path, {"transactions_path": sample_head(tmp_path), "min_unit_price": 100000}
    )
    assert "no input line was accepted: all 2,000 rows" in message
    assert "unit_price_at_or_below_minimum" in message
    assert "(var min_unit_price = 100000)" in message


def test_dates_none_can_read_name_the_date_var(tmp_path):
    path = sample_head(tmp_path, InvoiceDate=lambda d: d + " PM")
    message = why_no_customers(tmp_path, {"transactions_path": path})
    assert "invalid_invoice_date 2,000 (var invoice_date_format = auto;" in message


def test_only_guests_names_the_guest_policy(tmp_path):
    path = sample_head(tmp_path, CustomerID=lambda _: "")
    message = why_no_customers(tmp_path, {"transactions_path": path})
    assert "lines were accepted, none with a customer id: var guest_policy = exclude" in message


def test_as_of_date_before_the_first_sale_names_both_dates(tmp_path):
    message = why_no_customers(
        tmp_path, {"transactions_path": sample_head(tmp_path), "as_of_date": "2009-06-30"}
    )
    assert "var as_of_date = 2009-06-30 is not after the first sale to a customer" in message
    assert "(2010-12-01 " in message


# -- 9. environment, files reached twice, publishing again ---------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("DUCKDB_THREADS", "abc", "a whole number from 1 to 9999"),
        ("DBT_THREADS", "0", "a whole number from 1 to 999"),
        ("DUCKDB_MEMORY_LIMIT", "10MB", "a size of at least 256MB"),
        ("DUCKDB_MEMORY_LIMIT", "lots", "a size of at least 256MB"),
    ],
)
def test_a_bad_environment_variable_is_named(tmp_path, variable, value, rule):
    result = run_dbt(tmp_path, ["build"], env={variable: value})
    assert result.returncode != 0
    assert f"{variable} must be {rule}" in result.output and f'not "{value}"' in result.output
    assert "Traceback" not in result.output

    publish = subprocess.run(
        [sys.executable, "-m", "customer_segmentation.publish", "--build", str(SAMPLE_CSV)],
        cwd=PROJECT_DIR,
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        check=False,
    )
    if variable != "DBT_THREADS":
        assert publish.returncode == 1
        assert f"{variable} must be {rule}" in publish.stderr
        assert f'not "{value}"' in publish.stderr


def test_a_file_reached_twice_through_a_link_fails_naming_both_paths(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write(folder / "march.csv", HEADER + "\n".join(GOOD) + "\n")
    (folder / "latest.csv").symlink_to(folder / "march.csv")
    result = run_dbt(
        tmp_path / "b", CLEANING, {"transactions_path": str(folder / "*.csv"), **MONTH_FIRST}
    )
    assert result.returncode != 0
    message = next(x for x in result.output.splitlines() if "reaches the same file twice" in x)
    assert str(folder / "latest.csv") in message and str(folder / "march.csv") in message


def test_make_publish_recovers_after_the_builds_own_publish_failed(tmp_path):
    blocked = tmp_path / "bi"
    blocked.write_text("a file where the serving file's folder should be")  # like a full disk
    serving = blocked / "serving.duckdb"
    env = {"SERVING_DUCKDB_PATH": str(serving)}
    build = run_dbt(tmp_path / "b", ["build", "--exclude-resource-type", "unit_test"], env=env)
    assert build.returncode != 0
    errors = [x for x in build.output.splitlines() if " ERROR " in x and " of " in x]
    assert len(errors) == 1 and "publish_serving_file" in errors[0], errors

    blocked.unlink()
    blocked.mkdir()  # the space is freed
    publish = subprocess.run(
        [sys.executable, "-m", "customer_segmentation.publish"],
        cwd=PROJECT_DIR,
        env={
            **os.environ,
            "DUCKDB_PATH": str(build.duckdb_path),
            "SERVING_DUCKDB_PATH": str(serving),
            "DUCKDB_TEMP_DIRECTORY": str(tmp_path / "tmp"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert publish.returncode == 0, publish.stderr
    assert build.query("select status from meta.dbt_invocations") == [("passed",)]
    with duckdb.connect(str(serving), read_only=True) as con:
        built = con.execute("select build_id from marts.build_info").fetchall()
        lines = con.execute("select count(*) from marts.fct_order_lines").fetchall()
    assert built == build.query("select invocation_id from meta.dbt_invocations")
    assert lines == build.query("select count(*) from marts.fct_order_lines")
