"""The one spec of the dbt vars (macros/var_spec.sql): what repeats it is held to it, and dbt's
check (the Jinja of macros/validated_var.sql, rendered here without dbt) and the package's
(customer_segmentation/var_spec.py) accept and reject the same values with the same message."""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from types import SimpleNamespace

import pytest
import yaml
from conftest import PROJECT_DIR
from jinja2.sandbox import SandboxedEnvironment

from customer_segmentation import var_spec
from customer_segmentation.var_spec import SPEC

MACROS = PROJECT_DIR / "macros"
REGENERATE = "python -m customer_segmentation.var_spec --markdown > docs/vars.md"


def test_docs_vars_md_is_generated_from_the_spec():
    assert (PROJECT_DIR / "docs" / "vars.md").read_text() == var_spec.markdown(), (
        f"docs/vars.md is stale: run `{REGENERATE}`"
    )


def test_dbt_project_yml_declares_the_spec_vars_with_their_defaults_in_order():
    declared = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert list(declared) == list(SPEC)
    for name, entry in SPEC.items():
        assert declared[name] == entry["default"], name


@pytest.mark.parametrize("name", list(SPEC))
def test_every_default_meets_its_spec(name):
    assert var_spec.problem(name, SPEC[name]["default"]) is None


def test_every_entry_has_a_type_and_help():
    for name, entry in SPEC.items():
        assert {"default", "type", "help"} <= set(entry), name
        assert var_spec.allowed(entry), name


# --------------------------------------------------------------------------- dbt's check


class _Returned(Exception):
    """dbt's `return()`: ends the macro with a value."""

    def __init__(self, value: object):
        self.value = value


class _CompilerError(Exception):
    pass


def _return(value: object) -> None:
    raise _Returned(value)


def _raise_compiler_error(message: str) -> None:
    raise _CompilerError(message)


def _json_safe(value: object) -> object:
    """macros/json_safe.sql in Python (not under test here)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def _call(macro, *args):
    try:
        macro(*args)
    except _Returned as returned:
        return returned.value
    raise AssertionError("the macro did not return()")


_VALUES: dict = {}  # the vars the rendered macros see, set by dbt_message


@functools.cache
def _validated_var():
    """macros/validated_var.sql and var_spec.sql, compiled once, with dbt's context stubbed."""
    env = SandboxedEnvironment(extensions=["jinja2.ext.do"])
    templates = {}
    env.globals.update(
        {
            "return": _return,
            "var": lambda n: _VALUES[n],
            "fromyaml": yaml.safe_load,
            "tojson": json.dumps,
            "json_safe": _json_safe,
            "modules": SimpleNamespace(re=re, datetime=dt),
            "exceptions": SimpleNamespace(raise_compiler_error=_raise_compiler_error),
            "var_spec": lambda: _call(templates["var_spec"].var_spec),
        }
    )
    # after the globals: a template's module copies them when it is made
    for name in ("var_spec", "validated_var"):
        templates[name] = env.from_string((MACROS / f"{name}.sql").read_text()).module
    return templates["validated_var"].validated_var


def dbt_message(name: str, cli_vars: dict) -> str | None:
    """Run validated_var(name) as dbt would with these --vars; its error message or None."""
    _VALUES.clear()
    _VALUES.update({n: e["default"] for n, e in SPEC.items()} | cli_vars)
    try:
        returned = _call(_validated_var(), name)
    except _CompilerError as error:
        return str(error)
    given = _VALUES[name]
    assert returned == (given.isoformat() if isinstance(given, dt.date) else given)
    return None


def python_message(name: str, cli_vars: dict) -> str | None:
    values = {n: e["default"] for n, e in SPEC.items()} | cli_vars
    try:
        var_spec.check(name, values[name], values)
    except ValueError as error:
        return str(error)
    return None


