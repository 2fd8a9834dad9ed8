"""Customer lifetime value: BG/NBD and Gamma-Gamma fitted by maximum likelihood, predictions.

The fits use pymc-marketing's `clv` models with flat priors (HalfFlat on every parameter), so
the MAP it finds (`pymc.find_MAP`, which drops the log-transform's Jacobian) is the maximum
likelihood fit the literature publishes. Standard errors come from the Hessian of the
log-likelihood at the optimum (central differences of pytensor's analytic gradient).
Predictions use the models' own formulas. The inputs are the per-customer summaries of the SQL
models (macros/lifetime_summary.sql); time unit days. Method and figures: docs/clv.md.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from customer_segmentation import var_spec
from customer_segmentation.segmentation.threads import single_threaded

BG_NBD_PARAMETERS = ("r", "alpha", "a", "b")
# pymc-marketing names the Gamma-Gamma scale v; the paper (Fader & Hardie 2013) calls it gamma.
GAMMA_GAMMA_PARAMETERS = {"p": "p", "q": "q", "gamma": "v"}
SUMMARY_COLUMNS = ["customer_id", "frequency", "recency", "t", "monetary_value"]
# The fits run in pytensor (C code) and scipy's L-BFGS-B; scipy's BLAS is limited to one thread.
FIT_MODULES = ("scipy.optimize",)
FREQUENCY_BUCKETS = 7  # bucket 7 holds frequency 7 and above
# dbt runs Python models side by side in threads of one process; pytensor's config flags
# (changed temporarily while pymc builds and compiles a model) are process-wide, so a fit
# that ran beside another failed ("Cannot sample from half_flat variable"). One at a time.
_PYMC_LOCK = threading.Lock()


@dataclass(frozen=True)
class Fit:
    """One fitted model: parameter values and standard errors by name, and fit statistics."""

    model: str
    values: dict[str, float]
    standard_errors: dict[str, float | None]
    log_likelihood: float
    customers: int
    seconds: float


def checked_settings(horizon_days: object, lifetime_months: object, rate: object) -> tuple:
    """The three CLV vars, checked against the var spec (dbt checked them too)."""
    var_spec.check("clv_horizon_days", horizon_days, {})
    var_spec.check("clv_lifetime_months", lifetime_months, {})
    var_spec.check("clv_annual_discount_rate", rate, {})
    return int(horizon_days), int(lifetime_months), float(rate)  # type: ignore[arg-type]


def summary_frame(table) -> pd.DataFrame:
    """The summary columns as the pymc-marketing frame (T is its name for t), sorted by id."""
    frame = pd.DataFrame(
        {name: table.column(name).to_numpy(zero_copy_only=False) for name in SUMMARY_COLUMNS}
    )
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return frame.astype(
        {"frequency": "float64", "recency": "float64", "t": "float64", "monetary_value": "float64"}
    ).rename(columns={"t": "T"})


def _flat_config(names) -> dict:
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in names}


@contextmanager
def _pymc_block() -> Iterator[None]:
    """One fit or prediction at a time (see _PYMC_LOCK), on one BLAS thread, without the
    warnings pymc-marketing gives about its experimental API and MAP's missing uncertainty."""
    with _PYMC_LOCK, warnings.catch_warnings(), single_threaded(*FIT_MODULES):
        warnings.simplefilter("ignore")
        yield


