"""Refresh, not rebuild (docs/refresh.md): a build after a complete one reads only the input files
added or changed since, and every mart equals what a full build of the same files gives (rows,
EXCEPT ALL both ways, and column types), after any sequence of files added, grown, shrunk,
removed and put back, with copies of lines across files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
from conftest import BUILD, SAMPLE_CSV, DbtResult, failure_summary, run_dbt
from test_real_size import real_size_file

# The steps of a sequence leave out the data tests, the lifetime-value fits and the judging
# models: the fits and judges are tables recomputed whole by every build from the
# intermediate tables the steps compare (a third of a sample build's time each). The last
# steps of the sample's sequence build everything, tests included.
QUICK = [
    "build",
    "--exclude-resource-type",
    "unit_test",
    "test",
    "--exclude",
    *(
        f"{m}+"
        for m in (
            "clv_validation_customers",
            "clv_model",
            "recommendation_evaluation",
            "segment_backtest",
        )
    ),
]
# Columns that say how long a fit took: no two builds share them.
TIMINGS = {"fit_seconds"}
# Columns that say when a build wrote a row or what it did to a file: a refresh's differ.
WRITTEN = {"lines_written_at", "written_through", "earliest_invoiced_at", "build_change"}
# int_invoice_line_files also keeps the files a refresh found gone.
ROWS = {"intermediate.int_invoice_line_files": "where is_held"}


def month_files(source: Path) -> dict[str, list[list[str]]]:
    """The rows of a Kaggle-shaped CSV by calendar month of their date ('2011-03'), each with
    the header first."""
    with open(source, encoding="latin-1", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        column = header.index("InvoiceDate")
        months: dict[str, list[list[str]]] = {}
        for row in reader:
            month, _day, rest = row[column].split("/", 2)
            months.setdefault(f"{rest.split()[0]}-{int(month):02d}", [header]).append(row)
    return dict(sorted(months.items()))


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="latin-1", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def table_differences(refreshed: Path, full: Path, schemas=("marts", "intermediate")) -> list[str]:
    """How the tables of two build files differ: tables, columns and types, rows both ways
    (EXCEPT ALL over every column but the timings and what says when a row was written)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{refreshed}' as a (read_only)")
        con.execute(f"attach '{full}' as b (read_only)")
        columns = {}
        for db in ("a", "b"):
            columns[db] = dict(
                con.execute(
                    "select schema_name || '.' || table_name, "
                    "list((column_name, data_type) order by column_index) "
                    "from duckdb_columns() where database_name = ? and schema_name in "
                    f"({', '.join('?' for _ in schemas)}) group by all",
                    [db, *schemas],
                ).fetchall()
            )
        problems = []
        if set(columns["a"]) != set(columns["b"]):
            problems.append(f"tables {sorted(set(columns['a']) ^ set(columns['b']))}")
        for table in sorted(set(columns["a"]) & set(columns["b"])):
            if columns["a"][table] != columns["b"][table]:
                problems.append(f"{table}: columns or types")
                continue
            names = ", ".join(
                f'"{c}"' for c, _ in columns["a"][table] if c not in TIMINGS | WRITTEN
            )
            for x, y in (("a", "b"), ("b", "a")):
                (extra,) = con.execute(
                    f"select count(*) from (select {names} from {x}.{table} {ROWS.get(table, '')} "
                    f"except all select {names} from {y}.{table} {ROWS.get(table, '')})"
                ).fetchone()
                if extra:
                    problems.append(f"{table}: {extra} rows only in the {x} build")
        return problems
    finally:
        con.close()


class Folder:
    """A folder of monthly exports, refreshed into one build file step by step."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root / "exports"
        self.inputs.mkdir(parents=True)
        self.vars = {"transactions_path": str(self.inputs / "*.csv")}

    def put(self, name: str, rows: list[list[str]]) -> None:
        write_csv(self.inputs / name, rows)

    def remove(self, name: str) -> None:
        (self.inputs / name).unlink()

    def build(self, name: str, args: list[str]) -> DbtResult:
        # dbt's partial parse: each folder keeps its own target, and the project does not
        # change between the steps (a changed var makes dbt parse again)
        result = run_dbt(self.root / name, args, self.vars, env={"DBT_PARTIAL_PARSE": "true"})
        assert result.returncode == 0, failure_summary(result.output)
        return result

    def refresh(self, args: list[str] = QUICK) -> DbtResult:
        return self.build("refreshed", args)

    def assert_equals_a_full_build(self, args: list[str] = QUICK) -> None:
        full = self.build("full", args)
        refreshed = self.root / "refreshed" / "retail.duckdb"
        assert table_differences(refreshed, full.duckdb_path) == []
        # the next full build starts from no build file (its target keeps dbt's parse)
        for path in (self.root / "full").glob("*.duckdb*"):
            path.unlink()
        shutil.rmtree(self.root / "full" / "repaired_inputs", ignore_errors=True)


def changes(result: DbtResult) -> tuple:
    """What the build did to the input files (int_invoice_line_files): the build's kind and the
    names added, changed and removed, as the log's last line and build_info say them."""
    rows = result.query(
        "select build_change, list(input_file order by input_file) "
        "from intermediate.int_invoice_line_files group by build_change"
    )
    files = {change: [Path(f).name for f in names] for change, names in rows}
    kind = "refresh" if "unchanged" in files else "full"
    assert f"{kind} build: input files " in result.output
    return kind, *(files.get(change, []) for change in ("added", "changed", "removed"))


def build_info(result: DbtResult) -> tuple:
    with duckdb.connect(str(result.duckdb_path.parent / "serving.duckdb"), read_only=True) as con:
        kind, added, changed, removed = con.execute(
            "select build_kind, files_added, files_changed, files_removed from marts.build_info"
        ).fetchone()
    return kind, *(sorted(Path(f).name for f in json.loads(x)) for x in (added, changed, removed))


