"""Segmentation on a handful of customers: the k range shrinks to what the data allows, and a
range (or a fixed k) the data cannot meet fails naming the var and the number of customers.

Each case builds the real dbt project on a tiny CSV written here (every customer with its own
number of invoices, spend and last purchase, so their features differ).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from conftest import BUILD, build_ok, failure_summary, run_dbt

from customer_segmentation.segmentation.segments import fit_customer_segments
from customer_segmentation.segmentation.selection import select_segment_count
from customer_segmentation.segmentation.settings import validate_settings

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# The segmentation marts and what they read (`@`: also the personas seed of its descendants),
# the value tiers, and their data tests (`cautious`: not the tests that also read marts this
# build does not make).
SEGMENTATION = [
    *BUILD,
    "--select",
    "@segment_model_selection",
    "+customer_value_tiers",
    "--indirect-selection",
    "cautious",
]
# Only the segmentation's own model: enough to see it refuse a range.
SELECTION_ONLY = [
    "build",
    "--select",
    "+segment_model_selection",
    "--exclude-resource-type",
    "test",
    "unit_test",
]


def customers_file(tmp_path: Path, customers: int) -> Path:
    """Customer c (1..customers) buys c times, c * 3 items at 2.50 each, the last time two days
    before customer c - 1 did: distinct recency, frequency and monetary for each. ISO dates:
    a few slash dates could read month first and day first alike."""
    lines = []
    invoice = 536000
    start = dt.datetime(2011, 1, 3, 9, 0)
    for c in range(1, customers + 1):
        for i in range(c):
            invoice += 1
            at = start + dt.timedelta(days=100 - 2 * c - 7 * i)
            lines.append(
                f"{invoice},85123A,WHITE HANGING HEART T-LIGHT HOLDER,{c * 3},"
                f"{at:%Y-%m-%d %H:%M:%S},2.50,{12000 + c}.0,"
                "United Kingdom"
            )
    path = tmp_path / f"customers_{customers}.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def test_five_customers_shrink_the_k_range_and_every_segmentation_mart_builds(tmp_path):
    data = customers_file(tmp_path, 5)
    result = build_ok(tmp_path / "build", {"transactions_path": str(data)}, args=SEGMENTATION)
    [(customers,)] = result.query("select count(*) from marts.customer_rfm")
    assert customers == 5
    # silhouette, Davies-Bouldin and Calinski-Harabasz need 2 <= k <= customers - 1
    ks = [k for (k,) in result.query("select k from marts.segment_model_selection order by k")]
    assert ks == list(range(2, customers))
    rules = result.query("select distinct selection_rule from marts.segment_model_selection")
    assert len(rules) == 1
    rule = rules[0][0]
    assert "segment_k_max" in rule and f"{customers} customers" in rule, rule
    [(k,)] = result.query("select k from marts.segment_model_selection where is_selected")
    assert k in ks
    assert result.query(
        "select count(*), count(distinct segment_id), min(k), max(k) from marts.customer_segments"
    ) == [(customers, k, k, k)]
    assert result.query("select count(*), sum(customers) from marts.segment_profiles") == [
        (k, customers)
    ]
    [(members,)] = result.query("select members from marts.loyalty_programme_summary")
    assert result.query("select count(*) from marts.loyalty_programme") == [(members,)]
    assert result.query("select count(*) from marts.customer_value_tiers") == [(customers,)]
    # the lifetime-value fit on five customers gives no finite prediction: empty, not NaN
    assert result.query(
        "select count(*) from marts.customer_lifetime_value where not isfinite(clv)"
    ) == [(0,)]

    # Determinism: the same input gives the same tables, row for row (the four marts and
    # what they read are built again, nothing else).
    again = build_ok(
        tmp_path / "again",
        {"transactions_path": str(data)},
        args=["build", "--select", "+segment_profiles", "+customer_value_tiers"]
        + ["--exclude-resource-type", "test", "unit_test"],
    )
    for mart in (
        "segment_model_selection",
        "customer_segments",
        "segment_profiles",
        "customer_value_tiers",
    ):
        sql = f"select * from marts.{mart}"
        assert again.query(sql) == result.query(sql), mart


def fails_naming(result, *needles: str) -> None:
    assert result.returncode != 0, "the build should have failed"
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{failure_summary(result.output)}"


def test_two_customers_fail_naming_segment_k_min_and_the_customers(tmp_path):
    data = customers_file(tmp_path, 2)
    result = run_dbt(tmp_path, SELECTION_ONLY, {"transactions_path": str(data)})
    fails_naming(result, "dbt var 'segment_k_min'", "2 customers")


def test_a_fixed_segment_k_the_customers_cannot_meet_fails_naming_segment_k(tmp_path):
    data = customers_file(tmp_path, 4)
    result = run_dbt(tmp_path, SELECTION_ONLY, {"transactions_path": str(data), "segment_k": 4})
    fails_naming(result, "dbt var 'segment_k'", "4 customers")
    assert "segment_k_min" not in result.output


def test_repeated_feature_vectors_limit_k_too():
    """Six customers, three of them alike: KMeans finds at most 4 distinct clusters."""
    features = [(1, 1, 10.0), (5, 2, 50.0), (9, 3, 90.0), (9, 3, 90.0), (9, 3, 90.0), (20, 7, 7.0)]
    table = pa.table(
        {
            "customer_id": pa.array(range(100, 100 + len(features)), pa.int64()),
            "recency_days": [f[0] for f in features],
            "frequency": [f[1] for f in features],
            "monetary": [f[2] for f in features],
        }
    )
    distinct = len(set(features))
    selection = select_segment_count(table, validate_settings())
    assert selection.column("k").to_pylist() == list(range(2, distinct + 1))
    rule = selection.column("selection_rule")[0].as_py()
    assert "segment_k_max = 10" in rule and f"{len(features)} customers" in rule, rule
    assert f"{distinct} distinct feature vectors" in rule, rule
    segments = fit_customer_segments(table, selection)
    assert segments.num_rows == len(features)