CASES = [
    (
        "transactions_path",
        ["data/x.csv", "a b/*.parquet", "", "  ", "a\nb", "a\x00b", 1, None, ["x.csv"]],
    ),
    ("invoice_date_format", ["auto", "iso", "ISO", "", None, 1, ["auto"]]),
    (
        "min_invoice_date",
        ["1990-01-01", dt.date(2000, 1, 1), "1899-12-31", "2011-02-30", None, "1990'; --", 1990],
    ),
    (
        "max_invoice_date",
        [None, "2030-12-31", dt.date(2030, 1, 1), "1989-12-31", "3000-01-01", "tomorrow"],
    ),
    (
        "exclude_stock_codes",
        [
            [],
            ["POST", "DCGS*", "gift_0001_*", "BANK CHARGES"],
            "POST",
            ["POST' or 1=1 --"],
            ["ok", 1],
            ["x" * 51],
            {"a": 1},
            None,
            [dt.date(2011, 1, 1)],
        ],
    ),
    (
        "excluded_countries",
        [
            [],
            ["Côte d'Ivoire"],
            ["Bosnia & Herzegovina", "St. Kitts (x)"],
            ["x'); drop table t; --"],
            "Unspecified",
            ["y" * 81],
        ],
    ),
    (
        "min_unit_price",
        [
            0,
            -1,
            0.5,
            1e9,
            -1e9,
            1e9 + 1,
            math.nan,
            math.inf,
            -math.inf,
            True,
            "0",
            "0; drop table x",
            None,
        ],
    ),
    ("round_unit_prices", [True, False, "true", 0, None]),
    ("drop_exact_duplicates", [True, False, "yes", 1, 0, None]),
    ("guest_policy", ["exclude", "per_invoice", "exclude' --", dt.date(2011, 1, 1), None]),
    ("forget_customers_path", [None, "private/forget.csv", "", "  ", "a\nb", 1, ["x.csv"]]),
    (
        "as_of_date",
        [
            None,
            "2011-06-01",
            dt.date(2011, 6, 1),
            "2011-02-30",
            "2012-02-29",
            "2011-02-29",
            "2011-13-01",
            "2011-00-10",
            "2011-01-00",
            "2011-12-31",
            "1899-12-31",
            "1900-01-01",
            "2999-12-31",
            "3000-01-01",
            "0000-01-01",
            "2011-1-1",
            "2011-01-01'; --",
            20110101,
            True,
        ],
    ),
    ("rfm_score_buckets", [2, 10, 1, 11, 5.0, "5", True, None]),
    ("segment_k_min", [2, 20, 1, 21, 3.5, False, None]),
    ("segment_k_max", [2, 20, 21, "10", None]),
    ("segment_k", [None, 2, 20, 1, 21, "4", True]),
    (
        "segment_features",
        [
            ["monetary"],
            ["recency_days", "tenure_days"],
            [],
            "monetary",
            ["monetary", "monetary"],
            ["recency_days", "colour"],
            [1],
            {"monetary": 1},
            None,
        ],
    ),
    ("top_products_n", [1, 100, 0, 101, 10.0, "10", True, None]),
    ("affinity_min_orders", [1, 1000000, 0, 1000001, 10.5, "10", False, None]),
    ("affinity_max_related", [1, 100, 0, 101, 10.0, "10", True, None]),
    ("recommendation_holdout_days", [1, 3650, 0, 3651, 90.5, "90", True, None]),
    ("recommendations_n", [1, 100, 0, 101, 10.0, "10", False, None]),
    ("backtest_horizon_days", [1, 3650, 0, 3651, 90.5, "90", True, None]),
    ("clv_horizon_days", [1, 3650, 0, 3651, 90.5, "90", True, None]),
    ("clv_lifetime_months", [1, 120, 0, 121, 12.0, "12", False, None]),
    ("clv_annual_discount_rate", [0, 0.1, 1, -0.01, 1.01, math.nan, "0.1", True, None]),
]


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in CASES for value in values], ids=repr
)
def test_dbt_and_python_agree(name, value):
    message = dbt_message(name, {name: value})
    assert message == python_message(name, {name: value})
    if message is not None:
        assert message.startswith(f"Invalid value for dbt var '{name}': ")


@pytest.mark.parametrize(
    ("name", "cli_vars", "problem"),
    [
        ("segment_k_max", {"segment_k_min": 5, "segment_k_max": 3}, "segment_k_min (5)"),
        ("segment_k_max", {"segment_k_min": 5, "segment_k_max": 5}, None),
        ("segment_k_max", {"segment_k_min": "x", "segment_k_max": 3}, None),  # min's own check
        ("segment_k_max", {"segment_k_max": 3}, None),
        (
            "max_invoice_date",
            {"min_invoice_date": "2011-01-01", "max_invoice_date": "2010-12-31"},
            "min_invoice_date (2011-01-01)",
        ),
        (
            "max_invoice_date",
            {"min_invoice_date": dt.date(2011, 1, 1), "max_invoice_date": dt.date(2010, 12, 31)},
            "min_invoice_date (2011-01-01)",
        ),
        (
            "max_invoice_date",
            {"min_invoice_date": "2011-01-01", "max_invoice_date": "2011-01-01"},
            None,
        ),
        ("max_invoice_date", {"min_invoice_date": "2011-01-01", "max_invoice_date": None}, None),
        ("max_invoice_date", {"min_invoice_date": "x", "max_invoice_date": "2010-12-31"}, None),
    ],
)
def test_a_var_is_at_least_the_var_it_follows(name, cli_vars, problem):
    message = dbt_message(name, cli_vars)
    assert message == python_message(name, cli_vars)
    assert (message is None) == (problem is None)
    if problem:
        assert message.endswith(f" must be at least {problem}.")


def test_every_var_has_cases_accepted_and_rejected():
    assert [name for name, _ in CASES] == list(SPEC)
    for name, values in CASES:
        assert any(dbt_message(name, {name: v}) for v in values), name
        assert any(dbt_message(name, {name: v}) is None for v in values), name
