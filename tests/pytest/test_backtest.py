"""segment_rules and segment_backtest: the rules are exactly the tree, the horizon counts only
the lines after the cut, and the backtest finds a segment that truly spends more.

The package functions run on DuckDB relations built here from generated lines (no dbt; the
cut and the RFM at the cut, SQL models in the project, are computed here independently; that
no line on or after the cut reaches the RFM is the dbt unit test of int_customer_rfm_at_cuts);
one test reads the sample build (conftest `sample_build`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from customer_segmentation.segmentation import asof, backtest, rules
from customer_segmentation.segmentation.settings import validate_settings

AS_OF = dt.date(2011, 12, 10)
CUT = dt.datetime(2011, 9, 11)  # AS_OF - 90 days
START = dt.datetime(2011, 1, 3, 9, 0)
# (customers, invoices before the cut, amount per invoice, chance of buying after, invoices after)
GROUPS = ((30, 10, 900.0, 0.9, 3), (80, 4, 150.0, 0.5, 1), (120, 1, 40.0, 0.2, 1))


def generated_lines(groups=GROUPS, seed: int = 11) -> list[tuple]:
    """(invoice_no, customer_id, invoiced_at, line_type, amount) invoice groups: three kinds of
    customer, the bigger spenders before the cut also buying more after it."""
    rng = np.random.default_rng(seed)
    lines = []
    customer = 20_000
    for size, invoices, amount, chance, after in groups:
        for _ in range(size):
            customer += 1
            for _ in range(invoices):
                at = START + dt.timedelta(days=int(rng.integers(0, 240)), minutes=int(customer))
                spend = round(amount * float(rng.uniform(0.7, 1.3)), 2)
                lines.append((f"{len(lines)}", customer, at, "sale", spend))
            if rng.random() < chance:
                for _ in range(after):
                    at = CUT + dt.timedelta(days=int(rng.integers(0, 89)), hours=10)
                    spend = round(amount * float(rng.uniform(0.7, 1.3)), 2)
                    lines.append((f"{len(lines)}", customer, at, "sale", spend))
    return lines


def line_groups(con: duckdb.DuckDBPyConnection, lines: list[tuple]):
    """An int_order_line_groups shaped relation (amount a decimal, as in the project)."""
    invoices, customers, times, kinds, amounts = (list(c) for c in zip(*lines, strict=True))
    con.register(
        "generated",
        pa.table(
            {
                "invoice_no": pa.array(invoices, pa.string()),
                "customer_id": pa.array(customers, pa.int64()),
                "invoiced_at": pa.array(times, pa.timestamp("us")),
                "line_type": pa.array(kinds, pa.string()),
                "amount": pa.array(amounts, pa.float64()),
            }
        ),
    )
    return con.sql(
        """select invoice_no, customer_id, invoiced_at, line_type,
            customer_id is null as is_guest, 1 as lines,
            cast(amount as decimal(18, 2)) as amount
        from generated"""
    )


def cuts(con: duckdb.DuckDBPyConnection):
    """An int_evaluation_cuts shaped relation: the backtest's cut, 90 days before AS_OF."""
    return con.sql(
        f"""select 'segment_backtest' as cut_kind, date '{CUT.date()}' as cut_date,
            date '{AS_OF}' as as_of_date, 90 as horizon_days"""
    )


def rfm_at_cut(con: duckdb.DuckDBPyConnection, lines: list[tuple]):
    """An int_customer_rfm_at_cuts shaped relation: recency, frequency, monetary and tenure at
    the cut from the sale lines before it."""
    line_groups(con, lines)
    return con.sql(
        f"""select date '{CUT.date()}' as cut_date, customer_id,
            date_diff('day', cast(max(invoiced_at) as date), date '{CUT.date()}')
                as recency_days,
            count(distinct invoice_no) as frequency,
            cast(sum(amount) as decimal(38, 4)) as monetary,
            date_diff('day', cast(min(invoiced_at) as date), date '{CUT.date()}')
                as tenure_days
        from generated
        where invoiced_at < date '{CUT.date()}' and line_type = 'sale'
        group by customer_id"""
    )


def refit(lines: list[tuple], settings=None) -> tuple[pa.Table, pa.Table]:
    """The backtest's refit input (RFM at the cut) and its segments."""
    con = duckdb.connect()
    return backtest.backtest_segments(
        rfm_at_cut(con, lines), CUT.date(), settings or validate_settings()
    )


def run_backtest(lines: list[tuple]) -> list[dict]:
    con = duckdb.connect()
    table = backtest.segment_backtest(
        con, line_groups(con, lines), cuts(con), rfm_at_cut(con, lines), None, validate_settings()
    )
    return table.to_pylist()


def test_the_cut_comes_from_int_evaluation_cuts():
    con = duckdb.connect()
    assert asof.cut_of(cuts(con), "segment_backtest") == (CUT.date(), AS_OF)
    with pytest.raises(ValueError, match="one segment_backtest cut, found 0"):
        asof.cut_of(cuts(con).filter("false"), "segment_backtest")