def test_monthly_exports_refreshed_step_by_step_equal_a_full_build(tmp_path):
    """Files added (one in its first five days, every date of which reads both ways), grown,
    removed and put back, shrunk, copies of lines across files, a refresh stopped part way and
    a cleaning var changed: after each, every table equals a full build of the same files."""
    months = month_files(SAMPLE_CSV)
    names = list(months)
    header = months[names[0]][0]
    folder = Folder(tmp_path)
    for month in names[:10]:
        folder.put(f"{month}.csv", months[month])
    assert changes(folder.refresh())[0] == "full"

    # a new month; this month's export in its first five days
    folder.put(f"{names[10]}.csv", months[names[10]])
    december = months[names[12]]
    folder.put(
        f"{names[12]}.csv", [header, *(r for r in december[1:] if int(r[4].split("/")[1]) <= 5)]
    )
    assert changes(folder.refresh()) == (
        "refresh",
        [f"{names[10]}.csv", f"{names[12]}.csv"],
        [],
        [],
    )

    # December's export grows to its last day; a file of copies of May's first lines, named
    # to sort before May, makes May's lines duplicates (a copy spans two files); March goes
    folder.put(f"{names[12]}.csv", december)
    folder.put("2011-04-copies.csv", months["2011-05"][:201])
    folder.remove("2011-03.csv")
    assert changes(folder.refresh()) == (
        "refresh",
        ["2011-04-copies.csv"],
        ["2011-05.csv", f"{names[12]}.csv"],
        ["2011-03.csv"],
    )
    folder.assert_equals_a_full_build()

    # the copies go (May's lines are accepted again), March is put back, February shrinks,
    # November arrives; the refresh stops after the aggregates of the lines (a build killed
    # there: the models after them did not run), and the next one finishes it
    folder.remove("2011-04-copies.csv")
    folder.put("2011-03.csv", months["2011-03"])
    folder.put("2011-02.csv", months["2011-02"][:1500])
    folder.put(f"{names[11]}.csv", months[names[11]])
    stopped = folder.refresh([*QUICK, "--select", "+int_order_products"])
    kind, added, changed, removed = changes(stopped)
    assert (kind, removed) == ("refresh", ["2011-04-copies.csv"])
    assert added == ["2011-03.csv", f"{names[11]}.csv"] and "2011-05.csv" in changed
    assert changes(folder.refresh()) == ("refresh", [], [], [])
    folder.assert_equals_a_full_build()

    # a cleaning var changes: every file is read again under it, nothing of the old rules
    # stays; guests become customers, one per invoice (numbered over all invoices): the
    # aggregates are made again in full while that holds
    folder.vars.update(min_unit_price=1, guest_policy="per_invoice")
    kind, added, changed, removed = changes(folder.refresh())
    assert (kind, added, removed, len(changed)) == ("full", [], [], 13)
    folder.put("2011-10.csv", months["2011-10"][:-300])
    assert changes(folder.refresh()) == ("refresh", [], ["2011-10.csv"], [])
    folder.assert_equals_a_full_build()

    # the vars back and a file of copies of June's lines (all duplicates); then the whole
    # build, fits and publish included, after that file grew: every mart and build_info
    folder.vars = {"transactions_path": folder.vars["transactions_path"]}
    folder.put("2011-12-extra.csv", [header, *months["2011-06"][1:50]])
    assert changes(folder.refresh())[:2] == ("full", ["2011-12-extra.csv"])
    folder.put("2011-12-extra.csv", [header, *months["2011-06"][1:60]])
    assert build_info(folder.refresh(BUILD)) == ("refresh", [], ["2011-12-extra.csv"], [])
    folder.assert_equals_a_full_build(BUILD)


def test_a_real_size_file_in_monthly_exports_refreshed_equals_a_full_build(tmp_path):
    """The 610,000-line file of test_real_size cut into months: a month removed while copies
    of its lines arrive in another file (they become the originals), this month's export
    added without its last day; then the month put back (its lines are the copies now) and
    the export grown by its last day. Every table equals a full build of the same files."""
    months = month_files(real_size_file())
    names = list(months)
    header = months[names[0]][0]
    folder = Folder(tmp_path)
    for month in names[:-1]:
        folder.put(f"{month}.csv", months[month])
    assert changes(folder.refresh())[0] == "full"

    last = months[names[-1]]
    last_day = max(r[4].split()[0] for r in last[1:])
    folder.remove("2011-03.csv")
    folder.put("2011-03-copies.csv", [header, *months["2011-03"][1:2001]])
    folder.put(f"{names[-1]}.csv", [header, *(r for r in last[1:] if r[4].split()[0] != last_day)])
    assert changes(folder.refresh()) == (
        "refresh",
        ["2011-03-copies.csv", f"{names[-1]}.csv"],
        [],
        ["2011-03.csv"],
    )
    folder.put("2011-03.csv", months["2011-03"])
    folder.put(f"{names[-1]}.csv", last)
    assert changes(folder.refresh()) == ("refresh", ["2011-03.csv"], [f"{names[-1]}.csv"], [])
    # every accepted line of the copies has its twin in March, a duplicate now
    with duckdb.connect(str(folder.root / "refreshed" / "retail.duckdb"), read_only=True) as con:
        copies, twins = con.execute(
            "select count(*) filter (where input_file like '%/2011-03-copies.csv' "
            "and reject_reason is null), count(*) filter (where input_file like '%/2011-03.csv' "
            "and reject_reason = 'duplicate_line') from intermediate.int_invoice_lines"
        ).fetchone()
    assert twins >= copies > 1000
    folder.assert_equals_a_full_build()
