"""The re-order list: which of the products a customer has bought will they order again.

Two methods rank a customer's own past products: `most_ordered`, the personal baseline (the
products by past orders, the most recent first on a tie), and `reorder_timing`, a logistic
regression on how often, how regularly and how long ago the customer ordered the product,
fitted on the window before the one it predicts. recommend.py holds the split, the relations
and the marts; method and measurements: docs/recommendations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from customer_segmentation.segmentation.threads import KMEANS_MODULES, single_threaded

# In the order that breaks a tie in recall at k (the first, the simpler, wins).
REORDER_METHODS = ("most_ordered", "reorder_timing")
# reorder_timing is fitted on the pairs of at most this many customers (a deterministic sample):
# at about 80 products a customer, some 1.6 million pairs, a few seconds of L-BFGS.
REORDER_FIT_CUSTOMERS = 20_000
# The logistic regression's settings (scikit-learn, lbfgs): fixed, so the fit is the same.
REORDER_C = 1.0
REORDER_MAX_ITER = 1_000
FEATURES = (
    "log_orders",
    "log_days_since_last",
    "has_interval",
    "log_overdue",
    "log_interval",
    "share_of_orders",
    "log_customer_orders",
    "log_customer_days_since_last",
    "log_popularity",
)
EPOCH = date(1970, 1, 1)


def day_number(day: date) -> int:
    return (day - EPOCH).days


@dataclass(frozen=True)
class PairHistory:
    """Per customer and product ordered before a cut (sorted by customer, then stock_code): the
    product's orders, first and last order day, the customer's orders and first and last order
    day, and whether the pair was ordered again in the window after the cut (the label)."""

    cut: date
    customer_ids: np.ndarray
    stock_codes: pa.Array
    orders: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    customer_orders: np.ndarray
    customer_first_day: np.ndarray
    customer_last_day: np.ndarray
    ordered_after: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)


def pair_history(lines, cut: date, window_days: int | None = None) -> PairHistory:
    """The PairHistory of `lines` (identified sale order products) before `cut`; the label is
    set when `window_days` is given: ordered in [cut, cut + window_days)."""
    start = cut.isoformat()
    before = lines.filter(f"invoiced_at < date '{start}'")
    pairs = before.aggregate(
        """customer_id, stock_code, count(*) as orders,
        date_diff('day', date '1970-01-01', min(cast(invoiced_at as date))) as first_day,
        date_diff('day', date '1970-01-01', max(cast(invoiced_at as date))) as last_day""",
        "customer_id, stock_code",
    ).set_alias("pairs")
    customers = before.aggregate(
        """customer_id, count(distinct invoice_no) as customer_orders,
        date_diff('day', date '1970-01-01', min(cast(invoiced_at as date))) as customer_first_day,
        date_diff('day', date '1970-01-01', max(cast(invoiced_at as date))) as customer_last_day""",
        "customer_id",
    ).set_alias("customers")
    joined = pairs.join(customers, "customer_id")
    if window_days is not None:
        end = (cut + timedelta(days=window_days)).isoformat()
        after = (
            lines.filter(f"invoiced_at >= date '{start}' and invoiced_at < date '{end}'")
            .aggregate("customer_id, stock_code", "customer_id, stock_code")
            .select("customer_id, stock_code, true as ordered_after")
            .set_alias("after")
        )
        joined = joined.join(after, "customer_id, stock_code", how="left")
        label = "coalesce(after.ordered_after, false) as ordered_after"
    else:
        label = "false as ordered_after"
    table = (
        joined.select(
            f"""pairs.customer_id, pairs.stock_code, pairs.orders, pairs.first_day, pairs.last_day,
        customers.customer_orders, customers.customer_first_day, customers.customer_last_day,
        {label}"""
        )
        .order("customer_id, stock_code")
        .to_arrow_table()
    )
    return PairHistory(
        cut,
        table.column("customer_id").to_numpy().astype(np.int64),
        table.column("stock_code").combine_chunks().cast(pa.string()),
        table.column("orders").to_numpy().astype(np.float64),
        table.column("first_day").to_numpy().astype(np.int64),
        table.column("last_day").to_numpy().astype(np.int64),
        table.column("customer_orders").to_numpy().astype(np.float64),
        table.column("customer_first_day").to_numpy().astype(np.int64),
        table.column("customer_last_day").to_numpy().astype(np.int64),
        table.column("ordered_after").to_numpy(zero_copy_only=False).astype(bool),
    )


@dataclass(frozen=True)
class Popularity:
    """Share of a sample's customers (with an order before the cut) who ordered each product."""

    stock_codes: pa.Array
    share: np.ndarray

    def of(self, codes: pa.Array) -> np.ndarray:
        found = pc.index_in(codes, value_set=self.stock_codes).to_numpy(zero_copy_only=False)
        known = ~np.isnan(found.astype(np.float64))
        out = np.zeros(len(codes))
        out[known] = self.share[found[known].astype(np.int64)]
        return out


