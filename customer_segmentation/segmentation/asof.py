"""The segmentation as it would have been at an earlier date: the RFM of the lines before a cut
and the whole selection and fit refitted on it.

recommendation_evaluation (segment_popularity at its holdout split) and segment_backtest (at
as_of_date - backtest_horizon_days) both refit here; each keeps its own cut in one function
(`recommend.holdout_split`, `backtest.backtest_cut`). Nothing on or after the cut reaches the
refit: every line is filtered by `lines_before` first.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from customer_segmentation.segmentation.segments import fit_customer_segments
from customer_segmentation.segmentation.selection import select_segment_count
from customer_segmentation.segmentation.settings import SegmentSettings

# The customer_rfm columns rfm_before computes (the var segment_features may name others).
RFM_BEFORE_FEATURES = ("recency_days", "frequency", "monetary")


def reference_date(customer_rfm) -> date:
    """customer_rfm's one as_of_date (read, never recomputed)."""
    dates = customer_rfm.aggregate("as_of_date", "as_of_date").fetchall()
    if len(dates) != 1:
        raise ValueError(f"customer_rfm must hold exactly one as_of_date, found {len(dates)}")
    return dates[0][0]


def lines_before(relation, day: date):
    """The rows of a relation with invoiced_at before midnight of `day`."""
    return relation.filter(f"invoiced_at < date '{day.isoformat()}'")


def rfm_before(line_groups, before: date):
    """customer_rfm's recency_days, frequency and monetary as of `before`, from the lines
    before it (customers with a sale; guests left out), in customer_id order."""
    day = before.isoformat()
    return (
        lines_before(line_groups, before)
        .filter("customer_id is not null and not is_guest")
        .aggregate(
            f"""customer_id,
            date '{day}' as as_of_date,
            date_diff('day', cast(max(invoiced_at) filter (where line_type = 'sale') as date),
                      date '{day}') as recency_days,
            count(distinct invoice_no) filter (where line_type = 'sale') as frequency,
            greatest(coalesce(sum(amount) filter (where line_type = 'sale'), 0)
                     + coalesce(sum(amount) filter (where line_type = 'return'), 0), 0)
                as monetary,
            count(*) filter (where line_type = 'sale') as sale_groups""",
            "customer_id",
        )
        .filter("sale_groups > 0")
        .select("customer_id, as_of_date, recency_days, frequency, monetary")
        .order("customer_id")
    )


def check_features(settings: SegmentSettings, user: str) -> None:
    """Fail naming the feature when segment_features asks for a column rfm_before lacks."""
    other = [f for f in settings.features if f not in RFM_BEFORE_FEATURES]
    if other:
        raise ValueError(
            f"{user} refits the segments on the RFM of an earlier date, which has only "
            f"{', '.join(RFM_BEFORE_FEATURES)}; the dbt var segment_features names "
            f"{', '.join(other)}"
        )


def refit_segments(rfm: pa.Table, settings: SegmentSettings, personas=None) -> pa.Table:
    """customer_segments refitted on an earlier RFM: the package's selection rule, then the
    fit from the selected row, segment ids by mean monetary and persona names. The selection
    leaves out the comparison with the Gaussian mixtures and Ward, which no refit reads."""
    selection = select_segment_count(rfm, settings, compare=False)
    return fit_customer_segments(rfm, selection, personas)
