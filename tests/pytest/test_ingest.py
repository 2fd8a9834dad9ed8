"""Input handling, one small file per case: every bad input ends in a clear error or in
quarantine rows with their reasons, and every good variant of the UCI shape is read."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import duckdb
import pytest
from conftest import BUILD, build_ok, run_dbt
from openpyxl import Workbook

# Only the cleaning models, the reconciliation and their own data tests: `cautious` leaves out
# the tests of downstream marts (customer_rfm's relationship to fct_order_lines, say), which
# this build does not make; the unit tests run in the sample build.
CLEANING = [
    *BUILD,
    "-s",
    "+fct_order_lines",
    "+fct_orders",
    "+input_reconciliation",
    "--indirect-selection",
    "cautious",
]

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
GOOD = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom",
    '536365,71053,"LANTERN, WHITE METAL",6,12/1/2010 8:26,3.39,17850.0,United Kingdom',
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# A handful of Kaggle dates such as 12/1/2010 read both month first and day first, so these
# small files say how they write dates (a real export has days above 12 and is detected).
MONTH_FIRST = {"invoice_date_format": "month_first"}


def build_cleaning(tmp_path: Path, data_file: Path | str, **extra_vars):
    dbt_vars = {"transactions_path": str(data_file), **MONTH_FIRST, **extra_vars}
    return build_ok(tmp_path, dbt_vars, args=CLEANING)


def fails_with(tmp_path: Path, dbt_vars: dict, *needles: str) -> str:
    result = run_dbt(tmp_path, CLEANING, {**MONTH_FIRST, **dbt_vars})
    assert result.returncode != 0, "the build should have failed"
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in dbt output:\n{result.output[-3000:]}"
    return result.output


def reasons(result) -> dict[int, str]:
    return dict(
        result.query("select source_row, reject_reason from marts.quarantined_transactions")
    )


def accepted_rows(result) -> list[int]:
    return [
        r[0]
        for r in result.query("select source_row from marts.fct_order_lines order by source_row")
    ]


def test_empty_file_is_a_clear_error(tmp_path):
    f = write(tmp_path / "empty.csv", "")
    fails_with(tmp_path, {"transactions_path": str(f)}, "empty.csv", "the file is empty")


def test_header_only_file_is_a_clear_error(tmp_path):
    f = write(tmp_path / "header_only.csv", HEADER)
    fails_with(tmp_path, {"transactions_path": str(f)}, "header_only.csv", "no data rows")


def test_missing_column_names_the_column_and_file(tmp_path):
    header = HEADER.replace(",UnitPrice", "")
    rows = [",".join(p for i, p in enumerate(r.split(",")) if i != 5) for r in GOOD[:1]]
    f = write(tmp_path / "no_price.csv", header + "\n".join(rows) + "\n")
    fails_with(
        tmp_path, {"transactions_path": str(f)}, "no_price.csv", "unit_price", "unitprice or price"
    )


def test_nonexistent_path_is_a_clear_error(tmp_path):
    fails_with(
        tmp_path,
        {"transactions_path": str(tmp_path / "nope" / "*.csv")},
        "transactions_path",
        "matches no file",
    )


def test_unsupported_file_type_is_a_clear_error(tmp_path):
    f = write(tmp_path / "data.json", "[]")
    fails_with(tmp_path, {"transactions_path": str(f)}, "data.json", "not a supported file")


def test_extra_columns_are_ignored_and_extra_fields_quarantined(tmp_path):
    header = HEADER.rstrip("\n") + ",Notes\n"
    rows = [GOOD[0] + ",first", GOOD[1] + ",", GOOD[2] + ",x,unexpected"]
    result = build_cleaning(
        tmp_path, write(tmp_path / "extra.csv", header + "\n".join(rows) + "\n")
    )
    assert accepted_rows(result) == [1, 2]
    assert reasons(result) == {3: "too_many_fields"}


def test_text_in_number_columns_is_quarantined(tmp_path):
    rows = [
        GOOD[0],
        GOOD[1].replace(",6,", ",six,"),
        GOOD[2].replace(",1.85,", ",1.85 GBP,"),
        GOOD[0].replace("17850.0", "CUST-1"),
        GOOD[0].replace(",6,", ",6.5,"),
    ]
    result = build_cleaning(tmp_path, write(tmp_path / "text.csv", HEADER + "\n".join(rows) + "\n"))
    assert accepted_rows(result) == [1]
    assert reasons(result) == {
        2: "invalid_quantity",
        3: "invalid_unit_price",
        4: "invalid_customer_id",
        5: "invalid_quantity",
    }
    quantity_text = result.query(
        "select quantity from marts.quarantined_transactions where source_row = 2"
    )[0][0]
    assert quantity_text == "six"


def test_prices_finer_than_four_decimals_are_quarantined_not_rounded(tmp_path):
    rows = [
        GOOD[0].replace(",2.55,", ",2.55000,"),
        GOOD[1].replace(",3.39,", ",3.39001,"),
        GOOD[2].replace(",1.85,", ",0.00004,"),
        GOOD[2].replace(",1.85,", ",4e-05,"),
        GOOD[0].replace(",2.55,", ",0.0001,"),
        GOOD[0].replace(",2.55,", ",1e3,"),
    ]
    result = build_cleaning(
        tmp_path, write(tmp_path / "prices.csv", HEADER + "\n".join(rows) + "\n"), min_unit_price=-1
    )
    assert reasons(result) == {
        2: "unit_price_too_precise",
        3: "unit_price_too_precise",
        4: "unit_price_too_precise",
    }
    assert result.query(
        "select source_row, unit_price::varchar from marts.fct_order_lines order by 1"
    ) == [(1, "2.5500"), (5, "0.0001"), (6, "1000.0000")]
    assert result.query(
        "select unit_price from marts.quarantined_transactions order by source_row"
    ) == [("3.39001",), ("0.00004",), ("4e-05",)]

    rounded = build_cleaning(
        tmp_path / "rounded", tmp_path / "prices.csv", min_unit_price=-1, round_unit_prices=True
    )
    # 0.00004 and 4e-05 both round to 0.0000: the second line is then a copy of the first
    assert reasons(rounded) == {4: "duplicate_line"}
    assert rounded.query(
        "select source_row, unit_price::varchar from marts.fct_order_lines order by 1"
    ) == [(1, "2.5500"), (2, "3.3900"), (3, "0.0000"), (5, "0.0001"), (6, "1000.0000")]


def test_unparseable_dates_are_quarantined(tmp_path):
    rows = [
        GOOD[0],
        GOOD[1].replace("12/1/2010 8:26", "2010-12-01 08:26:00"),
        GOOD[2].replace("12/1/2010 8:28", "31/12/2010 8:28"),
        GOOD[2].replace("12/1/2010 8:28", "yesterday"),
    ]
    result = build_cleaning(
        tmp_path, write(tmp_path / "dates.csv", HEADER + "\n".join(rows) + "\n")
    )
    assert accepted_rows(result) == [1, 2]
    assert reasons(result) == {3: "invalid_invoice_date", 4: "invalid_invoice_date"}
    assert result.query("select count(distinct invoiced_at) from marts.fct_order_lines")[0][0] == 1


def test_truncated_last_line_is_quarantined_with_its_row_number(tmp_path):
    text = HEADER + "\n".join(GOOD) + "\n536367,84879,ASSORTED COLOUR BIRD ORNA"
    result = build_cleaning(tmp_path, write(tmp_path / "truncated.csv", text))
    assert accepted_rows(result) == [1, 2, 3]
    assert reasons(result) == {4: "missing_required_field"}


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_either_encoding_reads_the_pound_sign(tmp_path, encoding):
    voucher = "Dotcomgiftshop Gift Voucher £10.00"
    row = f"536368,85123A,{voucher},1,12/1/2010 9:00,8.5,17850.0,United Kingdom"
    f = write(tmp_path / f"{encoding}.csv", HEADER + "\n".join([*GOOD, row]) + "\n", encoding)
    result = build_cleaning(tmp_path, f)
    assert (
        result.query("select description from marts.fct_order_lines where source_row = 4")[0][0]
        == voucher
    )


@pytest.mark.parametrize(
    "bad_vars, needle",
    [
        ({"excluded_countries": ["x'); drop table marts.fct_orders; --"]}, "excluded_countries"),
        ({"exclude_stock_codes": ["POST' or 1=1 --"]}, "exclude_stock_codes"),
        ({"min_unit_price": "0; drop table x"}, "min_unit_price"),
        ({"guest_policy": "exclude' --"}, "guest_policy"),
        ({"drop_exact_duplicates": "yes"}, "drop_exact_duplicates"),
        ({"as_of_date": "2011-01-01'; --"}, "as_of_date"),
    ],
)
def test_injection_attempt_in_a_var_fails_naming_the_var(tmp_path, bad_vars, needle):
    f = write(tmp_path / "ok.csv", HEADER + "\n".join(GOOD) + "\n")
    fails_with(
        tmp_path, {"transactions_path": str(f), **bad_vars}, f"Invalid value for dbt var '{needle}'"
    )


def test_a_path_with_quotes_is_read_as_a_path_not_sql(tmp_path):
    f = write(tmp_path / "it's; drop table x.csv", HEADER + "\n".join(GOOD) + "\n")
    result = build_cleaning(tmp_path, f)
    assert accepted_rows(result) == [1, 2, 3]
    fails_with(
        tmp_path / "other",
        {"transactions_path": str(tmp_path / "x'; select 1; --.csv")},
        "matches no file",
    )


def test_online_retail_ii_spelling_gzip_and_iso_dates(tmp_path):
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    rows = [r.replace("12/1/2010 8:26", "2009-12-01 07:45:00") for r in GOOD]
    f = tmp_path / "retail_ii.csv.gz"
    f.write_bytes(gzip.compress((header + "\n".join(rows) + "\n").encode()))
    result = build_cleaning(tmp_path, f)
    assert result.query(
        "select count(*), count(customer_id), min(invoiced_at)::varchar from marts.fct_order_lines"
    )[0] == (3, 2, "2009-12-01 07:45:00")


def test_glob_of_csv_and_parquet_keeps_rows_per_file(tmp_path):
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a.csv", HEADER + "\n".join(GOOD) + "\n")
    with duckdb.connect() as con:
        con.execute(
            "copy (select * from read_csv(?, all_varchar=true)) to ? (format parquet)",
            [str(tmp_path / "in" / "a.csv"), str(tmp_path / "in" / "b.parquet")],
        )
    result = build_cleaning(tmp_path, tmp_path / "in" / "*")
    # b.parquet repeats a.csv: exact duplicates across files, the later file's copies go
    per_file = result.query(
        "select source_file, count(*) from marts.fct_order_lines group by 1 order by 1"
    )
    assert [(Path(f).name, n) for f, n in per_file] == [("a.csv", 3)]
    quarantined = result.query(
        "select source_file, source_row, reject_reason from marts.quarantined_transactions "
        "order by 2"
    )
    assert [(Path(f).name, r, why) for f, r, why in quarantined] == [
        ("b.parquet", 1, "duplicate_line"),
        ("b.parquet", 2, "duplicate_line"),
        ("b.parquet", 3, "duplicate_line"),
    ]
    kept = build_cleaning(tmp_path / "keep", tmp_path / "in" / "*", drop_exact_duplicates=False)
    per_file = kept.query(
        "select source_file, count(*) from marts.fct_order_lines group by 1 order by 1"
    )
    assert [(Path(f).name, n) for f, n in per_file] == [("a.csv", 3), ("b.parquet", 3)]


def test_excel_reads_every_sheet_with_rows_per_sheet(tmp_path):
    workbook = Workbook()
    first = workbook.active
    first.title = "Year 2009-2010"
    second = workbook.create_sheet("Year 2010-2011")
    header = [
        "Invoice",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "Price",
        "Customer ID",
        "Country",
    ]
    for sheet, day in [(first, 1), (second, 2)]:
        sheet.append(header)
        sheet.append(
            [
                "489434",
                "85048",
                "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
                12,
                dt.datetime(2009, 12, day, 7, 45),
                6.95,
                13085.0,
                "United Kingdom",
            ]
        )
        sheet.append(
            [
                "489435",
                "22350",
                "CAT BOWL",
                "twelve",
                dt.datetime(2009, 12, day, 7, 46),
                2.55,
                13085.0,
                "United Kingdom",
            ]
        )
    path = tmp_path / "online_retail_II.xlsx"
    workbook.save(path)
    result = build_cleaning(tmp_path, path)
    lines = result.query(
        "select source_file, source_row, customer_id, invoiced_at::varchar "
        "from marts.fct_order_lines order by 1"
    )
    assert [(s.split("[")[1], r, c, t) for s, r, c, t in lines] == [
        ("Year 2009-2010]", 1, 13085, "2009-12-01 07:45:00"),
        ("Year 2010-2011]", 1, 13085, "2009-12-02 07:45:00"),
    ]
    assert result.query("select source_row, reject_reason from marts.quarantined_transactions") == [
        (2, "invalid_quantity"),
        (2, "invalid_quantity"),
    ]


@pytest.mark.parametrize("damage", ["truncated", "not_a_workbook"])
def test_a_damaged_workbook_fails_naming_the_file(tmp_path, damage):
    workbook = Workbook()
    workbook.active.append(HEADER.strip().split(","))
    workbook.active.append(GOOD[0].split(","))
    whole = tmp_path / "whole.xlsx"
    workbook.save(whole)
    data = whole.read_bytes()
    path = tmp_path / "export.xlsx"
    path.write_bytes(data[: len(data) * 2 // 3] if damage == "truncated" else b"PK\x03\x04junk")
    output = fails_with(tmp_path / "b", {"transactions_path": str(path)}, "cannot read the Excel")
    message = next(line for line in output.splitlines() if "cannot read the Excel" in line)
    assert str(path) in message and "truncated or damaged" in message


def test_guest_policy_per_invoice_gives_negative_ids_per_guest_invoice(tmp_path):
    rows = [
        *GOOD,
        "536367,84879,BIRD ORNAMENT,32,12/1/2010 8:34,1.69,,United Kingdom",
        "536367,22745,POPPY'S PLAYHOUSE,6,12/1/2010 8:34,2.1,,United Kingdom",
    ]
    f = write(tmp_path / "guests.csv", HEADER + "\n".join(rows) + "\n")
    result = build_cleaning(tmp_path, f, guest_policy="per_invoice")
    assert result.query(
        "select invoice_no, customer_id, is_guest from marts.fct_orders order by invoice_no"
    ) == [("536365", 17850, False), ("536366", -1, True), ("536367", -2, True)]
