"""The re-order list: which of the products a customer has bought will they order again.

Two methods rank a customer's own past products: `most_ordered`, the personal baseline (the
products by past orders, the most recent first on a tie), and `reorder_timing`, a logistic
regression on how often, how regularly and how long ago the customer ordered the product,
fitted on the window before the one it predicts. The features are one SQL select over the
order products (`pair_features`): the fit reads them for a sample of customers, and the
ranking applies the fitted coefficients in DuckDB and keeps each customer's best, so the
millions of pairs of a large input never cross into Python. recommend.py holds the split,
the relations and the marts; method and measurements: docs/recommendations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from customer_segmentation.segmentation.threads import (
    KMEANS_MODULES,
    import_modules,
    single_threaded,
)

# In the order that breaks a tie in recall at k (the first, the simpler, wins).
REORDER_METHODS = ("most_ordered", "reorder_timing")
# reorder_timing is fitted on the pairs of at most this many customers (a deterministic
# sample): at about 80 products a customer, some 400,000 pairs, a second of L-BFGS.
REORDER_FIT_CUSTOMERS = 5_000
# The logistic regression's settings (scikit-learn, lbfgs): fixed, so the fit is the same.
REORDER_C = 1.0
REORDER_MAX_ITER = 1_000
# The features of a (customer, product) pair at a cut, as SQL over the columns of
# `pair_features`' pairs (logs tame the long tails; days are whole days before the cut).
FEATURES = {
    "log_orders": "ln(1 + orders)",
    "log_days_since_last": "ln(since_last)",
    "has_interval": "cast(orders >= 2 as double)",
    "log_overdue": "case when orders >= 2 then ln(since_last / interval_days) else 0 end",
    "log_interval": "case when orders >= 2 then ln(interval_days) else 0 end",
    "share_of_orders": "orders / customer_orders",
    "log_customer_orders": "ln(1 + customer_orders)",
    "log_customer_days_since_last": "ln(customer_since_last)",
    "log_popularity": "ln(coalesce(popularity, 0) + 1e-4)",
}


def _before(lines, cut: date):
    return lines.filter(f"invoiced_at < date '{cut.isoformat()}'")


def popularity(lines, cut: date):
    """Per product: the share of the customers of `lines` (with an order before the cut) who
    ordered it before the cut."""
    before = _before(lines, cut)
    [(customers,)] = before.aggregate("count(distinct customer_id)").fetchall()
    return before.aggregate(
        f"stock_code, count(distinct customer_id) / {max(int(customers), 1)} as popularity",
        "stock_code",
    ).set_alias("popularity")


def pair_features(lines, cut: date, shares, window_days: int | None = None):
    """One row per customer and product of `lines` (identified sale order products) ordered
    before `cut`: last_day (days since 1970-01-01 of the last order), orders, the FEATURES,
    and, when `window_days` is given, `ordered_after`: ordered again in [cut, cut +
    window_days)."""
    day = f"date '{cut.isoformat()}'"
    before = _before(lines, cut)
    pairs = before.aggregate(
        f"""customer_id, stock_code, count(*) as orders,
        date_diff('day', date '1970-01-01', max(cast(invoiced_at as date))) as last_day,
        greatest(date_diff('day', max(cast(invoiced_at as date)), {day}), 1) as since_last,
        greatest(
            date_diff('day', min(cast(invoiced_at as date)), max(cast(invoiced_at as date)))
            / greatest(count(*) - 1, 1),
            1) as interval_days""",
        "customer_id, stock_code",
    ).set_alias("pairs")
    customers = before.aggregate(
        f"""customer_id, count(distinct invoice_no) as customer_orders,
        greatest(date_diff('day', max(cast(invoiced_at as date)), {day}), 1)
            as customer_since_last""",
        "customer_id",
    ).set_alias("customers")
    joined = pairs.join(customers, "customer_id").join(shares, "stock_code", how="left")
    label = "false as ordered_after"
    if window_days is not None:
        end = (cut + timedelta(days=window_days)).isoformat()
        after = (
            lines.filter(f"invoiced_at >= {day} and invoiced_at < date '{end}'")
            .aggregate("customer_id, stock_code, true as ordered_after", "customer_id, stock_code")
            .set_alias("after")
        )
        joined = joined.join(after, "customer_id, stock_code", how="left")
        label = "coalesce(after.ordered_after, false) as ordered_after"
    features = ", ".join(f"cast({sql} as double) as {name}" for name, sql in FEATURES.items())
    return joined.select(
        f"pairs.customer_id, pairs.stock_code, pairs.last_day, pairs.orders, {features}, {label}"
    )


@dataclass(frozen=True)
class ReorderModel:
    """reorder_timing's fit: the logistic regression's weights on the raw FEATURES (the
    standardisation folded in) and intercept."""

    weights: np.ndarray
    intercept: float
    pairs: int

    def linear_sql(self) -> str:
        """The linear predictor as SQL over the FEATURES columns (17 significant digits: the
        doubles exactly)."""
        terms = [f"{float(w)!r} * {name}" for w, name in zip(self.weights, FEATURES, strict=True)]
        return f"({float(self.intercept)!r} + " + " + ".join(terms) + ")"

    def probability(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return expit(x @ self.weights + self.intercept)


class NoReorderFit(ValueError):
    """The window holds no re-order, or only re-orders: nothing to learn from."""


def fit_reorder_timing(features) -> ReorderModel:
    """Logistic regression of `ordered_after` on the FEATURES of a relation of pair_features
    (scikit-learn, lbfgs, fixed settings, one thread, rows in customer and product order: the
    same pairs give the same coefficients)."""
    import_modules("sklearn.linear_model")
    from sklearn.linear_model import LogisticRegression

    table = features.order("customer_id, stock_code").fetchnumpy()
    labels = np.asarray(table["ordered_after"], dtype=bool)
    if len(labels) == 0 or labels.all() or not labels.any():
        raise NoReorderFit(
            f"reorder_timing needs re-ordered and not re-ordered pairs; {int(labels.sum())} of "
            f"{len(labels)} pairs were re-ordered"
        )
    x = np.column_stack([np.asarray(table[name], dtype=np.float64) for name in FEATURES])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    with single_threaded(*KMEANS_MODULES, "sklearn.linear_model"):
        model = LogisticRegression(C=REORDER_C, max_iter=REORDER_MAX_ITER)
        model.fit((x - mean) / scale, labels)
    coefficients = model.coef_[0].astype(np.float64)
    weights = coefficients / scale
    intercept = float(model.intercept_[0] - np.sum(weights * mean))
    return ReorderModel(weights, intercept, len(labels))


def score_sql(method: str, model: ReorderModel | None) -> str:
    """Each pair's score as SQL: past orders (most_ordered) or the fitted probability of
    ordering it again in the window (reorder_timing)."""
    if method == "most_ordered":
        return "cast(orders as double)"
    if method == "reorder_timing":
        if model is None:
            raise ValueError("reorder_timing scores need its fit")
        # exp overflows past 709: a probability of 0 there
        return f"1 / (1 + exp(least(-{model.linear_sql()}, 700)))"
    raise ValueError(f"unknown re-order method {method!r}")


def top_per_customer(features, method: str, model: ReorderModel | None, n: int):
    """Each customer's n best pairs of a pair_features relation, with their rank and score:
    the highest score, a tie to the more recently ordered, then the lower stock_code."""
    return (
        features.select(f"customer_id, stock_code, last_day, {score_sql(method, model)} as score")
        .select(
            """customer_id, stock_code, score,
            row_number() over (
                partition by customer_id order by score desc, last_day desc, stock_code
            ) as rank"""
        )
        .filter(f"rank <= {int(n)}")
    )
