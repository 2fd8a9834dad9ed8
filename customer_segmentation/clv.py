"""Customer lifetime value: candidate models fitted by maximum likelihood, scored on a holdout,
and the selected one's predictions.

The candidates are three transaction models of pymc-marketing (BG/NBD, MBG/NBD, Pareto/NBD),
each with Gamma-Gamma for spend, and two baselines that repeat each customer's past rate (the
seasonal one scaled by last year's same window). The fits use flat priors (HalfFlat on every
parameter), so the MAP as `pymc.find_MAP` finds it (without the log-transform's Jacobian) is
the maximum likelihood fit the literature publishes; standard errors come from the Hessian
of the log-likelihood at the optimum. The SQL models hold the summaries, the cuts and the
selection (clv_validation_summary); Python fits and scores. Method and figures: docs/clv.md.
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
from customer_segmentation.segmentation.features import sample_positions
from customer_segmentation.segmentation.threads import import_modules, single_threaded

# The transaction models: pymc-marketing class name and parameters, in the order of the
# candidates below (the simplest first).
TRANSACTION_MODELS = {
    "bg_nbd": ("BetaGeoModel", ("r", "alpha", "a", "b")),
    "mbg_nbd": ("ModifiedBetaGeoModel", ("r", "alpha", "a", "b")),
    "pareto_nbd": ("ParetoNBDModel", ("r", "alpha", "s", "beta")),
}
BASELINES = ("naive_baseline", "seasonal_baseline")
# Every candidate, simplest first: a tie in the selection goes to the earlier one
# (clv_validation_summary.sql writes the same order).
CANDIDATES = (*BASELINES, *TRANSACTION_MODELS)
# pymc-marketing names the Gamma-Gamma scale v; the paper (Fader & Hardie 2013) calls it gamma.
GAMMA_GAMMA_PARAMETERS = {"p": "p", "q": "q", "gamma": "v"}
SUMMARY_COLUMNS = ["customer_id", "frequency", "recency", "t", "monetary_value"]
# The fits run in pytensor (C code) and scipy's L-BFGS-B; scipy's BLAS is limited to one thread.
# Imported through segmentation.threads.import_modules, one thread at a time: pymc-marketing
# imports scikit-learn, which the segmentation models import in other dbt threads.
FIT_MODULES = ("scipy.optimize", "pymc_marketing.clv", "pymc_extras.prior")
FREQUENCY_BUCKETS = 7  # bucket 7 holds frequency 7 and above
# Each model is fitted on all customers up to this many, else on a deterministic sample of
# them (segmentation.features.sample_positions); predictions are made for every customer, and
# the standard errors say what the sample costs. BG/NBD took 24.5 s on 788,252 customers.
FIT_CUSTOMERS = 50_000
# Pareto/NBD's likelihood holds Gauss hypergeometric functions 2F1(.; .; z) with z = |alpha -
# beta| / (max(alpha, beta) + t): their gradient is a series whose terms fall like z^n, so it
# slows as the scales part. On 10,000 customers one gradient took 0.2 s at beta = 5-10 alpha,
# 0.6 s at 20 alpha, 1.6 s at 60 alpha (and a fit that wandered to beta = 175 alpha took 13 s
# on 482 customers). So Pareto/NBD is fitted on at most PARETO_FIT_CUSTOMERS customers, and
# alpha and beta are bounded at PARETO_SCALE_BOUND x BG/NBD's alpha: with the dropout shape
# s -> 0 (no dropout) any beta gives the same likelihood, so the bound binds only there.
PARETO_FIT_CUSTOMERS = 10_000
PARETO_SCALE_BOUND = 20.0
# L-BFGS-B evaluations at most per fit: a fit walking along a flat ridge stops.
MAX_EVALUATIONS = 200
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


def _model_class(name: str):
    import pymc_marketing.clv as clv_models

    return getattr(clv_models, TRANSACTION_MODELS[name][0])


@contextmanager
def _pymc_block() -> Iterator[None]:
    """One fit or prediction at a time (see _PYMC_LOCK), on one BLAS thread, without the
    warnings pymc-marketing gives about its experimental API and MAP's missing uncertainty.
    FIT_MODULES are imported first (single_threaded)."""
    import pytensor

    # traceback__limit 0: no stack trace kept on each graph node (for error messages), which
    # took a third of the time a fit spends building its gradient's graph
    with (
        _PYMC_LOCK,
        warnings.catch_warnings(),
        single_threaded(*FIT_MODULES),
        pytensor.config.change_flags(traceback__limit=0),
    ):
        warnings.simplefilter("ignore")
        yield


def fit_sample(frame: pd.DataFrame, size: int = FIT_CUSTOMERS) -> pd.DataFrame:
    """The customers a model is fitted on: all up to `size`, else a deterministic sample."""
    return frame.iloc[sample_positions(frame["customer_id"].to_numpy(), size)]


def _maximum_likelihood(
    clv_model,
    frame: pd.DataFrame,
    names: list[str],
    start: dict[str, float] | None = None,
    upper: dict[str, float] | None = None,
) -> tuple:
    """Fit by L-BFGS-B on the log-likelihood (flat priors, no Jacobian: the MLE) from `start`
    (log values) within the `upper` bounds (log values) where given, as `pymc.find_MAP` does;
    values, standard errors and log-likelihood.

    One pytensor function gives the log-likelihood and its gradient to the optimizer and to
    the Hessian: building and compiling the gradient is most of a fit's time below a few
    thousand customers, so it is done once (find_MAP would compile functions of its own)."""
    from scipy.optimize import minimize

    clv_model.build_model(frame)
    model = clv_model.model
    value_vars = list(model.continuous_value_vars)
    order = [var.name for var in value_vars]
    point = model.initial_point(random_seed=0)
    point.update({name: np.asarray(value, dtype=float) for name, value in (start or {}).items()})
    both = model.compile_fn(
        [model.logp(jacobian=False), model.dlogp(jacobian=False)],
        inputs=value_vars,
        point_fn=False,
    )

    def logp_dlogp(x: np.ndarray) -> tuple[float, np.ndarray]:
        logp, dlogp = both(*x)
        return float(logp), np.asarray(dlogp, dtype=float)

    # find_MAP's cost function: the negative log-likelihood and gradient; the last point with
    # a finite gradient is the answer when the evaluations run out (MAX_EVALUATIONS).
    evaluations, last_finite = 0, None

    def cost(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations, last_finite
        logp, dlogp = logp_dlogp(x)
        if np.all(np.isfinite(dlogp)):
            last_finite = x
        if evaluations > MAX_EVALUATIONS:
            raise StopIteration
        evaluations += 1
        return -logp, -dlogp

    x0 = np.array([float(point[name]) for name in order])
    bounds = [(None, upper.get(name)) for name in order] if upper else None
    try:
        x = minimize(cost, x0, method="L-BFGS-B", jac=True, bounds=bounds)["x"]
    except StopIteration:
        x = last_finite
    # The value vars are log(parameter); at the optimum the Hessian in log space is
    # diag(theta) H diag(theta), so cov(theta) = diag(theta) inv(-H_log) diag(theta).
    # Central differences of the analytic gradient (an analytic Hessian took 6 s to compile
    # per fit); in log space a step of 1e-5 is exact to ~1e-9.
    step = 1e-5
    info = np.empty((len(order), len(order)))
    for i in range(len(order)):
        shift = np.zeros(len(order))
        shift[i] = step
        info[i] = -(logp_dlogp(x + shift)[1] - logp_dlogp(x - shift)[1]) / (2 * step)
    info = (info + info.T) / 2
    theta = np.exp(x)
    params = {
        name.removesuffix("_log__"): float(value) for name, value in zip(order, theta, strict=True)
    }
    # at a boundary optimum (a or s -> 0 when nobody seems to drop out) the information is
    # singular: no standard error there
    try:
        cov = np.linalg.inv(info) * np.outer(theta, theta)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
    errors = {
        name.removesuffix("_log__"): float(np.sqrt(cov[i, i]))
        if cov[i, i] > 0 and np.isfinite(cov[i, i])
        else None
        for i, name in enumerate(order)
    }
    return {name: params[name] for name in names}, errors, logp_dlogp(x)[0]


def fit_transaction_model(name: str, frame: pd.DataFrame, start: Fit | None = None) -> Fit:
    """One transaction model by maximum likelihood on frequency, recency, T of the fit sample.
    Pareto/NBD starts from a BG/NBD fit's purchase process (r, alpha) when one is given, within
    the bounds of PARETO_SCALE_BOUND: its likelihood costs most per evaluation, and the start
    halved the evaluations."""
    started = time.perf_counter()
    names = list(TRANSACTION_MODELS[name][1])
    size = PARETO_FIT_CUSTOMERS if name == "pareto_nbd" else FIT_CUSTOMERS
    data = fit_sample(frame, size)[["customer_id", "frequency", "recency", "T"]]
    initial, upper = None, None
    if name == "pareto_nbd" and start is not None:
        r, alpha = start.values["r"], start.values["alpha"]
        initial = {
            "r_log__": np.log(r),
            "alpha_log__": np.log(alpha),
            "s_log__": 0.0,
            "beta_log__": np.log(alpha),
        }
        bound = float(np.log(PARETO_SCALE_BOUND * alpha))
        upper = {"alpha_log__": bound, "beta_log__": bound}
    with _pymc_block():
        model = _model_class(name)(model_config=_flat_config(names))
        values, errors, loglik = _maximum_likelihood(model, data, names, initial, upper)
    return Fit(name, values, errors, loglik, len(data), time.perf_counter() - started)


def fit_transaction_models(frame: pd.DataFrame) -> dict[str, Fit]:
    """Every transaction model, in the order of TRANSACTION_MODELS."""
    fits: dict[str, Fit] = {}
    for name in TRANSACTION_MODELS:
        fits[name] = fit_transaction_model(name, frame, fits.get("bg_nbd"))
    return fits


def gamma_gamma_customers(frame: pd.DataFrame) -> pd.DataFrame:
    """The customers Gamma-Gamma is fitted on: repeat customers with a positive spend."""
    return frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]


def fit_gamma_gamma(frame: pd.DataFrame) -> Fit:
    """Gamma-Gamma (Fader & Hardie 2013) by maximum likelihood on repeat customers' spend."""
    import_modules(*FIT_MODULES)
    from pymc_marketing.clv import GammaGammaModel

    started = time.perf_counter()
    data = fit_sample(gamma_gamma_customers(frame))[["customer_id", "frequency", "monetary_value"]]
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