def _maximum_likelihood(clv_model, frame: pd.DataFrame, names: list[str]) -> tuple:
    """Fit by MAP with flat priors (= MLE); values, standard errors and log-likelihood."""
    clv_model.fit(data=frame, method="map", progressbar=False, seed=0)
    model = clv_model.model
    point = {k: v for k, v in clv_model.idata.posterior.items()}
    value_vars = list(model.continuous_value_vars)
    start = {var.name: None for var in value_vars}
    params = {name: float(np.asarray(point[name]).reshape(-1)[0]) for name in names}
    # The value vars are log(parameter); at the optimum the Hessian in log space is
    # diag(theta) H diag(theta), so cov(theta) = diag(theta) inv(-H_log) diag(theta).
    for var in value_vars:
        base = var.name.removesuffix("_log__")
        start[var.name] = np.log(params[base])
    logp = model.compile_logp(jacobian=False)
    # Central differences of pytensor's analytic gradient: compiling the analytic Hessian
    # took 6 s per fit, the gradient under 1 s; in log space a step of 1e-5 is exact to ~1e-9.
    dlogp = model.compile_dlogp(vars=None, jacobian=False)
    step = 1e-5
    info = np.empty((len(value_vars), len(value_vars)))
    for i, var in enumerate(value_vars):
        up = {**start, var.name: start[var.name] + step}
        down = {**start, var.name: start[var.name] - step}
        info[i] = -(np.asarray(dlogp(up)) - np.asarray(dlogp(down))) / (2 * step)
    info = (info + info.T) / 2
    cov_log = np.linalg.inv(info)
    order = [var.name.removesuffix("_log__") for var in value_vars]
    theta = np.array([params[name] for name in order])
    cov = cov_log * np.outer(theta, theta)
    # at a boundary optimum (a -> 0 when nobody seems to drop out) the information is
    # singular: no standard error there
    errors = {
        name: float(np.sqrt(cov[i, i])) if cov[i, i] > 0 and np.isfinite(cov[i, i]) else None
        for i, name in enumerate(order)
    }
    return params, errors, float(logp(start))


def fit_bg_nbd(frame: pd.DataFrame) -> Fit:
    """BG/NBD (Fader, Hardie & Lee 2005) by maximum likelihood on frequency, recency, T."""
    from pymc_marketing.clv import BetaGeoModel

    started = time.perf_counter()
    data = frame[["customer_id", "frequency", "recency", "T"]]
    with _pymc_block():
        bg = BetaGeoModel(model_config=_flat_config(BG_NBD_PARAMETERS))
        values, errors, loglik = _maximum_likelihood(bg, data, list(BG_NBD_PARAMETERS))
    return Fit("bg_nbd", values, errors, loglik, len(data), time.perf_counter() - started)


def gamma_gamma_customers(frame: pd.DataFrame) -> pd.DataFrame:
    """The customers Gamma-Gamma is fitted on: repeat customers with a positive spend."""
    return frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]


def fit_gamma_gamma(frame: pd.DataFrame) -> Fit:
    """Gamma-Gamma (Fader & Hardie 2013) by maximum likelihood on repeat customers' spend."""
    from pymc_marketing.clv import GammaGammaModel

    started = time.perf_counter()
    data = gamma_gamma_customers(frame)[["customer_id", "frequency", "monetary_value"]]
    names = list(GAMMA_GAMMA_PARAMETERS.values())
    with _pymc_block():
        gg = GammaGammaModel(model_config=_flat_config(names))
        values, errors, loglik = _maximum_likelihood(gg, data, names)
    rename = {v: k for k, v in GAMMA_GAMMA_PARAMETERS.items()}
    return Fit(
        "gamma_gamma",
        {rename[k]: v for k, v in values.items()},
        {rename[k]: v for k, v in errors.items()},
        loglik,
        len(data),
        time.perf_counter() - started,
    )


def frequency_monetary_correlation(frame: pd.DataFrame) -> float | None:
    """Pearson correlation of frequency and monetary value over Gamma-Gamma's customers."""
    data = gamma_gamma_customers(frame)
    if len(data) < 2 or data["frequency"].nunique() < 2 or data["monetary_value"].nunique() < 2:
        return None
    return float(np.corrcoef(data["frequency"], data["monetary_value"])[0, 1])


