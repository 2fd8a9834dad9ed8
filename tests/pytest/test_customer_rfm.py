"""Customer analytics checked against independent pandas computations on the bundled sample.

`customer_rfm` is recomputed from the cleaned order lines for every customer (metrics, tie-safe
scores with pandas `rank(method="min")`, the segment rules of the seed), as of the default
reference date and as of a date in the middle of the data; `monthly_kpis` customer counts are
recounted; and with the cleaning rules of a published analysis, the monthly active customers
and the number of customers equal a notebook-style count straight from the raw CSV.

The default build is conftest's session fixture `sample_build`; the two other builds run only
what they need: customer_rfm alone on a copy of the default build, and the seeds and models up
to customer_rfm and monthly_kpis (without their tests) for the published cleaning rules.
"""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_DIR, SAMPLE_CSV, DbtResult, build_ok, run_dbt

BUCKETS = 5  # the default of var rfm_score_buckets
RULES_CSV = PROJECT_DIR / "seeds" / "rfm_segment_rules.csv"
MID_DATE = "2011-06-01"
#: The cleaning rules as a published notebook on the UCI data sets them: keep every stock code
#: and country, any price above 0, exact duplicates.
PUBLISHED_VARS = {
    "exclude_stock_codes": [],
    "excluded_countries": [],
    "min_unit_price": 0,
    "drop_exact_duplicates": False,
}
#: Seeds and models up to fct_order_lines, customer_rfm and monthly_kpis, without tests (the
#: default build has run them).
PUBLISHED_BUILD = ["build", "-s", "+fct_order_lines", "+customer_rfm", "+monthly_kpis"]
PUBLISHED_BUILD += ["--resource-type", "seed", "--resource-type", "model"]
ORDER_LINES_SQL = """
    select invoice_no, stock_code, quantity, invoiced_at, customer_id, country, line_type,
        line_amount, is_guest
    from marts.fct_order_lines
"""
#: amount columns of customer_rfm and their exact counterparts in ten-thousandths of a GBP
AMOUNTS = {
    "gross_revenue": "gross_units",
    "returned_amount": "returned_units",
    "monetary": "monetary_units",
}
EXACT = ["recency_days", "frequency", "total_items", "distinct_products", "return_lines"]
EXACT += ["tenure_days", "first_purchase_at", "last_purchase_at", "country"]
SCORES = ["r_score", "f_score", "m_score", "fm_score", "rfm_cell", "rfm_segment"]


# -- independent computations ----------------------------------------------------------------


def units(amounts: pd.Series) -> pd.Series:
    """GBP amounts as whole ten-thousandths (4 decimals, as stored), so sums and ties are exact."""
    return (amounts.astype(float) * 10_000).round().astype("int64")


def tie_safe_scores(values: pd.Series, lower_is_better: bool = False) -> pd.Series:
    """1 + floor(N * (rank - 1) / n) with the lowest rank shared by ties (`method="min"`)."""
    rank = values.rank(method="min", ascending=not lower_is_better)
    return (1 + np.floor(BUCKETS * (rank - 1) / len(values))).astype("int64")


def segment_of(r_score: int, fm_score: int, rules: pd.DataFrame) -> str:
    """The first rule (lowest rule_order) whose ranges hold both scores; else Other."""
    for rule in rules.sort_values("rule_order").itertuples():
        if (
            rule.r_score_min <= r_score <= rule.r_score_max
            and rule.fm_score_min <= fm_score <= rule.fm_score_max
        ):
            return rule.rfm_segment
    return "Other"


def pandas_rfm(lines: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """customer_rfm recomputed from order lines: customers with a sale before `as_of`."""
    as_of_ts = pd.Timestamp(as_of)
    lines = lines[(lines["invoiced_at"] < as_of_ts) & lines["customer_id"].notna()].copy()
    lines["customer_id"] = lines["customer_id"].astype("int64")
    lines["amount_units"] = units(lines["line_amount"])
    sales = lines[lines["line_type"] == "sale"]
    returns = lines[lines["line_type"] == "return"]

    per = sales.groupby("customer_id")
    rfm = pd.DataFrame(
        {
            "first_purchase_at": per["invoiced_at"].min(),
            "last_purchase_at": per["invoiced_at"].max(),
            "frequency": per["invoice_no"].nunique(),
            "total_items": per["quantity"].sum(),
            "distinct_products": per["stock_code"].nunique(),
            "gross_units": per["amount_units"].sum(),
        }
    )
    returned = -returns.groupby("customer_id")["amount_units"].sum()
    rfm["returned_units"] = returned.reindex(rfm.index, fill_value=0)
    rfm["return_lines"] = returns.groupby("customer_id").size().reindex(rfm.index, fill_value=0)
    rfm["monetary_units"] = (rfm["gross_units"] - rfm["returned_units"]).clip(lower=0)
    rfm["avg_order_value"] = rfm["gross_units"] / 10_000 / rfm["frequency"]
    # days from the date of the purchase (midnight) to the reference date
    rfm["recency_days"] = (as_of_ts - rfm["last_purchase_at"].dt.normalize()).dt.days
    rfm["tenure_days"] = (as_of_ts - rfm["first_purchase_at"].dt.normalize()).dt.days

    # country of most sale invoices, ties to the alphabetically first
    invoices = sales.groupby(["customer_id", "country"])["invoice_no"].nunique().reset_index()
    invoices = invoices.sort_values(
        ["customer_id", "invoice_no", "country"], ascending=[True, False, True]
    )
    rfm["country"] = invoices.drop_duplicates("customer_id").set_index("customer_id")["country"]

    rfm["r_score"] = tie_safe_scores(rfm["recency_days"], lower_is_better=True)
    rfm["f_score"] = tie_safe_scores(rfm["frequency"])
    rfm["m_score"] = tie_safe_scores(rfm["monetary_units"])
    rfm["fm_score"] = (rfm["f_score"] + rfm["m_score"]) // 2
    rfm["rfm_cell"] = (
        rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)
    )
    rules = pd.read_csv(RULES_CSV)  # written on the 1..5 scale: used as they are for N = 5
    rfm["rfm_segment"] = [
        segment_of(r, fm, rules) for r, fm in zip(rfm["r_score"], rfm["fm_score"], strict=True)
    ]
    return rfm.sort_index()