CLV_MODEL_SCHEMA = pa.schema(
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
        ("is_selected", pa.bool_()),
        ("selected_model", pa.string()),
    ]
)


def clv_model_table(fits: list[Fit], correlation: float | None, selected: str | None) -> pa.Table:
    """One row per fitted parameter, with the fit's statistics on every row of its model;
    is_selected on the rows customer_lifetime_value uses (the selected transaction model and
    Gamma-Gamma; none when a baseline was selected)."""
    uses_fits = selected in TRANSACTION_MODELS
    rows = []
    for fit in fits:
        names = (
            TRANSACTION_MODELS[fit.model][1]
            if fit.model in TRANSACTION_MODELS
            else (tuple(GAMMA_GAMMA_PARAMETERS))
        )
        for name in names:
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
                    "is_selected": uses_fits and fit.model in (selected, "gamma_gamma"),
                    "selected_model": selected,
                }
            )
    return pa.Table.from_pylist(rows, schema=CLV_MODEL_SCHEMA)


def selected_candidate(validation_summary) -> str | None:
    """The candidate clv_validation_summary selected (None when it has no row)."""
    picked = [
        row["model"]
        for row in validation_summary.select(["model", "is_selected"]).to_pylist()
        if row["is_selected"]
    ]
    if len(picked) > 1 or any(m not in CANDIDATES for m in picked):
        raise ValueError(f"clv_validation_summary must select one known candidate, found {picked}")
    return picked[0] if picked else None


