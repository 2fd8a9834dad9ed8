"""The backtest of the segments: refit the whole segmentation on the lines before a cut, then
measure what each segment's customers bought in the horizon after it.

The cut comes from int_evaluation_cuts (the one place it is computed); the refit sees only the
RFM at the cut (int_customer_rfm_at_cuts, customer_rfm's one definition); the window's sums and
the per-segment figures run in DuckDB; Python holds the refit and the bootstrap. Method:
docs/backtest.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from customer_segmentation.segmentation.asof import cut_of, lines_before, refit_segments, rfm_at
from customer_segmentation.segmentation.clustering import RANDOM_STATE
from customer_segmentation.segmentation.settings import SegmentSettings

BOOTSTRAP_RESAMPLES = 1_000
BOOTSTRAP_SEED = RANDOM_STATE
# Random customer indices drawn at once (int64): 4,000,000 x 8 bytes = 32 MB per chunk.
BOOTSTRAP_CHUNK = 4_000_000

BACKTEST_SCHEMA = pa.schema(
    [
        ("segment_id", pa.int32()),
        ("segment_name", pa.string()),
        ("k", pa.int32()),
        ("customers", pa.int64()),
        ("customers_buying_after", pa.int64()),
        ("retention_rate", pa.float64()),
        ("revenue_after", pa.float64()),
        ("revenue_after_per_customer", pa.float64()),
        ("share_of_revenue_after", pa.float64()),
        ("ratio_vs_rest", pa.float64()),
        ("ratio_vs_rest_ci_low", pa.float64()),
        ("ratio_vs_rest_ci_high", pa.float64()),
        ("bootstrap_resamples", pa.int32()),
        ("cut_date", pa.date32()),
        ("as_of_date", pa.date32()),
        ("horizon_days", pa.int32()),
    ]
)


class NoRefit(ValueError):
    """The customers before the cut cannot be segmented (too few for the vars' k)."""


def backtest_segments(rfm_at_cuts, cut: date, settings: SegmentSettings, personas=None):
    """The refit's input (customer_rfm's columns as of the cut) and its segments."""
    rfm = rfm_at(rfm_at_cuts, cut).to_arrow_table()
    try:
        segments = refit_segments(rfm, settings, personas)
    except ValueError as error:
        raise NoRefit(
            f"segment_backtest: no segmentation of the {rfm.num_rows} customers before the cut "
            f"{cut} (as_of_date - backtest_horizon_days): {error}"
        ) from error
    return rfm, segments


def window_revenue(line_groups, cut: date, as_of_date: date):
    """One row per identified customer with a line in [cut, as_of_date): whether they bought
    (a sale) and their net revenue (sales plus returns, which are negative)."""
    start = cut.isoformat()
    return (
        lines_before(line_groups, as_of_date)
        .filter(f"invoiced_at >= date '{start}' and customer_id is not null and not is_guest")
        .aggregate(
            """customer_id,
            count(*) filter (where line_type = 'sale') > 0 as has_sale,
            sum(amount) as revenue_after""",
            "customer_id",
        )
    )


def customer_outcomes(session, segments: pa.Table, window):
    """The refit's customers with their segment and what they did in the horizon."""
    assigned = session.from_arrow(segments.select(["customer_id", "segment_id", "segment_name"]))
    return (
        assigned.set_alias("assigned")
        .join(window.set_alias("window_sums"), "customer_id", how="left")
        .select(
            """assigned.customer_id,
            assigned.segment_id,
            assigned.segment_name,
            coalesce(window_sums.has_sale, false) as has_sale,
            coalesce(window_sums.revenue_after, 0) as revenue_after"""
        )
    )


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` resamples (with replacement, same size) of values; the indices are
    drawn in chunks of about BOOTSTRAP_CHUNK, so memory stays bounded at any size."""
    n = len(values)
    means = np.empty(resamples)
    if n == 0:
        means[:] = np.nan
        return means
    rows = max(1, BOOTSTRAP_CHUNK // n)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        picks = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[picks].mean(axis=1)
    return means


@dataclass(frozen=True)
class Ratio:
    """Revenue per customer of segment 1 over that of all other segments, with its interval."""

    ratio: float | None
    low: float | None
    high: float | None


def ratio_vs_rest(
    first: np.ndarray,
    rest: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Ratio:
    """mean(first) / mean(rest) and the 2.5th and 97.5th percentiles of the ratio over
    bootstrap resamples of the customers within each group (numpy Generator, fixed seed).
    Null when a group is empty or the rest's mean is not positive; resamples whose rest mean
    is not positive are left out of the interval."""
    if len(first) == 0 or len(rest) == 0 or not np.mean(rest) > 0:
        return Ratio(None, None, None)
    rng = np.random.default_rng(seed)
    first_means = bootstrap_means(first, resamples, rng)
    rest_means = bootstrap_means(rest, resamples, rng)
    valid = rest_means > 0
    ratios = first_means[valid] / rest_means[valid]
    if len(ratios) == 0:
        return Ratio(float(np.mean(first) / np.mean(rest)), None, None)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Ratio(float(np.mean(first) / np.mean(rest)), float(low), float(high))


def segment_backtest(
    session,
    line_groups,
    evaluation_cuts,
    rfm_at_cuts,
    personas,
    settings: SegmentSettings,
) -> pa.Table:
    """segment_backtest: one row per segment of the refit at the cut, with what its customers
    did in the horizon; the segment-1-versus-rest ratio on the segment 1 row. No rows when the
    customers before the cut cannot be segmented (data shorter than the horizon, or fewer
    customers than k needs): the backtest is a check, and must not stop the build."""
    cut, as_of = cut_of(evaluation_cuts, "segment_backtest")
    try:
        _, segments = backtest_segments(rfm_at_cuts, cut, settings, personas)
    except NoRefit:
        return BACKTEST_SCHEMA.empty_table()
    k = int(segments.column("k")[0].as_py())
    outcomes = customer_outcomes(session, segments, window_revenue(line_groups, cut, as_of))
    per_segment = (
        outcomes.aggregate(
            """segment_id,
            any_value(segment_name) as segment_name,
            count(*) as customers,
            count(*) filter (where has_sale) as customers_buying_after,
            sum(revenue_after) as revenue_after""",
            "segment_id",
        )
        .select(
            """segment_id,
            segment_name,
            customers,
            customers_buying_after,
            customers_buying_after / customers as retention_rate,
            cast(revenue_after as double) as revenue_after,
            cast(revenue_after / customers as double) as revenue_after_per_customer,
            -- exact decimal sums, one division
            cast(revenue_after / nullif(sum(revenue_after) over (), 0) as double)
                as share_of_revenue_after"""
        )
        .order("segment_id")
    )
    first = outcomes.filter("segment_id = 1").order("customer_id").fetchnumpy()["revenue_after"]
    rest = outcomes.filter("segment_id <> 1").order("customer_id").fetchnumpy()["revenue_after"]
    ratio = ratio_vs_rest(np.asarray(first, np.float64), np.asarray(rest, np.float64))
    out = []
    for row in per_segment.to_arrow_table().to_pylist():
        is_first = row["segment_id"] == 1
        out.append(
            {
                **row,
                "k": k,
                "ratio_vs_rest": ratio.ratio if is_first else None,
                "ratio_vs_rest_ci_low": ratio.low if is_first else None,
                "ratio_vs_rest_ci_high": ratio.high if is_first else None,
                "bootstrap_resamples": BOOTSTRAP_RESAMPLES if is_first else None,
                "cut_date": cut,
                "as_of_date": as_of,
                "horizon_days": (as_of - cut).days,
            }
        )
    return pa.Table.from_pylist(out, schema=BACKTEST_SCHEMA)
