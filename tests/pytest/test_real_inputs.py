"""Real inputs at their edges, each on the real pipeline: glob characters in file names, UK
(day-first) dates, CSV records that DuckDB's reader alone would get wrong, absurd values,
truncated archives and old line endings. Every input row must end up placed exactly once."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import BUILD, build_ok, run_dbt
from test_dates import rewrite_dates
from test_ingest import CLEANING, GOOD, HEADER, MONTH_FIRST, build_cleaning, reasons, write

from customer_segmentation.generate import generate


def reconciliation(result) -> list[tuple]:
    return result.query(
        "select source_file, rows_in_file, rows_kept, rows_quarantined, is_reconciled "
        "from marts.input_reconciliation order by source_file"
    )


# -- one build over a folder of small files, one per case (duplicates across files kept, so
#    that the files do not interact) -------------------------------------------------------

BROKEN_UNCLOSED = '536365,71053,"LANTERN WHITE,6,12/1/2010 8:26,3.39,17850.0,United Kingdom'
BROKEN_STRAY = '536365,71053,"LANTERN" WHITE,6,12/1/2010 8:26,3.39,17850.0,United Kingdom'
INCHES = '536365,71053,12" PIZZA TRAY,6,12/1/2010 8:26,3.39,17850.0,United Kingdom'
OTHER_EXPORT = [row.replace("536365", "540001").replace("536366", "540002") for row in GOOD]
EDGE_FILES = {
    # 2. glob characters in a file name
    "export 2011.csv": HEADER + "\n".join(GOOD) + "\n",
    "export 201[1].csv": HEADER + "\n".join(OTHER_EXPORT[:2]) + "\n",
    # 6. CSV records
    "multiline.csv": HEADER
    + "\n".join([GOOD[0], GOOD[1].replace("LANTERN, WHITE", "LANTERN,\nWHITE"), GOOD[2]])
    + "\n",
    "unclosed.csv": HEADER + "\n".join([GOOD[0], BROKEN_UNCLOSED, GOOD[2], GOOD[1]]) + "\n",
    "stray.csv": HEADER + "\n".join([GOOD[0], BROKEN_STRAY, GOOD[2]]) + "\n",
    "inches.csv": HEADER + "\n".join([INCHES, GOOD[2]]) + "\n",
    # 7. absurd values
    "absurd.csv": HEADER
    + "\n".join([GOOD[0], GOOD[1].replace(",6,", ",999999999999999,"), GOOD[2]])
    + "\n",
    # 8. blank lines, old line ends
    "blank.csv": HEADER + GOOD[0] + "\n\n" + GOOD[1] + "\n" + GOOD[2] + "\n\n\n",
    "old_mac.csv": (HEADER + "\n".join(GOOD) + "\n").replace("\n", "\r"),
    "windows.csv": (HEADER + "\n".join(GOOD) + "\n").replace("\n", "\r\n"),
}


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    """The folder of EDGE_FILES built once: `edges/*.csv`."""
    root = tmp_path_factory.mktemp("edges")
    folder = root / "edges"
    folder.mkdir()
    for name, text in EDGE_FILES.items():
        write(folder / name, text)
    return build_cleaning(root / "build", folder / "*.csv", drop_exact_duplicates=False)


def in_file(result, name: str) -> tuple[list[int], dict[int, str]]:
    """(accepted source rows, {quarantined source row: reason}) of one file of the folder."""
    kept = result.query(
        "select source_row from marts.fct_order_lines where source_file like ? order by 1",
        [f"%/edges/{name}"],
    )
    rejected = result.query(
        "select source_row, reject_reason from marts.quarantined_transactions "
        "where source_file like ?",
        [f"%/edges/{name}"],
    )
    return [r for (r,) in kept], dict(rejected)


def test_every_edge_file_is_reconciled(edges):
    rows = {Path(f).name: rest for f, *rest in reconciliation(edges)}
    assert set(rows) == set(EDGE_FILES)
    assert all(reconciled for *_, reconciled in rows.values())
    assert rows["unclosed.csv"] == [4, 3, 1, True]
    assert rows["blank.csv"] == [4, 3, 1, True]


# -- 2. files are read by exact name ----------------------------------------------------------


def test_glob_characters_in_file_names_do_not_swap_files(edges, tmp_path):
    kept = edges.query(
        "select source_file, list(invoice_no order by source_row) from marts.fct_order_lines "
        "where source_file like '%/edges/export 201%' group by 1 order by 1"
    )
    assert [(Path(f).name, invoices) for f, invoices in kept] == [
        ("export 2011.csv", ["536365", "536365", "536366"]),
        ("export 201[1].csv", ["540001", "540001"]),
    ]
    assert in_file(edges, "export 201[1].csv")[1] == {}

    # the bracketed name given exactly is that file, not a pattern matching the other
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("export 2011.csv", "export 201[1].csv"):
        write(folder / name, EDGE_FILES[name])
    exact = build_cleaning(tmp_path / "exact", folder / "export 201[1].csv")
    assert exact.query("select distinct invoice_no from marts.fct_order_lines") == [("540001",)]


def test_file_names_with_star_and_question_mark(tmp_path):
    star = write(tmp_path / "sales*.csv", HEADER + GOOD[0] + "\n")
    write(tmp_path / "sales_all.csv", HEADER + "\n".join(GOOD) + "\n")
    result = build_cleaning(tmp_path / "star", star)
    assert result.query("select source_file, count(*) from marts.fct_order_lines group by 1") == [
        (str(star), 1)
    ]
    assert reconciliation(result) == [(str(star), 1, 1, 0, True)]


# -- 3. day-first dates -----------------------------------------------------------------------


def day_first_copy(source: Path, target: Path) -> Path:
    """The file with its Kaggle dates (12/1/2010 8:26) rewritten as a UK export writes them
    (01/12/2010 08:26); nothing else changes."""
    return rewrite_dates(
        source, target, lambda m, d, y, hh, mm, _row: f"{d:02d}/{m:02d}/{y} {hh:02d}:{mm}"
    )


MONTHLY = [
    *BUILD,
    "-s",
    "+fct_order_lines",
    "+monthly_kpis",
    "+input_reconciliation",
    "--indirect-selection",
    "cautious",
]


def monthly_active(result) -> list[tuple]:
    return result.query(
        "select month::varchar, active_customers, revenue from marts.monthly_kpis order by 1"
    )


def test_day_first_export_reads_the_same_months_as_month_first(tmp_path):
    month_first = tmp_path / "kaggle.csv"
    generate(rows=20_000, seed=5, output=str(month_first))
    day_first = day_first_copy(month_first, tmp_path / "uk_export.csv")

    expected = build_ok(tmp_path / "mf", {"transactions_path": str(month_first)}, args=MONTHLY)
    actual = build_ok(tmp_path / "df", {"transactions_path": str(day_first)}, args=MONTHLY)

    assert monthly_active(actual) == monthly_active(expected)
    assert len(monthly_active(actual)) >= 12
    lines = "select count(*) from marts.fct_order_lines"
    assert actual.query(lines) == expected.query(lines)
    assert actual.query(
        "select invoice_date_format, decided_by from staging.stg_invoice_date_formats"
    ) == [("day_first", "this_file")]
    assert expected.query("select invoice_date_format from staging.stg_invoice_date_formats") == [
        ("month_first",)
    ]


def test_dates_that_read_both_ways_fail_naming_the_file_and_the_var(tmp_path):
    rows = [GOOD[0], GOOD[1].replace("12/1/2010", "3/2/2011"), GOOD[2]]
    f = write(tmp_path / "december.csv", HEADER + "\n".join(rows) + "\n")
    failed = run_dbt(tmp_path / "auto", CLEANING, {"transactions_path": str(f)})
    assert failed.returncode != 0
    assert "december.csv" in failed.output and "invoice_date_format" in failed.output

    result = build_cleaning(tmp_path / "day_first", f, invoice_date_format="day_first")
    assert result.query(
        "select invoiced_at::varchar from marts.fct_order_lines order by source_row"
    ) == [("2010-01-12 08:26:00",), ("2011-02-03 08:26:00",), ("2010-01-12 08:28:00",)]


def test_iso_only_rejects_slash_dates_and_offsets_are_kept(tmp_path):
    rows = [
        GOOD[0].replace("12/1/2010 8:26", "2011-06-01T09:30:00+01:00"),
        GOOD[1],
        GOOD[2].replace("12/1/2010 8:28", "2011-06-01 09:30:00Z"),
    ]
    f = write(tmp_path / "iso.csv", HEADER + "\n".join(rows) + "\n")
    result = build_cleaning(tmp_path / "iso", f, invoice_date_format="iso")
    assert result.query(
        "select source_row, invoiced_at::varchar from marts.fct_order_lines order by 1"
    ) == [(1, "2011-06-01 08:30:00"), (3, "2011-06-01 09:30:00")]
    assert reasons(result) == {2: "invalid_invoice_date"}


# -- 6. CSV records ---------------------------------------------------------------------------


def test_quoted_line_end_in_a_description_loads(edges):
    assert in_file(edges, "multiline.csv") == ([1, 2, 3], {})
    assert edges.query(
        "select description from marts.fct_order_lines "
        "where source_file like '%/multiline.csv' and source_row = 2"
    ) == [("LANTERN,\nWHITE METAL",)]


def test_unclosed_quote_is_quarantined_and_the_rows_after_it_are_read(edges):
    assert in_file(edges, "unclosed.csv") == ([1, 3, 4], {2: "unparseable_row"})
    assert edges.query(
        "select description from marts.quarantined_transactions "
        "where source_file like '%/unclosed.csv'"
    ) == [(BROKEN_UNCLOSED,)]


def test_text_after_a_closing_quote_is_quarantined(edges):
    assert in_file(edges, "stray.csv") == ([1, 3], {2: "unparseable_row"})


def test_inch_marks_inside_a_field_are_text(edges):
    assert edges.query(
        "select description from marts.fct_order_lines where source_file like '%/inches.csv' "
        "order by source_row"
    ) == [('12" PIZZA TRAY',), ("HAND WARMER UNION JACK",)]


# -- 7. absurd values -------------------------------------------------------------------------


def test_absurd_quantity_quarantines_its_row_and_the_build_goes_on(edges):
    assert in_file(edges, "absurd.csv") == ([1, 3], {2: "amount_out_of_range"})


# -- 8. blank lines, old line endings, truncated archives --------------------------------------


def test_blank_line_mid_file_is_a_row_and_later_rows_keep_their_numbers(edges):
    assert in_file(edges, "blank.csv") == ([1, 3, 4], {2: "blank_row"})
    assert edges.query(
        "select invoice_no, description from marts.fct_order_lines "
        "where source_file like '%/blank.csv' and source_row = 4"
    ) == [("536366", "HAND WARMER UNION JACK")]


@pytest.mark.parametrize("name", ["old_mac.csv", "windows.csv"])
def test_cr_and_crlf_line_ends_are_read(edges, name):
    assert in_file(edges, name) == ([1, 2, 3], {})
    assert edges.query(
        "select country from marts.fct_order_lines where source_file like ? and source_row = 3",
        [f"%/{name}"],
    ) == [("United Kingdom",)]


def test_truncated_gzip_fails_naming_the_file(tmp_path):
    whole = gzip.compress((HEADER + "\n".join(GOOD * 200) + "\n").encode())
    f = tmp_path / "cut.csv.gz"
    f.write_bytes(whole[: len(whole) // 2])
    failed = run_dbt(tmp_path / "b", CLEANING, {"transactions_path": str(f), **MONTH_FIRST})
    assert failed.returncode != 0
    assert "cut.csv.gz" in failed.output and "cannot read the file" in failed.output
