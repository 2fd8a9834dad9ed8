"""Tests of the synthetic data generator: exact size, determinism, layout and the quirks.

One 60,000-row file (the size of the bundled sample) is generated per module and read back
with Python's csv module, independently of DuckDB's writer, then queried with DuckDB.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from customer_segmentation.generate import HEADER, NON_PRODUCT_CODES, _run, generate

ROWS = 60_000
SEED = 42
START, END = dt.date(2010, 12, 1), dt.date(2011, 12, 9)


def read_lines(path: Path, encoding: str = "latin-1") -> tuple[list[str], pa.Table]:
    """The header and the typed rows of a generated CSV, with the file's row number."""
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(HEADER)

    def opt_float(values):
        return [float(v) if v else None for v in values]

    table = pa.table(
        {
            "rn": list(range(1, len(rows) + 1)),
            "InvoiceNo": list(cols[0]),
            "StockCode": list(cols[1]),
            "Description": [v or None for v in cols[2]],
            "Quantity": [int(v) for v in cols[3]],
            "InvoiceDate": [dt.datetime.strptime(v, "%m/%d/%Y %H:%M") for v in cols[4]],
            "UnitPrice": [float(v) for v in cols[5]],
            "CustomerID": opt_float(cols[6]),
            "Country": list(cols[7]),
        }
    )
    return header, table


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "lines.csv"
    assert generate(ROWS, SEED, path) == ROWS
    return path


@pytest.fixture(scope="module")
def con(sample) -> duckdb.DuckDBPyConnection:
    header, table = read_lines(sample)
    assert header == HEADER
    db = duckdb.connect()
    db.register("arrow_lines", table)
    db.execute("CREATE TABLE lines AS SELECT * FROM arrow_lines")
    yield db
    db.close()


def one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchall()[0][0]


def share(con: duckdb.DuckDBPyConnection, condition: str) -> float:
    return one(con, f"SELECT avg(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END) FROM lines")


# --------------------------------------------------------------------------- size, determinism


def test_exact_row_count(con):
    assert one(con, "SELECT count(*) FROM lines") == ROWS


@pytest.mark.parametrize("rows", [0, 1, 17, 1_000])
def test_small_row_counts_are_exact(tmp_path, rows):
    path = tmp_path / "small.csv"
    assert generate(rows, 7, path) == rows
    header, table = read_lines(path)
    assert header == HEADER
    assert table.num_rows == rows


def test_same_seed_is_byte_identical_other_seed_differs(sample, tmp_path):
    again, other = tmp_path / "again.csv", tmp_path / "other.csv"
    generate(ROWS, SEED, again)
    generate(ROWS, SEED + 1, other)
    assert again.read_bytes() == sample.read_bytes()
    assert other.read_bytes() != sample.read_bytes()


def test_thread_count_does_not_change_output(tmp_path):
    """Big enough (~135,000 invoices: over one 122,880-row group) to run in parallel."""
    rows = 3_000_000
    one_thread, four_threads = tmp_path / "t1.csv", tmp_path / "t4.csv"
    args = ("latin-1", "2010-12-01", "2011-12-09")
    _run(rows, 3, one_thread, None, *args, threads=1)
    _run(rows, 3, four_threads, None, *args, threads=4)
    assert one_thread.read_bytes() == four_threads.read_bytes()


# --------------------------------------------------------------------------- layout


def test_header_and_field_formats(sample):
    text = sample.read_bytes().decode("latin-1")
    lines = text.split("\n")
    assert lines[0] == ",".join(HEADER)
    assert lines[-1] == ""  # ends with a newline
    first = next(csv.reader([lines[1]]))
    assert first[0] == "536365"
    # InvoiceDate like 12/1/2010 8:26: no zero padding
    assert dt.datetime.strptime(first[4], "%m/%d/%Y %H:%M").date() >= START
    assert "/0" not in first[4] and not first[4].startswith("0") and " 0" not in first[4]
    customer_ids = {row[6] for row in csv.reader(lines[1:2000]) if row}
    assert "" in customer_ids  # guests
    assert all(c == "" or (c.endswith(".0") and c[:-2].isdigit()) for c in customer_ids)
    assert '"' in text  # descriptions with commas are quoted