def model_rfm(build: DbtResult) -> pd.DataFrame:
    rfm = build.df("select * from marts.customer_rfm").set_index("customer_id").sort_index()
    rfm.index = rfm.index.astype("int64")
    return rfm


def assert_rfm_matches(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Every customer, every metric: counts, dates and scores exactly, amounts to 4 decimals."""
    assert list(actual.index) == list(expected.index), "not the same customers"
    for name in EXACT + SCORES:
        diff = actual[name].to_numpy() != expected[name].to_numpy()
        assert not diff.any(), (
            f"{name} differs for {diff.sum()} customer(s), e.g.\n"
            f"{pd.DataFrame({'model': actual[name], 'pandas': expected[name]})[diff].head()}"
        )
    for name, units_column in AMOUNTS.items():
        diff = units(actual[name]).to_numpy() != expected[units_column].to_numpy()
        assert not diff.any(), f"{name} differs for {diff.sum()} customer(s)"
    np.testing.assert_allclose(
        actual["avg_order_value"].astype(float), expected["avg_order_value"], atol=5e-5
    )


# -- tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_lines(sample_build: DbtResult) -> pd.DataFrame:
    return sample_build.df(ORDER_LINES_SQL)


def test_customer_rfm_matches_pandas_for_every_customer(sample_build, sample_lines):
    rfm = model_rfm(sample_build)
    last_line = sample_lines["invoiced_at"].max()
    as_of = last_line.date() + dt.timedelta(days=1)
    assert as_of == dt.date(2011, 12, 10)  # the sample ends on 2011-12-09, like the UCI file
    assert set(rfm["as_of_date"].dt.date) == {as_of}

    expected = pandas_rfm(sample_lines, as_of)
    assert len(expected) > 400
    assert_rfm_matches(rfm, expected)
    # the sample has what makes the rules matter: ties, returns, a sale cancelled in full
    assert expected["frequency"].eq(1).sum() > len(expected) / 4
    assert (expected["returned_units"] > 0).any()
    assert (expected["monetary_units"] == 0).any()


def test_rfm_segment_summary_adds_up_to_customer_rfm(sample_build):
    rfm = model_rfm(sample_build)
    summary = sample_build.df("select * from marts.rfm_segment_summary").set_index("rfm_segment")
    playbook = pd.read_csv(PROJECT_DIR / "seeds" / "segment_playbook.csv")
    assert set(summary.index) == set(playbook["rfm_segment"]) | set(rfm["rfm_segment"])
    per_segment = rfm.groupby("rfm_segment")
    counts = per_segment.size().reindex(summary.index, fill_value=0)
    assert (summary["customers"] == counts).all()
    assert summary["customer_share"].sum() == pytest.approx(1)
    revenue = per_segment["monetary"].sum().astype(float).reindex(summary.index, fill_value=0)
    np.testing.assert_allclose(summary["revenue"].astype(float), revenue, atol=1e-6)
    medians = per_segment["recency_days"].median().reindex(summary.index)
    np.testing.assert_allclose(summary["median_recency_days"], medians)


def test_as_of_date_in_the_middle_gives_the_rfm_of_that_day(sample_build, sample_lines, tmp_path):
    # Rebuild customer_rfm alone (with its tests) on a copy of the default build.
    shutil.copy(sample_build.duckdb_path, tmp_path / "retail.duckdb")
    wal = sample_build.duckdb_path.with_name(sample_build.duckdb_path.name + ".wal")
    if wal.exists():
        shutil.copy(wal, tmp_path / "retail.duckdb.wal")
    mid = build_ok(
        tmp_path,
        {"as_of_date": MID_DATE},
        args=["build", "-s", "customer_rfm", "--indirect-selection", "cautious"],
    )
    rfm = model_rfm(mid)
    as_of = dt.date.fromisoformat(MID_DATE)
    assert set(rfm["as_of_date"].dt.date) == {as_of}
    assert_rfm_matches(rfm, pandas_rfm(sample_lines, as_of))

    # Customers who first bought on or after that day are absent; the others have only what
    # they had bought by then.
    full = model_rfm(sample_build)
    later = full.index[full["first_purchase_at"] >= pd.Timestamp(as_of)]
    assert len(later) > 50
    assert not set(later) & set(rfm.index)
    assert set(rfm.index) == set(full.index) - set(later)
    both = full.loc[rfm.index]
    assert (rfm["last_purchase_at"] < pd.Timestamp(as_of)).all()
    assert (rfm["frequency"] <= both["frequency"]).all()
    assert (rfm["frequency"] < both["frequency"]).sum() > 50  # came back after that day
    # one customer, spelled out: the model agrees with the lines as they stood that day
    customer = (both["frequency"] - rfm["frequency"]).idxmax()
    before = sample_lines[
        (sample_lines["customer_id"] == customer)
        & (sample_lines["invoiced_at"] < pd.Timestamp(as_of))
        & (sample_lines["line_type"] == "sale")
    ]
    assert rfm.loc[customer, "frequency"] == before["invoice_no"].nunique()
    assert (
        rfm.loc[customer, "recency_days"]
        == (pd.Timestamp(as_of) - before["invoiced_at"].max().normalize()).days
    )


def test_invalid_as_of_date_fails_the_build_naming_the_var(tmp_path):
    result = run_dbt(tmp_path, ["run", "-s", "customer_rfm"], {"as_of_date": "2011-02-30"})
    assert result.returncode != 0
    assert "Invalid value for dbt var 'as_of_date'" in result.output
    assert "is not a valid calendar date" in result.output


def test_monthly_kpis_customer_counts_match_pandas(sample_build, sample_lines):
    kpis = sample_build.df("select * from marts.monthly_kpis order by month")
    lines = sample_lines.assign(month=sample_lines["invoiced_at"].dt.to_period("M"))
    sales = lines[lines["line_type"] == "sale"]
    identified = sales[~sales["is_guest"]]
    first_month = identified.groupby("customer_id")["month"].min()
    months = pd.period_range(lines["month"].min(), lines["month"].max(), freq="M")
    expected = pd.DataFrame(
        {
            "active_customers": identified.groupby("month")["customer_id"].nunique(),
            "new_customers": first_month.value_counts(),
            "orders": sales.groupby("month")["invoice_no"].nunique(),
            "revenue_units": units(sales["line_amount"]).groupby(sales["month"]).sum(),
        }
    ).reindex(months, fill_value=0)

    assert list(kpis["month"].dt.to_period("M")) == list(months)  # every month, gaps included
    for name in ["active_customers", "new_customers", "orders"]:
        assert list(kpis[name]) == list(expected[name]), name
    assert list(units(kpis["revenue"])) == list(expected["revenue_units"])
    assert (kpis["new_customers"] <= kpis["active_customers"]).all()
    assert kpis["new_customers"].sum() == identified["customer_id"].nunique()
    assert kpis["returning_customers"].sum() == (
        kpis["active_customers"].sum() - kpis["new_customers"].sum()
    )
    # the sample runs from 2010-12-01 09:52 to 2011-12-09: only December 2011 is partial
    assert list(kpis.loc[kpis["is_partial_month"], "month"].dt.date) == [dt.date(2011, 12, 1)]


def test_published_cleaning_matches_a_notebook_on_the_raw_csv(tmp_path):
    """With a published analysis' cleaning vars, monthly active customers and the number of
    customers equal the usual notebook computation on the raw file: drop rows without
    CustomerID, keep Quantity > 0 and UnitPrice > 0, drop C and A invoices, then count
    distinct CustomerID per month."""
    build = build_ok(tmp_path, PUBLISHED_VARS, args=PUBLISHED_BUILD)
    raw = pd.read_csv(SAMPLE_CSV, encoding="ISO-8859-1", dtype={"InvoiceNo": str, "StockCode": str})
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M")
    sales = raw.dropna(subset=["CustomerID"])
    sales = sales[
        (sales["Quantity"] > 0)
        & (sales["UnitPrice"] > 0)
        & ~sales["InvoiceNo"].str.upper().str.startswith(("C", "A"))
    ]
    month = sales["InvoiceDate"].dt.to_period("M")
    monthly_active = sales.groupby(month)["CustomerID"].nunique()
    first_month = sales.groupby("CustomerID")["InvoiceDate"].min().dt.to_period("M")

    kpis = build.df("select * from marts.monthly_kpis order by month")
    kpis.index = kpis["month"].dt.to_period("M")
    assert set(monthly_active.index) <= set(kpis.index)
    monthly_active = monthly_active.reindex(kpis.index, fill_value=0)
    monthly_new = first_month.value_counts().reindex(kpis.index, fill_value=0)
    assert kpis["active_customers"].to_dict() == monthly_active.to_dict()
    assert kpis["new_customers"].to_dict() == monthly_new.to_dict()
    customers = sales["CustomerID"].nunique()
    assert build.query("select count(*) from marts.customer_rfm")[0][0] == customers
    assert kpis["new_customers"].sum() == customers
