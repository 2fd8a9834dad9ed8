"""Forgetting a customer (docs/privacy.md): the lines of the customers on the forget list
(var `forget_customers_path`) reach no table of the build file or the serving file, no file
the build leaves, and no freed block of either DuckDB file; every mart equals a build on the
same input with those lines removed; a refresh applies a change of the list both ways."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, DbtResult, failure_summary, run_dbt
from openpyxl import Workbook
from test_refresh import QUICK, table_differences

from customer_segmentation import generate

BUILD = ["build", "--exclude-resource-type", "unit_test"]
ROWS = 11_000
# Two customers of the generated file get ids of nine digits (no row number, count or code
# of these files has one), their lines moved to the end of each file, a description planted.
FORGOTTEN = (314159265, 271828182)
NEVER_SEEN = 161803398  # on the list, in no line
PLANTED = "FORGET ME PLANTED 7731 XQZ"
HEADER = [
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Country",
]  # fmt: skip


def write_inputs(folder: Path, with_forgotten: bool) -> None:
    """Three exports: a generated CSV (Latin-1), a Windows-1252 CSV (read through a repaired
    copy) and a workbook; the forgotten customers' lines last in each (so that the files
    without them number every other row alike)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder.parent / "generated.csv"
    if not source.is_file():
        generate.generate(rows=ROWS, seed=7, output=str(source))
    with open(source, encoding="latin-1", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[6]] = counts.get(row[6], 0) + 1
    chosen = sorted((c for c in counts if c), key=lambda c: (-counts[c], c))[3:5]
    renamed = dict(zip(chosen, (f"{i}.0" for i in FORGOTTEN), strict=True))
    kept = [r for r in rows if r[6] not in renamed]
    theirs = [[*r[:6], renamed[r[6]], r[7]] for r in rows if r[6] in renamed]
    theirs[0][2] = PLANTED
    with open(folder / "a_generated.csv", "w", encoding="latin-1", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(
            [HEADER, *kept, *(theirs if with_forgotten else [])]
        )
    windows = [
        ["581001", "84029E", "RED WOOLLY HOTTIE \u20ac HEART", "6", "12/9/2011 10:01", "3.39",
         "17850", "United Kingdom"],
        ["581001", "22633", "HAND WARMER UNION JACK", "6", "12/9/2011 10:01", "1.85",
         "17850", "United Kingdom"],
        ["581002", "22632", f"{PLANTED} \u20ac", "2", "12/9/2011 10:05", "2.10",
         f"{FORGOTTEN[0]}", "France"],
    ]  # fmt: skip
    with open(folder / "b_windows.csv", "w", encoding="cp1252", newline="") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(
            [HEADER, *(windows if with_forgotten else windows[:2])]
        )
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Lines"
    sheet.append(HEADER)
    sheet.append(
        [
            "581003",
            "21730",
            "GLASS STAR LANTERN",
            4,
            "12/9/2011 11:00",
            4.95,
            13047,
            "United Kingdom",
        ]
    )
    if with_forgotten:
        sheet.append(
            ["581004", "21731", PLANTED, 1, "12/9/2011 11:02", 1.65, FORGOTTEN[1], "Spain"]
        )
    workbook.save(folder / "c_workbook.xlsx")


def write_list(path: Path, ids: list[object]) -> Path:
    path.write_text("customer_id\n" + "".join(f"{i}\n" for i in ids))
    return path


def dbt(workdir: Path, args: list[str], dbt_vars: dict) -> DbtResult:
    result = run_dbt(workdir, args, dbt_vars, env={"DBT_PARTIAL_PARSE": "true"})
    assert result.returncode == 0, failure_summary(result.output)
    return result


def clean_after_build(build: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "customer_segmentation.privacy", "--build", str(build)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def database_hits(path: Path, ids: tuple[int, ...]) -> dict[str, int]:
    """Per `schema.table.column` of every table: the values that hold one of `ids`, as a number
    (equal) or as text (a run of digits in the value cast to text). Views hold no rows: they
    read these tables, or input files (searched by `file_hits`)."""
    hits: dict[str, int] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("create temp table ids as select unnest(?) as id", [list(ids)])
        columns = con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database() and not internal and (schema_name, "
            "table_name) in (select (schema_name, table_name) from duckdb_tables())"
        ).fetchall()
        for schema, table, column, data_type in columns:
            value = f'"{schema}"."{table}"."{column}"'
            count = con.execute(
                f"select count(*) from (select unnest(regexp_extract_all(cast({value} as "
                f'varchar), \'[0-9]+\')) as run from "{schema}"."{table}") '
                "where run in (select cast(id as varchar) from ids)"
            ).fetchall()[0][0]
            if data_type not in {"VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP"}:
                count += con.execute(
                    f'select count(*) from "{schema}"."{table}" where try_cast({value} as '
                    "decimal(38, 4)) in (select id from ids)"
                ).fetchall()[0][0]
            if count:
                hits[f"{schema}.{table}.{column}"] = count
    return hits


def file_hits(folder: Path, needles: list[bytes]) -> dict[str, list[bytes]]:
    """The files under `folder` whose bytes hold one of `needles` (a number not inside a
    longer run of digits)."""
    hits: dict[str, list[bytes]] = {}
    patterns = [re.compile(rb"(?<![0-9])" + re.escape(n) + rb"(?![0-9])") for n in needles]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = [n for n, p in zip(needles, patterns, strict=True) if p.search(data)]
        if found:
            hits[str(path.relative_to(folder))] = found
    return hits


NEEDLES = [PLANTED.encode(), *(str(i).encode() for i in FORGOTTEN)]


def customer_queries(customer_id: int) -> list[str]:
    """A customer's orders, lines and rejected rows (text: `17850` or `17850.0`)."""
    return [
        f"select * from marts.fct_orders where customer_id = {customer_id}",
        f"select * from marts.fct_order_lines where customer_id = {customer_id}",
        "select * from marts.quarantined_transactions where customer_id in "
        f"('{customer_id}', '{customer_id}.0')",
    ]


@pytest.fixture(scope="module")
def forgotten(tmp_path_factory):
    """A build of the three exports; a refresh after the list names both customers and an id
    seen nowhere (the whole build, fits and publish included), then `make build`'s privacy
    step; and a build of the same exports without those customers' lines."""
    root = tmp_path_factory.mktemp("forget")
    exports = root / "exports"
    write_inputs(exports, with_forgotten=True)
    dbt_vars = {"transactions_path": str(exports / "*")}
    warehouse = root / "warehouse"
    before = dbt(warehouse, QUICK, dbt_vars)
    raw_before = file_hits(warehouse, NEEDLES)
    hits_before = database_hits(before.duckdb_path, FORGOTTEN)
    kept_before = {
        sql: sorted(before.query(sql), key=repr) for sql in customer_queries(FORGOTTEN[0])
    }
    listed = write_list(root / "forget.csv", [*FORGOTTEN, f"{NEVER_SEEN}.0"])
    after = dbt(warehouse, BUILD, {**dbt_vars, "forget_customers_path": str(listed)})
    # the forgotten rows' old blocks, before the privacy step rewrites the build file
    raw_after_build = file_hits(warehouse, NEEDLES)
    cleanup = clean_after_build(after.duckdb_path)
    without = root / "without"
    write_inputs(without, with_forgotten=False)
    reference = dbt(root / "reference", BUILD, {"transactions_path": str(without / "*")})
    return {
        "root": root,
        "before": before,
        "raw_before": raw_before,
        "hits_before": hits_before,
        "kept_before": kept_before,
        "after": after,
        "cleanup": cleanup,
        "raw_after_build": raw_after_build,
        "reference": reference,
        "vars": dbt_vars,
        "list": listed,
    }


def test_the_search_finds_the_customers_before_they_are_forgotten(forgotten):
    # what the other tests search for is there to be found when the list is not set
    hits = forgotten["hits_before"]
    assert hits["intermediate.int_invoice_lines.customer_id"] > 0
    assert hits["staging.stg_excel_invoice_lines.customer_id"] == 1
    assert set(forgotten["raw_before"]["retail.duckdb"]) == set(NEEDLES)
    repaired = [f for f in forgotten["raw_before"] if f.startswith("repaired_inputs/")]
    assert any(PLANTED.encode() in forgotten["raw_before"][f] for f in repaired)


def test_no_table_and_no_file_holds_a_forgotten_customer(forgotten):
    root = forgotten["root"]
    build = forgotten["after"].duckdb_path
    serving = root / "warehouse" / "serving.duckdb"
    assert "rewrote" in forgotten["cleanup"], forgotten["cleanup"]
    # before the step, the repaired copy of the Windows-1252 export held their line
    assert any(f.startswith("repaired_inputs/") for f in forgotten["raw_after_build"])
    assert database_hits(build, FORGOTTEN) == {}
    assert database_hits(serving, FORGOTTEN) == {}
    # every file the builds left (the DuckDB files' raw bytes, freed blocks included, dbt's
    # target and logs, repaired copies), and the serving file holds a new build
    assert file_hits(root / "warehouse", NEEDLES) == {}
    assert not (root / "warehouse" / "repaired_inputs").exists() or not any(
        (root / "warehouse" / "repaired_inputs").iterdir()
    )
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_rfm").fetchall()[0][0] > 50


def test_every_row_is_still_accounted_for(forgotten):
    after = forgotten["after"]
    rows = after.query(
        "select source_file, rows_in_file, rows_kept, rows_quarantined, rows_forgotten, "
        "rows_unaccounted, is_reconciled from marts.input_reconciliation order by 1"
    )
    reference = dict(
        (r[0].replace("/without/", "/exports/"), r[1:4])
        for r in forgotten["reference"].query(
            "select source_file, rows_in_file, rows_kept, rows_quarantined "
            "from marts.input_reconciliation"
        )
    )
    theirs = after.query(
        "select count(*) from intermediate.int_invoice_lines "
        "where reject_reason = 'customer_forgotten'"
    )[0][0]
    assert theirs > 20
    assert sum(r[4] for r in rows) == theirs
    for source_file, in_file, kept, quarantined, forgot, unaccounted, reconciled in rows:
        ref_in_file, ref_kept, ref_quarantined = reference[source_file]
        assert (in_file, kept, quarantined) == (ref_in_file + forgot, ref_kept, ref_quarantined)
        assert (unaccounted, reconciled) == (0, True)
    assert [r[4] for r in rows] == [theirs - 2, 1, 1]
    # the placeholder rows keep their place and nothing else
    assert after.query(
        "select count(*) from intermediate.int_invoice_lines "
        "where reject_reason = 'customer_forgotten' and coalesce(invoice_no, stock_code, "
        "description, country, quantity_text, unit_price_text, invoice_date_text, "
        "customer_id_text, cast(customer_id as varchar), cast(line_hash as varchar)) "
        "is not null"
    ) == [(0,)]
    # the id on the list that no line has is counted in the build log, never named
    output = after.output
    assert "forget list " in output and ": 3 customer id(s), 1 of them in no line" in output
    assert not any(str(i) in output for i in (*FORGOTTEN, NEVER_SEEN))


def test_every_mart_equals_a_build_without_their_lines(forgotten):
    after = forgotten["after"].duckdb_path
    reference = forgotten["reference"].duckdb_path
    problems = [
        p
        for p in table_differences(after, reference, schemas=("marts",))
        # the files' names, sizes and checksums differ, and the forgotten rows' count
        if not p.startswith("marts.input_reconciliation:")
        # the inputs' folder is in the source_file of every line and rejected row
        and not p.startswith(("marts.fct_order_lines:", "marts.quarantined_transactions:"))
    ]
    assert problems == []
    for table in ("fct_order_lines", "quarantined_transactions"):
        assert sorted(
            forgotten["after"].query(
                f"select * exclude (source_file), replace(source_file, '/exports/', '/') "
                f"from marts.{table}"
            ),
            key=repr,
        ) == sorted(
            forgotten["reference"].query(
                f"select * exclude (source_file), replace(source_file, '/without/', '/') "
                f"from marts.{table}"
            ),
            key=repr,
        )


def test_a_customer_taken_off_the_list_comes_back(forgotten):
    root = forgotten["root"]
    write_list(forgotten["list"], [FORGOTTEN[1], NEVER_SEEN])
    back = dbt(
        root / "warehouse",
        QUICK,
        {**forgotten["vars"], "forget_customers_path": str(forgotten["list"])},
    )
    for sql, rows in forgotten["kept_before"].items():
        assert sorted(back.query(sql), key=repr) == rows
        assert rows or "quarantined" in sql
    assert database_hits(back.duckdb_path, (FORGOTTEN[1],)) == {}
    assert back.query("select sum(rows_forgotten) from marts.input_reconciliation")[0][0] > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id\n17850\n", "has no column customer_id (its header: id)"),
        ("customer_id\n17850\nabc\n17851.5\n", "2 row(s) without a customer id"),
    ],
)
def test_a_bad_list_stops_the_build_naming_the_file(tmp_path, text, message):
    listed = tmp_path / "list.csv"
    listed.write_text(text)
    result = run_dbt(
        tmp_path / "w",
        ["run", "--select", "stg_input_files"],
        {"forget_customers_path": str(listed)},
    )
    assert result.returncode != 0
    assert message in result.output and str(listed) in result.output
    assert "abc" not in result.output.split(message)[1][:200]


def test_a_missing_list_stops_the_build(tmp_path):
    result = run_dbt(
        tmp_path / "w",
        ["run", "--select", "stg_input_files"],
        {"forget_customers_path": str(tmp_path / "nowhere.csv")},
    )
    assert result.returncode != 0
    assert "Forget list not found" in result.output


def test_the_rewrite_takes_in_a_wal_a_killed_process_left(tmp_path):
    from customer_segmentation.privacy import rewrite_database

    build = tmp_path / "retail.duckdb"
    # a process that writes a table and dies without closing the file (no checkpoint)
    writer = (
        "import duckdb, os, sys\n"
        "con = duckdb.connect(sys.argv[1], config={'checkpoint_threshold': '1GB'})\n"
        "con.execute('create table t as select range as x from range(1000)')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(build)], check=True)
    assert build.with_name("retail.duckdb.wal").exists()
    rewrite_database(build)
    assert not build.with_name("retail.duckdb.wal").exists()
    with duckdb.connect(str(build), read_only=True) as con:
        assert con.execute("select count(*), sum(x) from t").fetchall() == [(1000, 499500)]