def test_latin1_by_default_utf8_on_request(sample, tmp_path):
    raw = sample.read_bytes()
    assert b"Gift Voucher \xa3" in raw  # the pound sign as one ISO-8859-1 byte
    assert b"\xc2\xa3" not in raw
    utf8 = tmp_path / "utf8.csv"
    generate(ROWS, SEED, utf8, encoding="utf-8")
    assert utf8.read_bytes().decode("utf-8") == raw.decode("latin-1")
    assert "CAFÉ" in raw.decode("latin-1")


def test_parquet_has_same_rows_and_types(sample, con, tmp_path):
    path = tmp_path / "lines.parquet"
    assert generate(ROWS, SEED, path) == ROWS  # format from the suffix
    db = duckdb.connect()
    described = db.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    types = {name: kind for name, kind, *_ in described}
    assert list(types) == HEADER
    assert types["InvoiceDate"] == "TIMESTAMP" and types["Quantity"] == "BIGINT"
    assert types["UnitPrice"] == "DOUBLE" and types["CustomerID"] == "DOUBLE"
    parquet = db.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
    csv_rows = con.execute(f"SELECT {', '.join(HEADER)} FROM lines ORDER BY rn").fetchall()
    assert parquet == csv_rows


def test_csv_gz_is_reproducible(sample, tmp_path):
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    generate(ROWS, SEED, a)
    generate(ROWS, SEED, b)
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()) == sample.read_bytes()


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        generate(10, 1, tmp_path / "x.csv", start="2011-12-09", end="2011-12-01")
    with pytest.raises(ValueError):
        generate(10, 1, tmp_path / "x.csv", start="2011-12-10", end="2011-12-10")  # Saturday
    with pytest.raises(ValueError):
        generate(-1, 1, tmp_path / "x.csv")
    with pytest.raises(ValueError):
        generate(10, 1, tmp_path / "x.csv", encoding="utf-16")


# --------------------------------------------------------------------------- time


def test_dates_cover_the_period_without_saturdays(con):
    first, last = con.execute("SELECT min(InvoiceDate), max(InvoiceDate) FROM lines").fetchall()[0]
    assert START <= first.date() and last.date() <= END
    assert last.date() >= END - dt.timedelta(days=7)
    assert one(con, "SELECT count(*) FROM lines WHERE isodow(InvoiceDate) = 6") == 0
    hours = one(con, "SELECT list(DISTINCT hour(InvoiceDate)) FROM lines")
    assert min(hours) >= 7 and max(hours) <= 20


def test_invoice_numbers_follow_time_and_lines_stay_together(con):
    assert one(con, "SELECT min(InvoiceNo) FROM lines WHERE InvoiceNo SIMILAR TO '[0-9]+'") == (
        "536365"
    )
    out_of_order = one(
        con,
        """SELECT count(*) FROM (
               SELECT InvoiceDate, regexp_replace(InvoiceNo, '^[CA]', '')::INTEGER AS no,
                      lag(InvoiceDate) OVER (ORDER BY rn) AS prev_date,
                      lag(regexp_replace(InvoiceNo, '^[CA]', '')::INTEGER) OVER (ORDER BY rn)
                          AS prev_no
               FROM lines)
           WHERE InvoiceDate < prev_date OR no < prev_no""",
    )
    assert out_of_order == 0
    split = one(
        con,
        """SELECT count(*) FROM (
               SELECT InvoiceNo, max(rn) - min(rn) + 1 AS span, count(*) AS n
               FROM lines GROUP BY 1)
           WHERE span <> n""",
    )
    assert split == 0


