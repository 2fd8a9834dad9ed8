"""Segments over time: a planted group of customers that stops buying at a known month shows
as a migration at that month; the history equals customer_rfm and customer_segments at
as_of_date; the programme's members balance; the history is reproduced exactly.

One small dbt build on a file written here: 20 regulars buy big twice a week all year, 15
planted customers buy like them until 2011-06-30 and then stop, 60 small customers buy once a
month. With k = 3 the current ruler (fitted at as_of_date 2011-12-30) has the regulars as
Insiders, the lapsed planted group as Mid spenders and the small buyers as Low spenders.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import BUILD, build_ok

from customer_segmentation.segmentation.history import (
    ASSIGN_CHUNK_ROWS,
    assign_segments,
    segment_history,
    segment_ruler,
)
from customer_segmentation.segmentation.segments import fit_customer_segments

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
REGULARS = range(1, 21)
PLANTED = range(101, 116)
SMALL = range(201, 261)
FIRST_DAY = dt.date(2010, 12, 1)
LAST_DAY = dt.date(2011, 12, 30)
STOP_AFTER = dt.date(2011, 6, 30)
# The last snapshot the planted group was seen buying, and the first after it stopped.
BEFORE_STOP, AFTER_STOP = dt.date(2011, 7, 1), dt.date(2011, 8, 1)
HISTORY = [
    *BUILD,
    "--select",
    "+segment_migration",
    "+loyalty_programme_changes",
    "+loyalty_programme",
    "--indirect-selection",
    "cautious",
]


def planted_file(path: Path) -> Path:
    """The three groups' invoices (one line each, ISO dates)."""
    lines = []
    invoice = 540000

    def sale(customer: int, day: dt.date, quantity: int, hour: int = 10) -> None:
        nonlocal invoice
        invoice += 1
        lines.append(
            f"{invoice},85123A,WHITE HANGING HEART T-LIGHT HOLDER,{quantity},"
            f"{day:%Y-%m-%d} {hour:02d}:00:00,2.50,{customer}.0,United Kingdom"
        )

    day = FIRST_DAY
    while day <= LAST_DAY:
        if day.weekday() in (0, 3):  # Mondays and Thursdays
            for c in REGULARS:
                sale(c, day, 200 + 10 * (c % 7))
            if day <= STOP_AFTER:
                for c in PLANTED:
                    sale(c, day, 200 + 10 * (c % 7))
        for c in SMALL:
            if day.day == 1 + c % 25:
                sale(c, day, 2 + c % 10, hour=11)
        day += dt.timedelta(days=1)
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def history_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history")
    data = planted_file(tmp / "planted.csv")
    return build_ok(tmp / "build", {"transactions_path": str(data), "segment_k": 3}, HISTORY)


def segments_of(build, snapshot: dt.date, customers: range) -> set[str]:
    rows = build.query(
        "select distinct segment_name from marts.customer_segment_history "
        "where snapshot_date = ? and customer_id between ? and ?",
        [snapshot, customers[0], customers[-1]],
    )
    return {name for (name,) in rows}


def test_snapshots_are_month_starts_and_as_of_date(history_build):
    dates = [
        d
        for (d,) in history_build.query(
            "select distinct snapshot_date from marts.customer_segment_history order by 1"
        )
    ]
    months = [dt.date(2011, m, 1) for m in range(1, 13)]
    # as_of_date: the day after the last line, Thursday 2011-12-29
    assert dates == [*months, dt.date(2011, 12, 30)]


def test_planted_group_migrates_at_the_month_it_stops(history_build):
    assert segments_of(history_build, BEFORE_STOP, PLANTED) == {"Insiders"}
    assert segments_of(history_build, AFTER_STOP, PLANTED) == {"Mid spenders"}
    assert segments_of(history_build, AFTER_STOP, REGULARS) == {"Insiders"}
    moves = history_build.query(
        "select from_snapshot, to_snapshot, from_segment, to_segment, customers, share_of_from "
        "from marts.segment_migration where segment_kind = 'kmeans' "
        "and from_segment = 'Insiders' and to_segment = 'Mid spenders' order by from_snapshot"
    )
    # the whole group, at that month only, and 15 of the 35 Insiders of 2011-07-01
    assert moves == [(BEFORE_STOP, AFTER_STOP, "Insiders", "Mid spenders", 15, 15 / 35)]
    [(stayed,)] = history_build.query(
        "select customers from marts.segment_migration where segment_kind = 'kmeans' "
        "and from_snapshot = ? and from_segment = 'Insiders' and to_segment = 'Insiders'",
        [BEFORE_STOP],
    )
    assert stayed == 20
    # the programme loses exactly the planted group then
    left = history_build.query(
        "select snapshot_date, count(*), min(customer_id), max(customer_id), "
        "min(previous_segment), max(new_segment) from marts.loyalty_programme_changes "
        "where change = 'left' group by snapshot_date"
    )
    assert left == [(AFTER_STOP, 15, 101, 115, "Insiders", "Mid spenders")]


