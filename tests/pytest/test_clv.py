"""Customer lifetime value: the pipeline's summary and fits reproduce the published CDNOW
figures, recover known parameters from simulated invoice lines, the holdout selects a model
with dropout where customers drop out and the baseline where purchases are regular, and the
sample build's CLV marts hold their invariants.

Each reproduction writes invoice lines of the project's input shape (one invoice per
transaction), runs the real dbt pipeline up to clv_model on them, and compares.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import PROJECT_DIR, DbtResult, build_ok

CDNOW_DIR = PROJECT_DIR / "tests" / "data" / "cdnow"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# The lifetime-value models and what they read, with their tests (`cautious`: not the tests
# that also read marts this build does not make); unit tests run in the sample build.
CLV_FIT = [
    "build",
    "--select",
    "+clv_model",
    "+customer_lifetime_value",
    "clv_validation",
    "--indirect-selection",
    "cautious",
    "--exclude-resource-type",
    "unit_test",
]


def invoice_lines(transactions: pd.DataFrame) -> str:
    """One invoice per transaction (customer_id, day, units, dollars): unit price = dollars /
    units, at noon, ISO dates."""
    rows = [
        f"{500000 + i},CD,CDNOW PURCHASE,{units},{day:%Y-%m-%d} 12:00:00,"
        f"{dollars / units!r},{customer}.0,United States"
        for i, (customer, day, units, dollars) in enumerate(
            transactions[["customer_id", "day", "units", "dollars"]].itertuples(index=False)
        )
    ]
    return HEADER + "\n".join(rows) + "\n"


def build_clv(tmp_path: Path, transactions: pd.DataFrame, as_of: str) -> DbtResult:
    data = tmp_path / "lines.csv"
    data.write_text(invoice_lines(transactions))
    dbt_vars = {
        "transactions_path": str(data),
        "invoice_date_format": "iso",
        "as_of_date": as_of,
        # zero-dollar transactions (free CDs) are purchases in the papers: keep them
        "min_unit_price": -1,
        # unit price = dollars / units, rounded to four places as in the pipeline before
        "round_unit_prices": True,
    }
    return build_ok(tmp_path / "build", dbt_vars, args=CLV_FIT)


def fitted(build: DbtResult) -> dict[tuple[str, str], tuple[float, float | None]]:
    rows = build.query("select model, parameter, value, standard_error from marts.clv_model")
    return {(model, name): (value, se) for model, name, value, se in rows}


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def cdnow_build(tmp_path_factory) -> DbtResult:
    raw = pd.read_csv(
        CDNOW_DIR / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "units", "dollars"],
    )
    raw["day"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    return build_clv(tmp_path_factory.mktemp("cdnow"), raw, "1997-10-01")


def test_cdnow_summary_matches_the_papers_customer_by_customer(cdnow_build):
    # Fader, Hardie & Lee (2005): x, t_x, T in weeks over the 39 weeks ending 1997-09-30
    paper = pd.read_csv(CDNOW_DIR / "cdnow_customers_summary_with_transactions.csv")
    ours = cdnow_build.df(
        "select customer_id as ID, frequency, recency, t, monetary_value "
        "from marts.customer_lifetime_summary"
    )
    both = paper.merge(ours, on="ID", how="outer", validate="one_to_one")
    assert len(both) == 2357
    assert (both["x"] == both["frequency"]).all()
    assert np.allclose(both["t_x"], (both["recency"] / 7).round(2))
    assert np.allclose(both["T"], (both["t"] / 7).round(2))
    # zbar: mean repeat transaction value, rounded to cents in the file
    assert np.allclose(both["zbar"], both["monetary_value"], atol=0.0051)


def test_cdnow_bg_nbd_fit_reproduces_the_published_figures(cdnow_build):
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
    # 24(2), section 4: r 0.243, alpha 4.414 (weeks), a 0.793, b 2.426, LL -9582.4
    fit = fitted(cdnow_build)
    assert sig3(fit["bg_nbd", "r"][0]) == 0.243
    assert sig3(fit["bg_nbd", "alpha"][0] / 7) == 4.41
    assert sig3(fit["bg_nbd", "a"][0]) == 0.793
    assert sig3(fit["bg_nbd", "b"][0]) == 2.43
    # in days the log-likelihood is the weekly one minus the repeat purchases x ln 7
    ((loglik, repeats, customers),) = cdnow_build.query(
        "select any_value(log_likelihood), (select sum(frequency) from "
        "marts.customer_lifetime_summary), any_value(customers) from marts.clv_model "
        "where model = 'bg_nbd'"
    )
    assert customers == 2357
    assert round(loglik + repeats * math.log(7), 1) == -9582.4


def test_cdnow_gamma_gamma_fit_reproduces_the_published_figures(cdnow_build):
    # Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": p 6.25, q 3.74,
    # gamma 15.44 on the 946 repeat customers
    fit = fitted(cdnow_build)
    assert sig3(fit["gamma_gamma", "p"][0]) == 6.25
    assert sig3(fit["gamma_gamma", "q"][0]) == 3.74
    assert sig3(fit["gamma_gamma", "gamma"][0]) == 15.4
    assert cdnow_build.query(
        "select distinct customers from marts.clv_model where model = 'gamma_gamma'"
    ) == [(946,)]


# alpha in days: a mean rate of one purchase in 75 days. The summary counts purchase days, so
# two purchases on one day count once; at rates ten times higher that merging biased alpha up
# by 3 standard errors (a property of the data, not of the fit).
TRUE_BG_NBD = {"r": 0.8, "alpha": 60.0, "a": 0.8, "b": 2.5}
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def simulate(customers: int, seed: int) -> pd.DataFrame:
    """BG/NBD purchases (Poisson rate lambda ~ Gamma(r, alpha) while alive; after each repeat
    purchase the customer drops out with probability p ~ Beta(a, b)) and Gamma-Gamma spend
    (nu ~ Gamma(q, gamma), each purchase ~ Gamma(p, nu)), first purchases spread over the
    first 180 days of 2020, observed to the end of 2020."""
    rng = np.random.default_rng(seed)
    start, end = dt.date(2020, 1, 1), 366
    rows = []
    for customer in range(1, customers + 1):
        lam = rng.gamma(TRUE_BG_NBD["r"], 1 / TRUE_BG_NBD["alpha"])
        p = rng.beta(TRUE_BG_NBD["a"], TRUE_BG_NBD["b"])
        nu = rng.gamma(TRUE_GAMMA_GAMMA["q"], 1 / TRUE_GAMMA_GAMMA["gamma"])
        first = int(rng.integers(0, 180))
        times = [float(first)]
        while True:
            next_at = times[-1] + rng.exponential(1 / lam)
            if next_at >= end:
                break
            times.append(next_at)
            if rng.random() < p:
                break
        for at in times:
            spend = round(rng.gamma(TRUE_GAMMA_GAMMA["p"], 1 / nu), 2) + 0.01
            rows.append((customer, start + dt.timedelta(days=int(at)), 1, spend))
    return pd.DataFrame(rows, columns=["customer_id", "day", "units", "dollars"])


def test_simulated_parameters_are_recovered_within_two_standard_errors(tmp_path):
    build = build_clv(tmp_path, simulate(4000, seed=14), "2021-01-01")
    fit = fitted(build)
    for model, truth in (("bg_nbd", TRUE_BG_NBD), ("gamma_gamma", TRUE_GAMMA_GAMMA)):
        for name, true_value in truth.items():
            value, se = fit[model, name]
            assert se is not None and se > 0, (model, name)
            assert abs(value - true_value) <= 2 * se, (model, name, value, se, true_value)


def test_customer_lifetime_value_has_one_row_per_customer(sample_build):
    ((rfm, clv, missing),) = sample_build.query(
        "select (select count(*) from marts.customer_rfm where customer_id > 0), "
        "(select count(*) from marts.customer_lifetime_value), "
        "(select count(*) from marts.customer_rfm r anti join marts.customer_lifetime_value v "
        "using (customer_id) where r.customer_id > 0)"
    )
    assert rfm == clv > 0 and missing == 0


def test_predictions_are_probabilities_and_non_negative(sample_build):
    ((bad,),) = sample_build.query(
        "select count(*) from marts.customer_lifetime_value where not ("
        "(p_alive between 0 and 1 or (p_alive is null and model like '%baseline')) "
        "and expected_purchases >= 0 and expected_revenue >= 0 "
        "and expected_avg_order_value >= 0 and clv >= 0 and isfinite(clv))"
    )
    assert bad == 0


def test_frequency_buckets_cover_every_validation_customer_once(sample_build):
    buckets = sample_build.df("select * from marts.clv_validation order by model, frequency_bucket")
    customers = sample_build.df("select * from marts.clv_validation_customers")
    summary = sample_build.df("select * from marts.clv_validation_summary").set_index("model")
    models = sorted(customers["model"].unique())
    assert models == sorted(summary.index) and "naive_baseline" in models
    for model in models:
        mine = customers[customers["model"] == model]
        plot = buckets[buckets["model"] == model]
        labels = ["0", "1", "2", "3", "4", "5", "6", "7+"]
        assert plot["frequency_bucket_label"].tolist() == labels
        assert plot["customers"].sum() == len(mine) > 0
        expected = mine.groupby(mine["frequency"].clip(upper=7)).agg(
            n=("customer_id", "size"),
            actual=("actual_purchases", "mean"),
            predicted=("predicted_purchases", "mean"),
        )
        got = plot.set_index("frequency_bucket")
        assert (got.loc[expected.index, "customers"] == expected["n"]).all()
        assert np.allclose(got.loc[expected.index, "mean_actual_purchases"], expected["actual"])
        assert np.allclose(
            got.loc[expected.index, "mean_predicted_purchases"], expected["predicted"]
        )
        row = summary.loc[model]
        assert row["customers"] == len(mine)
        assert row["actual_purchases"] == mine["actual_purchases"].sum()
        assert np.isclose(row["predicted_revenue"], mine["predicted_revenue"].sum())
        error = (mine["predicted_revenue"] - mine["actual_revenue"]).abs().mean()
        assert np.isclose(row["mae_revenue"], error)
        assert set(got["is_selected"]) == {bool(row["is_selected"])}
    assert summary["is_selected"].sum() == 1


def test_segment_forecast_adds_up_to_customer_lifetime_value(sample_build):
    totals = sample_build.df(
        "select segment_kind, sum(customers) as customers, sum(expected_revenue) as revenue "
        "from marts.segment_forecast group by segment_kind order by segment_kind"
    )
    ((customers, revenue),) = sample_build.query(
        "select count(*), sum(expected_revenue) from marts.customer_lifetime_value"
    )
    assert totals["customers"].tolist() == [customers, customers]
    assert np.allclose(totals["revenue"], revenue)


# The package without dbt: small frames, parameters given.
CDNOW_DAYS = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def small_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "frequency": [0.0, 2.0, 5.0],
            "recency": [0.0, 30.0, 200.0],
            "T": [10.0, 100.0, 210.0],
            "monetary_value": [0.0, 20.0, 35.0],
        }
    )


def test_undiscounted_clv_is_spend_times_the_purchases_of_the_lifetime():
    from customer_segmentation import clv

    frame = small_summary()
    lifetime = clv.predict(
        frame, "bg_nbd", CDNOW_DAYS, SPEND, 360, lifetime_months=12, annual_rate=0.0
    )
    horizon = clv.predict(frame, "bg_nbd", CDNOW_DAYS, SPEND, 360)
    assert np.allclose(lifetime.clv, horizon.expected_purchases * horizon.expected_avg_order_value)
    discounted = clv.predict(
        frame, "bg_nbd", CDNOW_DAYS, SPEND, 90, lifetime_months=12, annual_rate=0.1
    )
    assert (discounted.clv < lifetime.clv).all() and (discounted.clv > 0).all()
    # a one-time buyer spends the population mean p gamma / (q - 1)
    mean = SPEND["p"] * SPEND["gamma"] / (SPEND["q"] - 1)
    assert np.isclose(horizon.expected_avg_order_value[0], mean)


def test_bad_clv_settings_fail_naming_the_var():
    from customer_segmentation import clv

    with pytest.raises(ValueError, match="clv_horizon_days"):
        clv.checked_settings(0, 12, 0.1)
    with pytest.raises(ValueError, match="clv_annual_discount_rate"):
        clv.checked_settings(90, 12, 1.5)


def selection(model: str | None) -> pa.Table:
    """A clv_validation_summary that selected `model` (none when None)."""
    names = [model] if model else []
    return pa.table({"model": names, "is_selected": [True] * len(names)})


NO_RATIOS = pa.table({"window_kind": pa.array([], pa.string()), "seasonal_ratio": []})


def test_without_two_repeat_customers_whose_spend_differs_only_the_baselines_predict():
    from customer_segmentation import clv

    assert clv.can_fit(small_summary())
    same_spend = small_summary().assign(monetary_value=[0.0, 20.0, 20.0])
    assert not clv.can_fit(same_spend)
    summary = pa.Table.from_pandas(same_spend.rename(columns={"T": "t"}), preserve_index=False)
    model = clv.clv_model(summary, selection("naive_baseline"))
    assert model.num_rows == 0
    assert model.schema.names[:3] == ["model", "parameter", "value"]
    # a transaction model selected but not fitted: nothing is published
    values = clv.customer_lifetime_value_table(
        summary, model, selection("bg_nbd"), NO_RATIOS, 90, 12, 0.1
    )
    assert values.num_rows == 0 and "clv_rank" in values.schema.names
    # nothing validated: nothing is published
    assert (
        clv.customer_lifetime_value_table(
            summary, model, selection(None), NO_RATIOS, 90, 12, 0.1
        ).num_rows
        == 0
    )
    # the baseline: each customer's past rate over the horizon, p_alive null
    values = clv.customer_lifetime_value_table(
        summary, model, selection("naive_baseline"), NO_RATIOS, 90, 12, 0.0
    ).to_pandas()
    assert values["model"].unique().tolist() == ["naive_baseline"]
    assert values["p_alive"].isna().all()
    assert np.allclose(values["expected_purchases"], [0.0, 2 / 100 * 90, 5 / 210 * 90])
    assert np.allclose(values["expected_revenue"], [0.0, 2 / 100 * 90 * 20, 5 / 210 * 90 * 20])
    # undiscounted, twelve months of 30 days at the past rate
    assert np.allclose(values["clv"], [0.0, 2 / 100 * 360 * 20, 5 / 210 * 360 * 20])
    # the seasonal baseline scales the horizon by the forecast window's ratio
    ratios = pa.table({"window_kind": ["validation", "forecast"], "seasonal_ratio": [None, 1.5]})
    seasonal = clv.customer_lifetime_value_table(
        summary, model, selection("seasonal_baseline"), ratios, 90, 12, 0.0
    ).to_pandas()
    assert np.allclose(seasonal["expected_purchases"], 1.5 * values["expected_purchases"])
    assert np.allclose(seasonal["clv"], values["clv"])


def day_lines(transactions: pd.DataFrame) -> pd.DataFrame:
    """Simulated (customer_id, day number, spend) as build_clv's transactions from 2020-01-01."""
    start = dt.date(2020, 1, 1)
    return pd.DataFrame(
        {
            "customer_id": transactions["customer_id"],
            "day": [start + dt.timedelta(days=int(d)) for d in transactions["day"]],
            "units": 1,
            "dollars": transactions["spend"],
        }
    )