def test_november_is_the_top_month_by_revenue(con):
    top = one(
        con,
        """SELECT strftime(date_trunc('month', InvoiceDate), '%Y-%m')
           FROM lines GROUP BY 1 ORDER BY sum(Quantity * UnitPrice) DESC LIMIT 1""",
    )
    assert top == "2011-11"


# --------------------------------------------------------------------------- quirks


def test_quirk_rates_are_near_the_real_data(con):
    # real data: 25% guest lines, 1.7% C lines, 0.97% duplicates, 0.25% write-offs,
    # 0.46% price 0, 0.27% without description
    assert 0.21 <= share(con, "CustomerID IS NULL") <= 0.30
    assert 0.012 <= share(con, "InvoiceNo LIKE 'C%'") <= 0.022
    assert 0.0015 <= share(con, "Quantity < 0 AND InvoiceNo NOT LIKE 'C%'") <= 0.0035
    assert 0.003 <= share(con, "UnitPrice = 0") <= 0.007
    assert 0.0015 <= share(con, "Description IS NULL") <= 0.004
    duplicates = one(
        con,
        """SELECT count(*) FROM (
               SELECT *, lag(struct_pack(InvoiceNo, StockCode, Description, Quantity,
                                         InvoiceDate, UnitPrice, CustomerID, Country))
                             OVER (ORDER BY rn) AS prev
               FROM lines)
           WHERE prev IS NOT DISTINCT FROM struct_pack(InvoiceNo, StockCode, Description,
                                                      Quantity, InvoiceDate, UnitPrice,
                                                      CustomerID, Country)""",
    )
    assert 0.007 <= duplicates / ROWS <= 0.013


def test_cancellations_reverse_earlier_sales_of_the_same_customer(con):
    bad = con.execute(
        """SELECT count(*) FILTER (WHERE CustomerID IS NULL),
                  count(*) FILTER (WHERE Quantity >= 0)
           FROM lines WHERE InvoiceNo LIKE 'C%'"""
    ).fetchall()[0]
    assert bad == (0, 0)
    # D (discount) and CRUK (charity commission) are credits, not reversals of a sale
    unmatched = one(
        con,
        """SELECT count(*) FROM lines c
           WHERE c.InvoiceNo LIKE 'C%' AND c.StockCode NOT IN ('D', 'CRUK')
             AND NOT EXISTS (
               SELECT 1 FROM lines s
               WHERE s.InvoiceNo NOT LIKE 'C%' AND s.rn < c.rn
                 AND s.CustomerID = c.CustomerID AND s.StockCode = c.StockCode
                 AND s.UnitPrice = c.UnitPrice AND s.InvoiceDate <= c.InvoiceDate
                 AND s.Description IS NOT DISTINCT FROM c.Description
                 AND s.Quantity >= -c.Quantity)""",
    )
    assert unmatched == 0
    assert one(con, "SELECT count(*) FROM lines WHERE StockCode = 'D' AND Quantity < 0") >= 1


def test_bad_debt_adjustments(con):
    rows = con.execute(
        """SELECT StockCode, Description, Quantity, UnitPrice, CustomerID
           FROM lines WHERE InvoiceNo LIKE 'A%' ORDER BY rn"""
    ).fetchall()
    assert len(rows) >= 3
    assert rows[:3] == [
        ("B", "Adjust bad debt", 1, 11062.06, None),
        ("B", "Adjust bad debt", 1, -11062.06, None),
        ("B", "Adjust bad debt", 1, -11062.06, None),
    ]
    others = "SELECT count(*) FROM lines WHERE UnitPrice < 0 AND InvoiceNo NOT LIKE 'A%'"
    assert one(con, others) == 0


