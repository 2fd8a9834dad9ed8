"""Invoice dates as real exports write them, on the real pipeline: two-digit years, a file that
mixes month-first and day-first rows, dates outside any sane window, and this month's export of
its first days beside last months' files. None may be read wrong without a word."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import build_ok, run_dbt
from test_ingest import CLEANING, GOOD, HEADER, reasons, write

from customer_segmentation.generate import generate

KAGGLE_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})$")


def rewrite_dates(
    source: Path, target: Path, rewrite: Callable[[int, int, int, int, str, int], str]
) -> Path:
    """The file with each Kaggle date (12/1/2010 8:26) replaced by `rewrite(month, day, year,
    hour, minute, row)`, row counting data rows from 1; nothing else changes."""
    with (
        open(source, encoding="latin-1", newline="") as src,
        open(target, "w", encoding="latin-1", newline="") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        header = next(reader)
        writer.writerow(header)
        column = header.index("InvoiceDate")
        for row_number, row in enumerate(reader, start=1):
            month, day, year, hour, minute = KAGGLE_DATE.match(row[column]).groups()
            row[column] = rewrite(int(month), int(day), int(year), int(hour), minute, row_number)
            writer.writerow(row)
    return target


def invoice_times(result) -> list[tuple]:
    return result.query(
        "select source_row, invoiced_at::varchar from marts.fct_order_lines order by source_row"
    )


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    """2,000 generated lines, a year of them, with dates as the Kaggle CSV writes them."""
    path = tmp_path_factory.mktemp("kaggle") / "kaggle.csv"
    generate(rows=2_000, seed=11, output=str(path))
    return path


# -- 1. two-digit years ----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["month_first", "day_first"])
def test_two_digit_years_read_as_the_same_dates_as_four(kaggle, tmp_path, order):
    def two_digit(month, day, year, hour, minute, _row):
        first, second = (month, day) if order == "month_first" else (day, month)
        return f"{first}/{second}/{year % 100:02d} {hour}:{minute}"

    short = rewrite_dates(kaggle, tmp_path / "short_years.csv", two_digit)
    expected = build_ok(tmp_path / "four", {"transactions_path": str(kaggle)}, args=CLEANING)
    actual = build_ok(tmp_path / "two", {"transactions_path": str(short)}, args=CLEANING)

    assert invoice_times(actual) == invoice_times(expected)
    assert len(invoice_times(actual)) > 1_900
    assert actual.query(
        "select distinct year(invoiced_at) from marts.fct_order_lines order by 1"
    ) == [(2010,), (2011,)]
    assert actual.query(
        "select invoice_date_format, decided_by from staging.stg_invoice_date_formats"
    ) == [(order, "this_file")]


# -- 2. a file that mixes both orders ----------------------------------------------------------


def test_a_file_mixing_date_orders_fails_naming_it_and_the_counts(kaggle, tmp_path):
    def mixed(month, day, year, hour, minute, row):
        first, second = (month, day) if row <= 1_200 else (day, month)
        return f"{first}/{second}/{year} {hour}:{minute}"

    f = rewrite_dates(kaggle, tmp_path / "mixed.csv", mixed)
    failed = run_dbt(tmp_path / "auto", CLEANING, {"transactions_path": str(f)})
    assert failed.returncode != 0
    message = next(line for line in failed.output.splitlines() if "mixes two date orders" in line)
    counts = re.search(
        r"read only month first in (\d+) rows \(the first is row (\d+)\) and only day first in "
        r"(\d+) rows \(the first is row (\d+)\)",
        message,
    )
    assert "mixed.csv" in message and "invoice_date_format" in message
    # counted independently: rows whose day or month (as written) is above 12
    with open(f, encoding="latin-1", newline="") as fh:
        dates = [r["InvoiceDate"].split()[0].split("/") for r in csv.DictReader(fh)]
    month_first_only = [i for i, (a, b, _) in enumerate(dates, 1) if int(b) > 12 >= int(a)]
    day_first_only = [i for i, (a, b, _) in enumerate(dates, 1) if int(a) > 12 >= int(b)]
    assert counts and [int(g) for g in counts.groups()] == [
        len(month_first_only),
        month_first_only[0],
        len(day_first_only),
        day_first_only[0],
    ]
    assert max(month_first_only) <= 1_200 < min(day_first_only)

    # the user's choice: read every row month first, quarantine what does not fit
    chosen = build_ok(
        tmp_path / "chosen",
        {"transactions_path": str(f), "invoice_date_format": "month_first"},
        args=CLEANING,
    )
    invalid = sorted(r for r, why in reasons(chosen).items() if why == "invalid_invoice_date")
    assert invalid == day_first_only


# -- 3. dates outside any sane window ----------------------------------------------------------


def test_dates_outside_the_window_are_quarantined_with_their_own_reason(tmp_path):
    rows = [
        GOOD[0],
        GOOD[1].replace("12/1/2010 8:26", "1/5/2100 10:00"),
        GOOD[2].replace("12/1/2010 8:28", "1/5/1900 10:00"),
        GOOD[0].replace("12/1/2010 8:26", "2099-12-31 23:59:00"),
        GOOD[2].replace("12/1/2010 8:28", "1/1/1990 0:00"),
    ]
    f = write(tmp_path / "far.csv", HEADER + "\n".join(rows) + "\n")
    vars_ = {"transactions_path": str(f), "invoice_date_format": "month_first"}
    result = build_ok(tmp_path / "default", vars_, args=CLEANING)
    assert reasons(result) == {
        2: "invoice_date_out_of_range",
        3: "invoice_date_out_of_range",
        4: "invoice_date_out_of_range",
    }
    assert [r for r, _ in invoice_times(result)] == [1, 5]

    wide = build_ok(
        tmp_path / "wide",
        {**vars_, "min_invoice_date": "1900-01-01", "max_invoice_date": "2099-12-31"},
        args=CLEANING,
    )
    assert reasons(wide) == {2: "invoice_date_out_of_range"}
    assert [r for r, _ in invoice_times(wide)] == [1, 3, 4, 5]


def test_a_window_that_ends_before_it_starts_fails_naming_both_vars(tmp_path):
    failed = run_dbt(
        tmp_path, CLEANING, {"min_invoice_date": "2011-01-01", "max_invoice_date": "2010-12-31"}
    )
    assert failed.returncode != 0
    assert (
        "Invalid value for dbt var 'max_invoice_date': \"2010-12-31\" must be at least "
        "min_invoice_date (2011-01-01)" in failed.output
    )


# -- 5. this month's export of its first days beside earlier months ----------------------------


def test_an_export_of_a_months_first_days_takes_the_reading_of_the_other_files(tmp_path):
    kaggle = tmp_path / "year.csv"
    generate(rows=6_000, seed=3, output=str(kaggle), start="2011-01-01", end="2011-12-07")
    rows = list(csv.reader(open(kaggle, encoding="latin-1", newline="")))
    header, data = rows[0], rows[1:]
    folder = tmp_path / "exports"
    folder.mkdir()
    by_month: dict[int, list[list[str]]] = {}
    for row in data:
        by_month.setdefault(int(row[4].split("/")[0]), []).append(row)
    assert sorted(by_month) == list(range(1, 13))
    for month, month_rows in by_month.items():
        with open(folder / f"2011-{month:02d}.csv", "w", encoding="latin-1", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows([header, *month_rows])
    december = [int(r[4].split("/")[1]) for r in by_month[12]]
    assert max(december) <= 7  # every date of that file reads both ways

    result = build_ok(tmp_path / "all", {"transactions_path": str(folder / "*.csv")}, args=CLEANING)
    decided = dict(
        result.query(
            "select regexp_extract(source_file, '2011-[0-9]{2}'), decided_by "
            "from staging.stg_invoice_date_formats"
        )
    )
    assert decided["2011-12"] == "other_files"
    assert {decided[f"2011-{m:02d}"] for m in range(1, 12)} == {"this_file"}
    assert result.query(
        "select distinct invoice_date_format from staging.stg_invoice_date_formats"
    ) == [("month_first",)]
    assert result.query(
        "select min(invoiced_at)::date::varchar, max(invoiced_at)::date::varchar, count(*) "
        "from marts.fct_order_lines where source_file like '%2011-12.csv'"
    )[0][:2] == ("2011-12-01", f"2011-12-0{max(december)}")

    # alone, nothing decides: the build fails naming the file and the var, as before
    alone = run_dbt(
        tmp_path / "alone", CLEANING, {"transactions_path": str(folder / "2011-12.csv")}
    )
    assert alone.returncode != 0
    assert "2011-12.csv" in alone.output and "no other input file decides it" in alone.output
    assert "invoice_date_format" in alone.output