def clv_model(summary, validation_summary) -> pa.Table:
    """The clv_model mart: every transaction model and Gamma-Gamma fitted on the lifetime
    summary, one row per parameter, the selected candidate's rows flagged; empty when the
    customers cannot be fitted (`can_fit`)."""
    selected = selected_candidate(validation_summary)
    frame = summary_frame(summary)
    if not can_fit(frame):
        return clv_model_table([], None, selected)
    fits = [*fit_transaction_models(frame).values(), fit_gamma_gamma(frame)]
    return clv_model_table(fits, frequency_monetary_correlation(frame), selected)


def can_fit(frame: pd.DataFrame) -> bool:
    """The fits need repeat customers, and Gamma-Gamma two spends that differ. With fewer (a
    handful of customers, or a history shorter than the horizon) no model is fitted and the
    baselines are the only candidates."""
    return gamma_gamma_customers(frame)["monetary_value"].nunique() >= 2


def fits_from_table(table) -> dict[str, dict[str, float]]:
    """The parameter values of a clv_model table, by model."""
    values: dict[str, dict[str, float]] = {}
    for row in table.select(["model", "parameter", "value"]).to_pylist():
        values.setdefault(row["model"], {})[row["parameter"]] = row["value"]
    return values


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
    p_alive: np.ndarray | None  # None for a baseline: it has no notion of dropout
    expected_purchases: np.ndarray
    expected_avg_order_value: np.ndarray
    clv: np.ndarray | None

    def finite(self) -> bool:
        """Every prediction is a number: a fit at the edge of its parameter space (a handful
        of customers) can give none, and then no prediction is written."""
        arrays = [self.expected_purchases, self.expected_avg_order_value]
        arrays += [a for a in (self.p_alive, self.clv) if a is not None]
        return all(np.isfinite(a).all() for a in arrays)