@pytest.mark.parametrize(
    ("code", "quantity", "price"),
    [("23843", 80995, 2.08), ("23166", 74215, 1.04), ("M", 1, 38970.0)],
)
def test_huge_mistakes_are_cancelled_right_after(con, code, quantity, price):
    rows = con.execute(
        f"""SELECT InvoiceNo, Quantity, CustomerID, InvoiceDate FROM lines
            WHERE StockCode = '{code}' AND abs(Quantity) = {quantity} AND UnitPrice = {price}
            ORDER BY rn"""
    ).fetchall()
    assert len(rows) == 2
    (sale_no, sale_qty, sale_cust, sale_at), (canc_no, canc_qty, canc_cust, canc_at) = rows
    assert not sale_no.startswith("C") and canc_no.startswith("C")
    assert sale_qty + canc_qty == 0
    assert sale_cust is not None and sale_cust == canc_cust
    assert dt.timedelta(0) <= canc_at - sale_at <= dt.timedelta(hours=1)


def test_stock_write_offs(con):
    rows = con.execute(
        """SELECT DISTINCT UnitPrice, CustomerID IS NULL, Description FROM lines
           WHERE Quantity < 0 AND InvoiceNo NOT LIKE 'C%'"""
    ).fetchall()
    assert {(price, guest) for price, guest, _ in rows} == {(0.0, True)}
    texts = {d for *_, d in rows}
    assert texts <= {"damaged", "check", "?", "wet damaged", "lost", "Damaged",
                     "sold as set on dotcom", None}  # fmt: skip
    assert None in texts and "damaged" in texts


def test_every_non_product_code_appears(con):
    codes = {c for (c,) in con.execute("SELECT DISTINCT StockCode FROM lines").fetchall()}
    assert set(NON_PRODUCT_CODES) <= codes
    assert {"DCGSSBOY", "DCGSSGIRL", "gift_0001_10", "gift_0001_20", "m", "PADS"} <= codes
    assert one(con, "SELECT max(UnitPrice) FROM lines WHERE StockCode = 'AMAZONFEE'") == 17836.46
    assert one(con, "SELECT min(UnitPrice) FROM lines WHERE StockCode = 'PADS'") == 0.001
    post = con.execute(
        "SELECT min(UnitPrice), max(UnitPrice) FROM lines WHERE StockCode = 'POST'"
    ).fetchall()[0]
    assert 15 <= post[0] and post[1] <= 40
    assert 0.001 <= share(con, "StockCode = 'POST'") <= 0.004


def test_countries(con):
    countries = {c for (c,) in con.execute("SELECT DISTINCT Country FROM lines").fetchall()}
    assert {"United Kingdom", "Unspecified", "European Community", "Germany"} <= countries
    # real: 0.91; a few wholesale buyers abroad move it a lot in small files
    assert 0.80 <= share(con, "Country = 'United Kingdom'") <= 0.97
    assert (
        one(
            con,
            """SELECT max(n) FROM (SELECT CustomerID, count(DISTINCT Country) AS n
                               FROM lines WHERE CustomerID IS NOT NULL GROUP BY 1)""",
        )
        == 1
    )


def test_customers_are_skewed(con):
    counts = [
        n
        for (n,) in con.execute(
            """SELECT count(DISTINCT InvoiceNo) FROM lines
               WHERE CustomerID IS NOT NULL AND InvoiceNo NOT LIKE 'C%'
               GROUP BY CustomerID ORDER BY 1 DESC"""
        ).fetchall()
    ]
    customers = len(counts)
    assert 100 <= ROWS / customers <= 150  # real data: one customer per ~125 lines
    assert sorted(counts)[len(counts) // 2] <= 2  # median
    top = counts[: max(1, round(customers * 0.02))]
    assert min(top) >= 20


def test_custom_period(tmp_path):
    path = tmp_path / "march.csv"
    assert generate(5_000, 1, path, start="2011-03-01", end="2011-03-31") == 5_000
    _, table = read_lines(path)
    dates = table.column("InvoiceDate").to_pylist()
    assert min(dates).date() >= dt.date(2011, 3, 1) and max(dates).date() <= dt.date(2011, 3, 31)