def test_any_customer_rfm_column_can_be_a_feature_of_the_refit():
    # the RFM at the cut has every customer_rfm column (the macro), tenure_days too
    settings = validate_settings(features=["recency_days", "tenure_days"])
    rfm, segments = refit(generated_lines(), settings)
    assert "tenure_days" in segments.column_names
    assert segments.num_rows == rfm.num_rows == sum(g[0] for g in GROUPS)


def test_no_customer_before_the_cut_gives_an_empty_backtest():
    late = [line for line in generated_lines() if line[2] >= CUT]
    assert run_backtest(late) == []
    with pytest.raises(backtest.NoRefit, match="0 customers before the cut 2011-09-11"):
        refit(late)


def test_the_horizon_counts_the_lines_from_the_cut_to_as_of_date():
    base = generated_lines()
    customer = base[0][1]
    con = duckdb.connect()
    window = backtest.window_revenue(
        line_groups(
            con,
            [
                *base,
                ("at-cut", customer, CUT, "sale", 1_000.0),  # midnight of the cut: counted
                ("before", customer, CUT - dt.timedelta(seconds=1), "sale", 7_000.0),
                ("at-as-of", customer, dt.datetime(2011, 12, 10), "sale", 9_000.0),
            ],
        ),
        CUT.date(),
        AS_OF,
    )
    row = window.filter(f"customer_id = {customer}").fetchall()
    expected = sum(
        Decimal(str(line[4]))
        for line in base
        if line[1] == customer and CUT <= line[2] < dt.datetime(2011, 12, 10)
    )
    assert row[0][2] == expected + 1_000


def test_segment_one_truly_spends_more_after_the_cut():
    rows = run_backtest(generated_lines())
    first = rows[0]
    assert [r["segment_id"] for r in rows] == list(range(1, len(rows) + 1))
    assert first["ratio_vs_rest_ci_low"] > 1
    assert first["ratio_vs_rest_ci_low"] <= first["ratio_vs_rest"] <= first["ratio_vs_rest_ci_high"]
    assert all(r["ratio_vs_rest"] is None for r in rows[1:])
    assert sum(r["share_of_revenue_after"] for r in rows) == pytest.approx(1)
    assert sum(r["customers"] for r in rows) == sum(g[0] for g in GROUPS)
    # independent recomputation of segment 1's figures from the lines
    lines = generated_lines()
    _, segments = refit(lines)
    ids = {
        c
        for c, s in zip(
            segments["customer_id"].to_pylist(), segments["segment_id"].to_pylist(), strict=True
        )
        if s == 1
    }
    after = [
        line for line in lines if line[1] in ids and CUT <= line[2] < dt.datetime(2011, 12, 10)
    ]
    assert first["customers"] == len(ids)
    assert first["customers_buying_after"] == len({line[1] for line in after})
    expected = sum(Decimal(str(line[4])) for line in after)
    assert first["revenue_after"] == pytest.approx(float(expected), rel=1e-12)


def test_the_interval_covers_one_when_segment_one_is_no_different():
    rng = np.random.default_rng(5)
    values = rng.gamma(2.0, 100.0, size=3_000)
    ratio = backtest.ratio_vs_rest(values[:500], values[500:])
    assert ratio.low < 1 < ratio.high
    assert backtest.ratio_vs_rest(values[:0], values).ratio is None
    assert backtest.ratio_vs_rest(values, np.zeros(10)).ratio is None


def test_two_runs_give_identical_tables():
    lines = generated_lines()
    assert run_backtest(lines) == run_backtest(lines)
    segments = refit(lines)[1]
    assert rules.segment_rules(segments, ("recency_days", "frequency", "monetary")).equals(
        rules.segment_rules(segments, ("recency_days", "frequency", "monetary"))
    )


def apply_rules(con: duckdb.DuckDBPyConnection, table: str, rule_rows: list[dict]) -> dict:
    """customer_id -> the rule_ids of every rule that matches it, the rules run as SQL."""
    matched: dict[int, list[int]] = {}
    for row in rule_rows:
        query = f"select customer_id from {table} where {row['rule']}"
        for (customer,) in con.sql(query).fetchall():
            matched.setdefault(customer, []).append(row["rule_id"])
    return matched


def assert_rules_are_the_tree(con, table: str, segments: pa.Table, features) -> list[dict]:
    """Every customer matches exactly one rule, whose segment is the tree's prediction, and
    each rule matches its customers_matched."""
    rule_rows = rules.segment_rules(segments, features).to_pylist()
    fitted = rules.fit_rules_tree(segments, features)
    predicted = rules.predicted_segments(fitted).tolist()
    by_id = {r["rule_id"]: r for r in rule_rows}
    matched = apply_rules(con, table, rule_rows)
    assert set(matched) == set(fitted.customer_ids.tolist())
    assert all(len(ids) == 1 for ids in matched.values())
    words = [by_id[matched[c][0]]["segment_id"] for c in fitted.customer_ids.tolist()]
    assert words == predicted
    for row in rule_rows:
        assert row["customers_matched"] == sum(ids == [row["rule_id"]] for ids in matched.values())
    return rule_rows


