"""The segmentation as it would have been at an earlier date: the whole selection and fit
refitted on the RFM at a cut.

recommendation_evaluation (segment_popularity at its holdout split) and segment_backtest (at
as_of_date - backtest_horizon_days) both refit here. Their cuts come from int_evaluation_cuts
and the RFM at each cut from int_customer_rfm_at_cuts, customer_rfm's one definition (the macro
customer_rfm_at): nothing on or after the cut reaches the refit.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from customer_segmentation.segmentation.segments import fit_customer_segments
from customer_segmentation.segmentation.selection import select_segment_count
from customer_segmentation.segmentation.settings import SegmentSettings


def reference_date(customer_rfm) -> date:
    """customer_rfm's one as_of_date (read, never recomputed)."""
    dates = customer_rfm.aggregate("as_of_date", "as_of_date").fetchall()
    if len(dates) != 1:
        raise ValueError(f"customer_rfm must hold exactly one as_of_date, found {len(dates)}")
    return dates[0][0]


def cut_of(evaluation_cuts, cut_kind: str) -> tuple[date, date]:
    """The (cut_date, as_of_date) of one check in int_evaluation_cuts."""
    rows = (
        evaluation_cuts.filter(f"cut_kind = '{cut_kind}'").select("cut_date, as_of_date").fetchall()
    )
    if cut_kind not in ("recommendation_holdout", "segment_backtest") or len(rows) != 1:
        raise ValueError(f"int_evaluation_cuts must hold one {cut_kind} cut, found {len(rows)}")
    return rows[0][0], rows[0][1]


def rfm_at(rfm_at_cuts, cut: date):
    """int_customer_rfm_at_cuts at one cut, shaped as customer_rfm (as_of_date = the cut)."""
    return (
        rfm_at_cuts.filter(f"cut_date = date '{cut.isoformat()}'")
        .select("* exclude (cut_date), cut_date as as_of_date")
        .order("customer_id")
    )


def lines_before(relation, day: date):
    """The rows of a relation with invoiced_at before midnight of `day`."""
    return relation.filter(f"invoiced_at < date '{day.isoformat()}'")


def refit_segments(rfm: pa.Table, settings: SegmentSettings, personas=None) -> pa.Table:
    """customer_segments refitted on an earlier RFM: the package's selection rule, then the
    fit from the selected row, segment ids by mean monetary and persona names. The selection
    leaves out the comparison with the Gaussian mixtures and Ward, which no refit reads."""
    selection = select_segment_count(rfm, settings, compare=False)
    return fit_customer_segments(rfm, selection, personas)