def monthly_discount(annual_rate: float) -> float:
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def predict(
    frame: pd.DataFrame,
    model: str,
    model_values: dict[str, float],
    gg_values: dict[str, float],
    horizon_days: int,
    lifetime_months: int | None = None,
    annual_rate: float = 0.0,
) -> Predictions:
    """p_alive, expected purchases over the horizon, expected spend per purchase day, CLV of one
    transaction model with Gamma-Gamma, by the models' own formulas.

    CLV = sum over months m = 1..M of spend x (E[X(30 m)] - E[X(30 (m - 1))]) / (1 + d)^m with
    d = (1 + annual rate)^(1/12) - 1 (pymc-marketing's customer_lifetime_value, time unit D).
    """
    import_modules(*FIT_MODULES)
    from pymc_marketing.clv import GammaGammaModel, customer_lifetime_value

    data = frame.copy()
    names = TRANSACTION_MODELS[model][1]
    with _pymc_block():
        transactions = _fitted(
            _model_class(model),
            names,
            data[["customer_id", "frequency", "recency", "T"]],
            model_values,
        )
        gg = _fitted(
            GammaGammaModel,
            GAMMA_GAMMA_PARAMETERS.values(),
            gamma_gamma_customers(data)[["customer_id", "frequency", "monetary_value"]],
            {GAMMA_GAMMA_PARAMETERS[k]: v for k, v in gg_values.items()},
        )
        p_alive = _flat(transactions.expected_probability_alive(data))
        purchases = _flat(transactions.expected_purchases(data, future_t=horizon_days))
        spend = _flat(gg.expected_customer_spend(data))
        clv = None
        if lifetime_months is not None:
            clv = _flat(
                customer_lifetime_value(
                    transactions,
                    data.assign(future_spend=spend),
                    future_t=lifetime_months,
                    discount_rate=monthly_discount(annual_rate),
                    time_unit="D",
                )
            )
    return Predictions(np.clip(p_alive, 0.0, 1.0), purchases, spend, clv)