def test_the_rule_strings_are_exactly_the_tree_on_awkward_values():
    # money values that float32 cannot tell apart, thresholds between neighbouring cents
    rng = np.random.default_rng(3)
    n = 3_000
    cents = rng.integers(0, 30_000_000, n)  # up to 300,000.00
    frac = rng.integers(0, 100, n)
    monetary = [
        Decimal(int(c)) / 100 + Decimal(int(f)) / 10_000 for c, f in zip(cents, frac, strict=True)
    ]
    monetary[:4] = [Decimal("123456.7891"), Decimal("123456.7892"), Decimal("0.0001"), Decimal(0)]
    recency = rng.integers(0, 400, n)
    frequency = rng.integers(1, 60, n)
    noisy = rng.random(n) < 0.1
    segment = np.where(
        np.array([float(m) for m in monetary]) > 150_000,
        1,
        np.where(frequency > 20, 2, np.where(recency < 90, 3, 4)),
    )
    segment = np.where(noisy, rng.integers(1, 5, n), segment)
    table = pa.table(
        {
            "customer_id": pa.array(np.arange(n) * 7 + 1, pa.int64()),
            "segment_id": pa.array(segment, pa.int32()),
            "segment_name": pa.array([f"Segment {s}" for s in segment], pa.string()),
            "as_of_date": pa.array([AS_OF] * n, pa.date32()),
            "recency_days": pa.array(recency, pa.int32()),
            "frequency": pa.array(frequency, pa.int64()),
            "monetary": pa.array(monetary, pa.decimal128(38, 4)),
        }
    )
    con = duckdb.connect()
    con.register("customers", table)
    rule_rows = assert_rules_are_the_tree(
        con, "customers", table, ("recency_days", "frequency", "monetary")
    )
    assert 1 < len(rule_rows) <= 8
    assert rule_rows[0]["agreement"] > 0.85
    for row in rule_rows:
        assert row["precision"] == row["customers_in_segment"] / row["customers_matched"]


def test_a_tree_of_one_leaf_is_the_rule_true():
    table = pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "segment_id": pa.array([1, 1, 1], pa.int32()),
            "segment_name": pa.array(["Insiders"] * 3),
            "monetary": pa.array([Decimal(1), Decimal(2), Decimal(3)], pa.decimal128(38, 4)),
        }
    )
    [row] = rules.segment_rules(table, ("monetary",)).to_pylist()
    assert (row["rule"], row["customers_matched"], row["precision"], row["agreement"]) == (
        "true",
        3,
        1.0,
        1.0,
    )


def test_the_sample_builds_rules_are_its_tree_on_customer_rfm(sample_build):
    with duckdb.connect(str(sample_build.duckdb_path), read_only=True) as con:
        segments = con.sql(
            """select customer_id, segment_id, segment_name, as_of_date, recency_days,
                frequency, monetary from marts.customer_segments"""
        ).to_arrow_table()
        features = ("recency_days", "frequency", "monetary")
        rule_rows = assert_rules_are_the_tree(con, "marts.customer_rfm", segments, features)
        built = con.sql("select * from marts.segment_rules order by rule_id").to_arrow_table()
        [entry] = con.sql("select entry_rule from marts.loyalty_programme_summary").fetchall()
        rows = con.sql("select * from marts.segment_backtest order by segment_id").fetchall()
    assert built.to_pylist() == rule_rows
    first = [r["rule"] for r in rule_rows if r["segment_id"] == 1]
    assert entry[0] == " or ".join(f"({r})" for r in first)
    assert len(rows) >= 2


def test_recommendation_refit_reads_the_shared_functions():
    # one reading of the cut and of the RFM at a cut for both refits
    from customer_segmentation import recommend

    assert recommend.rfm_at is asof.rfm_at is backtest.rfm_at
    assert recommend.cut_of is asof.cut_of is backtest.cut_of
    assert recommend.reference_date is asof.reference_date


def test_a_threshold_between_neighbouring_cents_keeps_four_decimals():
    table = pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 4], pa.int64()),
            "segment_id": pa.array([2, 2, 1, 1], pa.int32()),
            "segment_name": pa.array(["Others", "Others", "Insiders", "Insiders"]),
            "monetary": pa.array(
                [Decimal("7"), Decimal("100.0049"), Decimal("100.0051"), Decimal("900")],
                pa.decimal128(38, 4),
            ),
            "frequency": pa.array([5, 5, 6, 6], pa.int64()),
        }
    )
    by_rule = {
        r["rule"]: r["segment_id"] for r in rules.segment_rules(table, ("monetary",)).to_pylist()
    }
    assert by_rule == {"monetary < 100.0050": 2, "monetary >= 100.0050": 1}
    by_rule = {
        r["rule"]: r["segment_id"] for r in rules.segment_rules(table, ("frequency",)).to_pylist()
    }
    assert by_rule == {"frequency <= 5": 2, "frequency >= 6": 1}