def clv_model_table(bg: Fit | None, gg: Fit | None, correlation: float | None) -> pa.Table:
    """One row per fitted parameter, with the fit's statistics on every row of its model (no
    row for a model not fitted)."""
    rows = []
    for fit, names in ((bg, BG_NBD_PARAMETERS), (gg, tuple(GAMMA_GAMMA_PARAMETERS))):
        for name in names if fit is not None else ():
            rows.append(
                {
                    "model": fit.model,
                    "parameter": name,
                    "value": fit.values[name],
                    "standard_error": fit.standard_errors[name],
                    "log_likelihood": fit.log_likelihood,
                    "customers": fit.customers,
                    "time_unit": "day",
                    "fit_seconds": round(fit.seconds, 3),
                    "frequency_monetary_correlation": (
                        correlation if fit.model == "gamma_gamma" else None
                    ),
                }
            )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("parameter", pa.string()),
            ("value", pa.float64()),
            ("standard_error", pa.float64()),
            ("log_likelihood", pa.float64()),
            ("customers", pa.int64()),
            ("time_unit", pa.string()),
            ("fit_seconds", pa.float64()),
            ("frequency_monetary_correlation", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def clv_model(summary) -> pa.Table:
    """The clv_model mart: both fits on the lifetime summary, one row per parameter; empty
    when the customers cannot be fitted (`can_fit`)."""
    frame = summary_frame(summary)
    if not can_fit(frame):
        return clv_model_table(None, None, None)
    return clv_model_table(
        fit_bg_nbd(frame), fit_gamma_gamma(frame), frequency_monetary_correlation(frame)
    )


def can_fit(frame: pd.DataFrame) -> bool:
    """The fits need repeat customers, and Gamma-Gamma two spends that differ. With fewer (a
    handful of customers, or a history shorter than the horizon) the lifetime-value marts are
    empty rather than failing the build: the other marts still build and publish."""
    return gamma_gamma_customers(frame)["monetary_value"].nunique() >= 2


def finite(pred: Predictions) -> bool:
    """Every prediction is a number: a fit at the edge of its parameter space (a handful of
    customers) can give none, and then no prediction is written."""
    arrays = [pred.p_alive, pred.expected_purchases, pred.expected_avg_order_value]
    arrays += [] if pred.clv is None else [pred.clv]
    return all(np.isfinite(a).all() for a in arrays)


def fits_from_table(table) -> tuple[dict[str, float], dict[str, float]]:
    """The BG/NBD and Gamma-Gamma parameter values of a clv_model table."""
    values: dict[str, dict[str, float]] = {"bg_nbd": {}, "gamma_gamma": {}}
    for row in table.select(["model", "parameter", "value"]).to_pylist():
        values[row["model"]][row["parameter"]] = row["value"]
    return values["bg_nbd"], values["gamma_gamma"]


def _fitted(model_class, config_names, frame: pd.DataFrame, values: dict[str, float]):
    """A pymc-marketing model holding the given parameter values as its one-draw fit."""
    import arviz as az

    clv_model = model_class(model_config=_flat_config(config_names))
    clv_model.build_model(frame)
    clv_model.idata = az.from_dict(
        posterior={name: np.array([[value]]) for name, value in values.items()}
    )
    return clv_model


def _flat(array) -> np.ndarray:
    return np.asarray(array, dtype=float).reshape(-1)


@dataclass(frozen=True)
class Predictions:
    p_alive: np.ndarray
    expected_purchases: np.ndarray
    expected_avg_order_value: np.ndarray
    clv: np.ndarray | None


def predict(
    frame: pd.DataFrame,
    bg_values: dict[str, float],
    gg_values: dict[str, float],
    horizon_days: int,
    lifetime_months: int | None = None,
    annual_rate: float = 0.0,
) -> Predictions:
    """p_alive, expected purchases over the horizon, expected spend per purchase day, CLV.

    CLV = sum over months m = 1..M of spend x (E[X(30 m)] - E[X(30 (m - 1))]) / (1 + d)^m with
    d = (1 + annual rate)^(1/12) - 1 (pymc-marketing's customer_lifetime_value, time unit D).
    """
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value

    data = frame.copy()
    with _pymc_block():
        bg = _fitted(
            BetaGeoModel,
            BG_NBD_PARAMETERS,
            data[["customer_id", "frequency", "recency", "T"]],
            bg_values,
        )
        gg = _fitted(
            GammaGammaModel,
            GAMMA_GAMMA_PARAMETERS.values(),
            gamma_gamma_customers(data)[["customer_id", "frequency", "monetary_value"]],
            {GAMMA_GAMMA_PARAMETERS[k]: v for k, v in gg_values.items()},
        )
        p_alive = _flat(bg.expected_probability_alive(data))
        purchases = _flat(bg.expected_purchases(data, future_t=horizon_days))
        spend = _flat(gg.expected_customer_spend(data))
        clv = None
        if lifetime_months is not None:
            monthly = (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0
            clv = _flat(
                customer_lifetime_value(
                    bg,
                    data.assign(future_spend=spend),
                    future_t=lifetime_months,
                    discount_rate=monthly,
                    time_unit="D",
                )
            )
    return Predictions(np.clip(p_alive, 0.0, 1.0), purchases, spend, clv)


def no_predictions(with_clv: bool) -> Predictions:
    empty = np.zeros(0)
    return Predictions(empty, empty, empty, empty if with_clv else None)


def customer_lifetime_value_table(
    summary, clv_model, horizon_days: object, lifetime_months: object, rate: object
) -> pa.Table:
    """One row per customer of the summary: predictions over the horizon, CLV and its rank."""
    horizon, months, annual = checked_settings(horizon_days, lifetime_months, rate)
    frame = summary_frame(summary)
    bg_values, gg_values = fits_from_table(clv_model)
    pred = None
    if bg_values and gg_values:
        pred = predict(frame, bg_values, gg_values, horizon, months, annual)
    if pred is None or not finite(pred):
        frame, pred = frame.iloc[0:0], no_predictions(with_clv=True)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("int64"),
            "frequency": frame["frequency"].astype("int64"),
            "recency": frame["recency"].astype("int64"),
            "t": frame["T"].astype("int64"),
            "monetary_value": frame["monetary_value"],
            "p_alive": pred.p_alive,
            "expected_purchases": pred.expected_purchases,
            "expected_avg_order_value": pred.expected_avg_order_value,
            "expected_revenue": pred.expected_purchases * pred.expected_avg_order_value,
            "clv": pred.clv,
        }
    )
    # rank 1 = highest CLV; a tie goes to the smaller customer id
    order = np.lexsort((out["customer_id"].to_numpy(), -out["clv"].to_numpy()))
    rank = np.empty(len(out), dtype=np.int64)
    rank[order] = np.arange(1, len(out) + 1)
    out["clv_rank"] = rank
    return pa.Table.from_pandas(out, preserve_index=False)