def daily_rate(frame: pd.DataFrame) -> np.ndarray:
    """Each customer's past rate of repeat purchase days: frequency / t (0 when t = 0, where
    frequency is 0 too)."""
    t = frame["T"].to_numpy()
    return np.divide(frame["frequency"].to_numpy(), t, out=np.zeros(len(frame)), where=t > 0)


def predict_baseline(
    frame: pd.DataFrame,
    horizon_days: int,
    seasonal_ratio: float = 1.0,
    lifetime_months: int | None = None,
    annual_rate: float = 0.0,
) -> Predictions:
    """The baselines: the customer's past daily rate over the horizon (times last year's
    same-window ratio for the seasonal one) at the customer's own mean spend. Over a lifetime
    of whole months the rate is the past rate (a year's seasons average out): 30 days a month,
    discounted as the models' CLV."""
    rate = daily_rate(frame)
    spend = frame["monetary_value"].to_numpy(dtype=float)
    clv = None
    if lifetime_months is not None:
        months = np.arange(1, lifetime_months + 1)
        factor = float(np.sum(30.0 / (1.0 + monthly_discount(annual_rate)) ** months))
        clv = rate * spend * factor
    return Predictions(None, rate * horizon_days * seasonal_ratio, spend, clv)


def predict_candidate(
    frame: pd.DataFrame,
    candidate: str,
    fits: dict[str, dict[str, float]],
    seasonal_ratio: float | None,
    horizon_days: int,
    lifetime_months: int | None = None,
    annual_rate: float = 0.0,
) -> Predictions | None:
    """One candidate's predictions; None when it cannot predict (no fit, no seasonal ratio)."""
    if candidate == "naive_baseline":
        return predict_baseline(frame, horizon_days, 1.0, lifetime_months, annual_rate)
    if candidate == "seasonal_baseline":
        if seasonal_ratio is None:
            return None
        return predict_baseline(frame, horizon_days, seasonal_ratio, lifetime_months, annual_rate)
    if candidate not in fits or "gamma_gamma" not in fits:
        return None
    pred = predict(
        frame,
        candidate,
        fits[candidate],
        fits["gamma_gamma"],
        horizon_days,
        lifetime_months,
        annual_rate,
    )
    return pred if pred.finite() else None


def seasonal_ratio(ratios, window: str) -> float | None:
    """The ratio of int_clv_seasonal_ratios for `window` (validation or forecast), if any."""
    for row in ratios.select(["window_kind", "seasonal_ratio"]).to_pylist():
        if row["window_kind"] == window:
            return row["seasonal_ratio"]
    return None


LIFETIME_VALUE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("model", pa.string()),
        ("frequency", pa.int64()),
        ("recency", pa.int64()),
        ("t", pa.int64()),
        ("monetary_value", pa.float64()),
        ("p_alive", pa.float64()),
        ("expected_purchases", pa.float64()),
        ("expected_avg_order_value", pa.float64()),
        ("expected_revenue", pa.float64()),
        ("clv", pa.float64()),
        ("clv_rank", pa.int64()),
    ]
)