def expected_validation(transactions: pd.DataFrame, cut: int, horizon: int) -> pd.DataFrame:
    """The naive baseline and the holdout actuals, computed here from the simulation: per
    customer with a purchase before the cut, frequency / t x horizon and the holdout's
    purchase days and revenue."""
    days = transactions.groupby(["customer_id", "day"], as_index=False)["spend"].sum()
    before = days[days["day"] < cut].groupby("customer_id")["day"].agg(["min", "size"])
    holdout = days[(days["day"] >= cut) & (days["day"] < cut + horizon)].groupby("customer_id")
    out = pd.DataFrame(
        {
            "frequency": before["size"] - 1,
            "t": cut - 1 - before["min"],
        }
    )
    out["baseline_purchases"] = np.where(
        out["t"] > 0, out["frequency"] / out["t"].clip(lower=1) * horizon, 0.0
    )
    out["actual_purchases"] = holdout["day"].size().reindex(out.index).fillna(0)
    out["actual_revenue"] = holdout["spend"].sum().reindex(out.index).fillna(0.0)
    return out


# The simulations run from day 0 (2020-01-01) to day 454: as_of_date is day 455, the
# validation's cut day 365 (clv_horizon_days 90).
AS_OF_DAY_455 = str(dt.date(2020, 1, 1) + dt.timedelta(days=455))