def clv_validation_customers(calibration, horizon_days: object) -> pa.Table:
    """Refit on the calibration summary; per customer predicted vs actual holdout figures.

    The baseline repeats each customer's past daily rate: frequency / t x horizon purchase
    days (0 when t = 0, where frequency is 0 too) at their own monetary value.
    """
    horizon, _, _ = checked_settings(horizon_days, 12, 0.0)
    table = calibration.to_pandas().sort_values("customer_id", kind="stable")
    frame = summary_frame(pa.Table.from_pandas(table[SUMMARY_COLUMNS], preserve_index=False))
    table = table.reset_index(drop=True)
    pred = None
    if can_fit(frame):
        pred = predict(frame, fit_bg_nbd(frame).values, fit_gamma_gamma(frame).values, horizon)
    if pred is None or not finite(pred):
        table, frame, pred = table.iloc[0:0], frame.iloc[0:0], no_predictions(with_clv=False)
    rate = np.divide(
        frame["frequency"].to_numpy(),
        frame["T"].to_numpy(),
        out=np.zeros(len(frame)),
        where=frame["T"].to_numpy() > 0,
    )
    baseline = rate * horizon
    out = pd.DataFrame(
        {
            "customer_id": table["customer_id"].astype("int64"),
            "calibration_end_date": table["calibration_end_date"],
            "holdout_end_date": table["holdout_end_date"],
            "frequency": table["frequency"].astype("int64"),
            "recency": table["recency"].astype("int64"),
            "t": table["t"].astype("int64"),
            "monetary_value": frame["monetary_value"],
            "frequency_bucket": np.minimum(table["frequency"], FREQUENCY_BUCKETS).astype("int64"),
            "is_short_history": table["t"] < horizon,
            "p_alive": pred.p_alive,
            "predicted_purchases": pred.expected_purchases,
            "actual_purchases": table["holdout_purchase_days"].astype("int64"),
            "predicted_revenue": pred.expected_purchases * pred.expected_avg_order_value,
            "actual_revenue": table["holdout_revenue"].astype("float64"),
            "baseline_purchases": baseline,
            "baseline_revenue": baseline * frame["monetary_value"].to_numpy(),
        }
    )
    return pa.Table.from_pandas(out, preserve_index=False)