def test_history_equals_current_segments_and_rfm_at_as_of_date(history_build):
    differing = history_build.query(
        """
        select count(*) from marts.customer_segment_history as h
        full outer join marts.customer_rfm as r
            on h.customer_id = r.customer_id and h.snapshot_date = r.as_of_date
        full outer join marts.customer_segments as s on r.customer_id = s.customer_id
        where h.snapshot_date = (select max(as_of_date) from marts.customer_rfm)
            and (r.customer_id is null or s.customer_id is null
                or h.recency_days != r.recency_days or h.frequency != r.frequency
                or h.monetary != r.monetary or h.rfm_segment != r.rfm_segment
                or h.segment_id != s.segment_id or h.segment_name != s.segment_name)
        """
    )
    [(customers,)] = history_build.query("select count(*) from marts.customer_rfm")
    [(last,)] = history_build.query(
        "select count(*) from marts.customer_segment_history "
        "where snapshot_date = (select max(snapshot_date) from marts.customer_segment_history)"
    )
    assert differing == [(0,)]
    assert last == customers == len(REGULARS) + len(PLANTED) + len(SMALL)


def test_members_balance_with_joiners_and_leavers(history_build):
    members = dict(
        history_build.query(
            "select snapshot_date, count(*) filter (where is_loyalty_member) "
            "from marts.customer_segment_history group by 1"
        )
    )
    changes = history_build.query(
        "select snapshot_date, change, count(*) from marts.loyalty_programme_changes group by 1, 2"
    )
    net: dict[dt.date, int] = {}
    for day, change, n in changes:
        net[day] = net.get(day, 0) + (n if change == "joined" else -n)
    running = 0
    for day in sorted(members):
        running += net.get(day, 0)
        assert running == members[day], day
    [(programme,)] = history_build.query("select count(*) from marts.loyalty_programme")
    assert running == programme == len(REGULARS)


def read_inputs(build):
    """The history model's inputs, as Arrow, from the built file."""
    import duckdb

    with duckdb.connect(str(build.duckdb_path), read_only=True) as con:
        snapshots = con.sql(
            "select snapshot_date, customer_id, recency_days, frequency, monetary, rfm_segment "
            "from intermediate.int_customer_rfm_snapshots order by snapshot_date, customer_id"
        ).to_arrow_table()
        rfm = con.sql("select * from marts.customer_rfm").to_arrow_table()
        selection = con.sql("select * from marts.segment_model_selection").to_arrow_table()
        personas = con.sql("select * from reference.segment_personas").to_arrow_table()
        built = con.sql(
            "select * from marts.customer_segment_history order by snapshot_date, customer_id"
        ).to_arrow_table()
    return snapshots, rfm, selection, personas, built


def test_history_is_reproduced_exactly_in_any_batch_size(history_build, monkeypatch):
    snapshots, rfm, selection, personas, built = read_inputs(history_build)
    again = segment_history(snapshots, rfm, selection, personas).read_all()
    assert again.equals(built.cast(again.schema))
    monkeypatch.setattr("customer_segmentation.segmentation.history.ASSIGN_CHUNK_ROWS", 7)
    small = segment_history(snapshots, rfm, selection, personas).read_all()
    assert small.num_rows == built.num_rows and small.equals(again)


def test_ruler_reproduces_the_fitted_segments():
    rng = np.random.default_rng(7)
    n = 1_500
    rfm = pa.table(
        {
            "customer_id": pa.array(rng.permutation(n) + 1, pa.int64()),
            "as_of_date": pa.array([dt.date(2011, 12, 10)] * n, pa.date32()),
            "recency_days": pa.array(rng.integers(1, 370, n), pa.int32()),
            "frequency": pa.array(rng.geometric(0.3, n), pa.int64()),
            "monetary": pa.array(rng.lognormal(6, 1.5, n)),
        }
    )
    from customer_segmentation.segmentation.selection import select_segment_count
    from customer_segmentation.segmentation.settings import validate_settings

    selection = select_segment_count(rfm, validate_settings(k_min=2, k_max=4))
    fitted = fit_customer_segments(rfm, selection)
    ruler = segment_ruler(rfm, selection)
    order = np.argsort(rfm.column("customer_id").to_numpy())
    assigned = assign_segments(ruler, rfm.take(pa.array(order)))
    assert np.array_equal(assigned, fitted.column("segment_id").to_numpy())
    assert ASSIGN_CHUNK_ROWS >= 100_000