def simulate_dropout(customers: int, seed: int) -> pd.DataFrame:
    """Pareto/NBD customers who drop out fast: purchase rate ~ Gamma(1, 20 days), lifetime ~
    Exp(mu), mu ~ Gamma(2, 100 days): most lapse within the year, many before a repeat
    purchase (which BG/NBD cannot see); first purchases over the first 300 days, observed for
    455; Gamma-Gamma spend."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(1, customers + 1):
        lam, mu = rng.gamma(1.0, 1 / 20.0), rng.gamma(2.0, 1 / 100.0)
        nu = rng.gamma(4.0, 1 / 15.0)
        at = rng.uniform(0, 300)
        death = at + rng.exponential(1 / mu)
        while at < min(death, 455):
            rows.append((customer, int(at), round(rng.gamma(6.0, 1 / nu), 2) + 0.01))
            at += rng.exponential(1 / lam)
    return pd.DataFrame(rows, columns=["customer_id", "day", "spend"])


def simulate_regular(customers: int, seed: int) -> pd.DataFrame:
    """Clockwork customers: each buys every 3, 7, 30 or 60 days at a fixed spend, half of them
    from the start, half from a later day, none ever stops; no Poisson process, no dropout."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(1, customers + 1):
        every = int(rng.choice([3, 7, 30, 60]))
        start = int(rng.integers(0, 400)) if rng.random() < 0.5 else int(rng.integers(0, every))
        spend = round(float(rng.uniform(5, 200)), 2)
        rows += [(customer, day, spend) for day in range(start, 455, every)]
    return pd.DataFrame(rows, columns=["customer_id", "day", "spend"])