def popularity(lines, cut: date) -> Popularity:
    before = lines.filter(f"invoiced_at < date '{cut.isoformat()}'")
    [(customers,)] = before.aggregate("count(distinct customer_id)").fetchall()
    table = (
        before.aggregate("stock_code, count(distinct customer_id) as buyers", "stock_code")
        .order("stock_code")
        .to_arrow_table()
    )
    share = table.column("buyers").to_numpy().astype(np.float64) / max(int(customers), 1)
    return Popularity(table.column("stock_code").combine_chunks().cast(pa.string()), share)


def features(history: PairHistory, shares: Popularity) -> np.ndarray:
    """The pairs x FEATURES matrix of reorder_timing (logs tame the long tails)."""
    cut = day_number(history.cut)
    since_last = np.maximum(cut - history.last_day, 1).astype(np.float64)
    has_interval = history.orders >= 2
    interval = np.maximum(
        np.divide(
            history.last_day - history.first_day,
            history.orders - 1,
            out=np.ones(len(history)),
            where=has_interval,
        ),
        1.0,
    )
    customer_since = np.maximum(cut - history.customer_last_day, 1).astype(np.float64)
    return np.column_stack(
        [
            np.log1p(history.orders),
            np.log(since_last),
            has_interval.astype(np.float64),
            np.where(has_interval, np.log(since_last / interval), 0.0),
            np.where(has_interval, np.log(interval), 0.0),
            history.orders / np.maximum(history.customer_orders, 1.0),
            np.log1p(history.customer_orders),
            np.log(customer_since),
            np.log(shares.of(history.stock_codes) + 1e-4),
        ]
    )


@dataclass(frozen=True)
class ReorderModel:
    """reorder_timing's fit: standardisation and logistic regression coefficients."""

    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    pairs: int

    def probability(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return expit(((x - self.mean) / self.scale) @ self.coefficients + self.intercept)


class NoReorderFit(ValueError):
    """The window holds no re-order, or only re-orders: nothing to learn from."""


def fit_reorder_timing(history: PairHistory, shares: Popularity) -> ReorderModel:
    """Logistic regression of `ordered_after` on the features (scikit-learn, lbfgs, fixed
    settings, one thread: the same pairs give the same coefficients)."""
    from sklearn.linear_model import LogisticRegression

    labels = history.ordered_after
    if len(labels) == 0 or labels.all() or not labels.any():
        raise NoReorderFit(
            f"reorder_timing needs re-ordered and not re-ordered pairs after {history.cut}; "
            f"{int(labels.sum())} of {len(labels)} pairs were re-ordered"
        )
    x = features(history, shares)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    with single_threaded(*KMEANS_MODULES, "sklearn.linear_model"):
        model = LogisticRegression(C=REORDER_C, max_iter=REORDER_MAX_ITER)
        model.fit((x - mean) / scale, labels)
    return ReorderModel(
        mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]), len(labels)
    )


def scores(method: str, history: PairHistory, model: ReorderModel | None, shares) -> np.ndarray:
    """Each pair's score: past orders (most_ordered) or the fitted probability of ordering it
    again in the window (reorder_timing)."""
    if method == "most_ordered":
        return history.orders.copy()
    if method == "reorder_timing":
        if model is None:
            raise ValueError("reorder_timing scores need its fit")
        return model.probability(features(history, shares))
    raise ValueError(f"unknown re-order method {method!r}")


def top_per_customer(history: PairHistory, score: np.ndarray, n: int) -> np.ndarray:
    """Positions of each customer's n best pairs, in rank order (customers ascending): the
    highest score, a tie to the more recently ordered, then the lower stock_code."""
    if len(history) == 0:
        return np.zeros(0, dtype=np.int64)
    position = np.arange(len(history))  # within a customer: stock_code order
    order = np.lexsort((position, -history.last_day, -score, history.customer_ids))
    customers = history.customer_ids[order]
    starts = np.searchsorted(customers, customers, side="left")
    rank = np.arange(len(order)) - starts
    return order[rank < n]
