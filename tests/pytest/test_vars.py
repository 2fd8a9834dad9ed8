"""The dbt vars given on the command line: a value that is not a finite number, or a name the
project does not declare, fails the build before any model runs, with a message naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import PROJECT_DIR, failure_summary, run_dbt

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
LINE = "536365,85123A,T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom"
# The cleaning models (where min_unit_price is used) and their own tests.
CLEANING = ["build", "-s", "+fct_order_lines", "--indirect-selection", "cautious"]
# A line dbt prints when it starts a model, a seed or a test ("1 of 9 START sql view model ...").
NODE_STARTED = re.compile(r"\d+ of \d+ START (?!hook)")
UNKNOWN_VARS = re.compile(
    r"Unknown dbt vars? in --vars: (?P<unknown>[^.]*)\. "
    r"Known vars \(dbt_project\.yml\): (?P<known>[^.]*)\."
)


def one_line_file(tmp_path: Path) -> Path:
    path = tmp_path / "lines.csv"
    path.write_text(HEADER + LINE + "\n")
    return path


def declared_vars() -> list[str]:
    """The vars dbt_project.yml declares, in its order."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    return list(project["vars"])


def assert_failed_before_any_node(result, *needles: str) -> None:
    assert result.returncode != 0, "the build should have failed"
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{failure_summary(result.output)}"
    assert not NODE_STARTED.search(result.output), failure_summary(result.output)


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf"])
def test_min_unit_price_that_is_not_a_finite_number_fails_validation(tmp_path, value):
    # YAML, not JSON: JSON has no NaN or infinity (conftest passes dict vars as JSON).
    cli_vars = f"{{transactions_path: {json.dumps(str(one_line_file(tmp_path)))}, "
    cli_vars += f"min_unit_price: {value}}}"
    result = run_dbt(tmp_path, [*CLEANING, "--vars", cli_vars])
    assert_failed_before_any_node(result, "Invalid value for dbt var 'min_unit_price'")


def test_unknown_var_names_fail_the_build_listing_them_and_the_known_ones(tmp_path):
    data = str(one_line_file(tmp_path))
    misspelt = {"excluded_country": ["Unspecified"], "guest_polcy": "per_invoice"}
    result = run_dbt(tmp_path, CLEANING, {"transactions_path": data, **misspelt})
    assert_failed_before_any_node(result)
    message = UNKNOWN_VARS.search(result.output)
    assert message, failure_summary(result.output)
    assert message["unknown"].split(", ") == sorted(misspelt)
    assert message["known"].split(", ") == declared_vars()
    # no relation was written, if the file was opened at all (the build records its own start
    # in schema meta before the vars are checked)
    database = tmp_path / "retail.duckdb"
    if database.exists():
        with duckdb.connect(str(database), read_only=True) as con:
            assert con.execute(
                "select count(*) from duckdb_tables() where schema_name != 'meta'"
            ).fetchall() == [(0,)]


def test_declared_vars_given_on_the_command_line_are_accepted(tmp_path):
    # Every declared var at its default value; a seed runs the on-run-start hook too.
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    result = run_dbt(tmp_path, ["seed", "-s", "segment_personas"], project["vars"])
    assert result.returncode == 0, failure_summary(result.output)