def check_validation(build: DbtResult, transactions: pd.DataFrame) -> pd.DataFrame:
    """The holdout actuals and the naive baseline match the simulation; the summary's errors
    are those of the customer rows. Returns the summary by model."""
    expected = expected_validation(transactions, 365, 90)
    rows = build.df("select * from marts.clv_validation_customers")
    baseline = rows[rows["model"] == "naive_baseline"].set_index("customer_id").sort_index()
    assert list(baseline.index) == list(expected.index)
    assert (baseline["actual_purchases"] == expected["actual_purchases"]).all()
    assert np.allclose(baseline["actual_revenue"], expected["actual_revenue"])
    assert np.allclose(baseline["predicted_purchases"], expected["baseline_purchases"])
    summary = build.df("select * from marts.clv_validation_summary").set_index("model")
    for model, mine in rows.groupby("model"):
        error = (mine["predicted_revenue"] - mine["actual_revenue"]).abs().mean()
        assert np.isclose(summary.loc[model, "mae_revenue"], error)
    return summary


def test_a_model_with_dropout_beats_bg_nbd_where_customers_drop_out_and_is_selected(tmp_path):
    transactions = simulate_dropout(1500, seed=3)
    build = build_clv(tmp_path, day_lines(transactions), AS_OF_DAY_455)
    summary = check_validation(build, transactions)
    [selected] = summary.index[summary["is_selected"]].tolist()
    assert selected in ("mbg_nbd", "pareto_nbd")
    mae = summary["mae_revenue"]
    assert mae[selected] < 0.95 * mae["bg_nbd"]
    assert mae[selected] < 0.5 * mae["naive_baseline"]
    assert summary["selection_rule"].nunique() == 1
    values = build.df("select * from marts.customer_lifetime_value")
    assert values["model"].unique().tolist() == [selected]
    assert values["p_alive"].notna().all() and values["p_alive"].mean() < 0.6
    flagged = build.query("select distinct model from marts.clv_model where is_selected")
    assert sorted(m for (m,) in flagged) == sorted([selected, "gamma_gamma"])


def test_the_baseline_wins_where_purchases_are_regular_and_is_selected(tmp_path):
    transactions = simulate_regular(1200, seed=5)
    build = build_clv(tmp_path, day_lines(transactions), AS_OF_DAY_455)
    summary = check_validation(build, transactions)
    assert summary.index[summary["is_selected"]].tolist() == ["naive_baseline"]
    mae = summary["mae_revenue"]
    for model in ("bg_nbd", "mbg_nbd", "pareto_nbd"):
        assert mae["naive_baseline"] < 0.8 * mae[model]
    values = build.df("select * from marts.customer_lifetime_value").set_index("customer_id")
    assert values["model"].unique().tolist() == ["naive_baseline"]
    assert values["p_alive"].isna().all()
    # the published figures are the baseline's: the past rate over the horizon, computed here
    expected = expected_validation(transactions, 455, 90)  # at as_of_date, day 455
    assert np.allclose(values["expected_purchases"].sort_index(), expected["baseline_purchases"])
    assert build.query("select count(*) from marts.clv_model where is_selected") == [(0,)]