def customer_lifetime_value_table(
    summary,
    clv_model,
    validation_summary,
    ratios,
    horizon_days: object,
    lifetime_months: object,
    rate: object,
) -> pa.Table:
    """One row per customer of the summary: the selected candidate's predictions over the
    horizon, CLV and its rank; empty when nothing was selected or it cannot predict."""
    horizon, months, annual = checked_settings(horizon_days, lifetime_months, rate)
    selected = selected_candidate(validation_summary)
    frame = summary_frame(summary)
    pred = None
    if selected is not None:
        pred = predict_candidate(
            frame,
            selected,
            fits_from_table(clv_model),
            seasonal_ratio(ratios, "forecast"),
            horizon,
            months,
            annual,
        )
    if pred is None:
        return LIFETIME_VALUE_SCHEMA.empty_table()
    clv = pred.clv if pred.clv is not None else np.zeros(len(frame))
    # rank 1 = highest CLV; a tie goes to the smaller customer id
    ids = frame["customer_id"].to_numpy(dtype=np.int64)
    order = np.lexsort((ids, -clv))
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(1, len(frame) + 1)
    p_alive = pa.nulls(len(frame), pa.float64()) if pred.p_alive is None else pred.p_alive
    return pa.table(
        {
            "customer_id": ids,
            "model": pa.array([selected] * len(frame), pa.string()),
            "frequency": frame["frequency"].to_numpy().astype(np.int64),
            "recency": frame["recency"].to_numpy().astype(np.int64),
            "t": frame["T"].to_numpy().astype(np.int64),
            "monetary_value": frame["monetary_value"].to_numpy(),
            "p_alive": p_alive,
            "expected_purchases": pred.expected_purchases,
            "expected_avg_order_value": pred.expected_avg_order_value,
            "expected_revenue": pred.expected_purchases * pred.expected_avg_order_value,
            "clv": clv,
            "clv_rank": rank,
        },
        schema=LIFETIME_VALUE_SCHEMA,
    )


VALIDATION_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("model", pa.string()),
        ("frequency", pa.int64()),
        ("frequency_bucket", pa.int64()),
        ("is_short_history", pa.bool_()),
        ("p_alive", pa.float64()),
        ("predicted_purchases", pa.float64()),
        ("actual_purchases", pa.int64()),
        ("predicted_revenue", pa.float64()),
        ("actual_revenue", pa.float64()),
    ]
)


def clv_validation_customers(calibration, ratios, horizon_days: object) -> pa.Table:
    """Every candidate refitted on the calibration summary (the transaction models when the
    customers can be fitted, the seasonal baseline when last year's window is in the data):
    per customer and candidate, predicted vs actual holdout purchase days and revenue."""
    horizon, _, _ = checked_settings(horizon_days, 12, 0.0)
    table = calibration.select(
        [*SUMMARY_COLUMNS, "holdout_purchase_days", "holdout_revenue"]
    ).to_pandas()
    table = table.sort_values("customer_id", kind="stable").reset_index(drop=True)
    frame = summary_frame(pa.Table.from_pandas(table[SUMMARY_COLUMNS], preserve_index=False))
    fits: dict[str, dict[str, float]] = {}
    if can_fit(frame):
        fits = {name: fit.values for name, fit in fit_transaction_models(frame).items()}
        fits["gamma_gamma"] = fit_gamma_gamma(frame).values
    ratio = seasonal_ratio(ratios, "validation")
    frequency = table["frequency"].to_numpy().astype(np.int64)
    common = {
        "customer_id": table["customer_id"].to_numpy().astype(np.int64),
        "frequency": frequency,
        "frequency_bucket": np.minimum(frequency, FREQUENCY_BUCKETS),
        "is_short_history": table["t"].to_numpy() < horizon,
        "actual_purchases": table["holdout_purchase_days"].to_numpy().astype(np.int64),
        "actual_revenue": table["holdout_revenue"].to_numpy().astype(np.float64),
    }
    parts = []
    for candidate in CANDIDATES:
        pred = predict_candidate(frame, candidate, fits, ratio, horizon)
        if pred is None:
            continue
        n = len(frame)
        parts.append(
            pa.table(
                {
                    **common,
                    "model": pa.array([candidate] * n, pa.string()),
                    "p_alive": pa.nulls(n, pa.float64()) if pred.p_alive is None else pred.p_alive,
                    "predicted_purchases": pred.expected_purchases,
                    "predicted_revenue": pred.expected_purchases * pred.expected_avg_order_value,
                }
            )
            .select(VALIDATION_SCHEMA.names)
            .cast(VALIDATION_SCHEMA)
        )
    return pa.concat_tables(parts) if parts else VALIDATION_SCHEMA.empty_table()
