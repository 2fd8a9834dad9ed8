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
import pytest
from conftest import SAMPLE_CSV, DbtResult, build_ok, run_dbt

BUILD = ["build", "--exclude-resource-type", "unit_test"]
# Columns that say how long a fit took: no two builds share them.
TIMINGS = {"fit_seconds"}


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


def mart_differences(refreshed: Path, full: Path) -> list[str]:
    """How the marts of two build files differ: tables, columns and types, rows both ways
    (EXCEPT ALL over every column but the timings); build_info is the serving file's."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{refreshed}' as a (read_only)")
        con.execute(f"attach '{full}' as b (read_only)")
        columns = {}
        for db in ("a", "b"):
            columns[db] = dict(
                con.execute(
                    "select table_name, list((column_name, data_type) order by column_index) "
                    "from duckdb_columns() where database_name = ? and schema_name = 'marts' "
                    "group by table_name",
                    [db],
                ).fetchall()
            )
        problems = []
        if set(columns["a"]) != set(columns["b"]):
            problems.append(f"tables {sorted(set(columns['a']) ^ set(columns['b']))}")
        for table in sorted(set(columns["a"]) & set(columns["b"])):
            if columns["a"][table] != columns["b"][table]:
                problems.append(f"{table}: columns or types")
                continue
            names = ", ".join(f'"{c}"' for c, _ in columns["a"][table] if c not in TIMINGS)
            for x, y in (("a", "b"), ("b", "a")):
                (extra,) = con.execute(
                    f"select count(*) from (select {names} from {x}.marts.{table} "
                    f"except all select {names} from {y}.marts.{table})"
                ).fetchone()
                if extra:
                    problems.append(f"{table}: {extra} rows only in the {x} build")
        return problems
    finally:
        con.close()


class Folder:
    """A folder of monthly exports, refreshed into one build file step by step."""

    def __init__(self, root: Path, months: dict[str, list[list[str]]]) -> None:
        self.root = root
        self.months = months
        self.inputs = root / "exports"
        self.inputs.mkdir(parents=True)
        self.step = 0

    def put(self, name: str, rows: list[list[str]]) -> None:
        write_csv(self.inputs / name, rows)

    def remove(self, name: str) -> None:
        (self.inputs / name).unlink()

    def refresh(self) -> DbtResult:
        self.step += 1
        return build_ok(
            self.root / "refreshed", {"transactions_path": str(self.inputs / "*.csv")}, BUILD
        )

    def assert_equals_a_full_build(self) -> None:
        full = self.root / f"full_{self.step}"
        result = build_ok(full, {"transactions_path": str(self.inputs / "*.csv")}, BUILD)
        assert mart_differences(self.root / "refreshed" / "retail.duckdb", result.duckdb_path) == []
        shutil.rmtree(full)


def build_info(result: DbtResult) -> tuple:
    with duckdb.connect(str(result.duckdb_path.parent / "serving.duckdb"), read_only=True) as con:
        kind, added, changed, removed = con.execute(
            "select build_kind, files_added, files_changed, files_removed from marts.build_info"
        ).fetchone()
    return kind, *(sorted(Path(f).name for f in json.loads(x)) for x in (added, changed, removed))


def test_a_sequence_of_monthly_exports_refreshed_equals_a_full_build(tmp_path):
    months = month_files(SAMPLE_CSV)
    folder = Folder(tmp_path, months)
    names = list(months)
    header = months[names[0]][0]
    for month in names[:10]:
        folder.put(f"{month}.csv", months[month])
    first = folder.refresh()
    assert build_info(first)[0] == "full"

    # a new month; this month's export in its first five days (every date reads both ways)
    folder.put(f"{names[10]}.csv", months[names[10]])
    december = months[names[12]]
    early = [row for row in december[1:] if int(row[4].split("/")[1]) <= 5]
    folder.put(f"{names[12]}.csv", [header, *early])
    assert build_info(folder.refresh()) == (
        "refresh",
        [f"{names[10]}.csv", f"{names[12]}.csv"],
        [],
        [],
    )
    # December's export grows to its last day; a file of copies of May's first lines, named
    # to sort before May, makes them duplicates (a copy spans two files); March is removed
    folder.put(f"{names[12]}.csv", december)
    folder.put("2011-04-copies.csv", months["2011-05"][:201])
    folder.remove("2011-03.csv")
    assert build_info(folder.refresh()) == (
        "refresh",
        ["2011-04-copies.csv"],
        ["2011-05.csv", f"{names[12]}.csv"],
        ["2011-03.csv"],
    )
    folder.assert_equals_a_full_build()

    # the copies go (May's lines are accepted again), March is put back, February shrinks,
    # November arrives
    folder.remove("2011-04-copies.csv")
    folder.put("2011-03.csv", months["2011-03"])
    folder.put("2011-02.csv", months["2011-02"][:1500])
    folder.put(f"{names[11]}.csv", months[names[11]])
    refreshed = folder.refresh()
    kind, added, changed, removed = build_info(refreshed)
    assert (kind, removed) == ("refresh", ["2011-04-copies.csv"])
    assert added == ["2011-03.csv", f"{names[11]}.csv"] and "2011-05.csv" in changed
    folder.assert_equals_a_full_build()


def test_a_changed_cleaning_var_reads_every_file_again(tmp_path):
    months = month_files(SAMPLE_CSV)
    folder = Folder(tmp_path, months)
    for month in list(months)[:4]:
        folder.put(f"{month}.csv", months[month])
    folder.refresh()
    strict = {"transactions_path": str(folder.inputs / "*.csv"), "min_unit_price": 1}
    refreshed = build_ok(tmp_path / "refreshed", strict, BUILD)
    kind, added, changed, removed = build_info(refreshed)
    assert (kind, added, removed) == ("full", [], []) and len(changed) == 4
    full = build_ok(tmp_path / "full", strict, BUILD)
    assert mart_differences(refreshed.duckdb_path, full.duckdb_path) == []


@pytest.mark.parametrize("signal_after", ["int_invoice_lines", "int_order_products"])
def test_a_refresh_killed_part_way_leaves_a_file_the_next_refresh_gets_right(
    tmp_path, signal_after
):
    months = month_files(SAMPLE_CSV)
    folder = Folder(tmp_path, months)
    names = list(months)
    for month in names[:6]:
        folder.put(f"{month}.csv", months[month])
    folder.refresh()
    serving = (tmp_path / "refreshed" / "serving.duckdb").read_bytes()
    folder.put(f"{names[6]}.csv", months[names[6]])
    folder.remove(f"{names[2]}.csv")
    # the refresh stops after the model named: the next models did not run
    stopped = run_dbt(
        tmp_path / "refreshed",
        [*BUILD, "--select", f"+{signal_after}"],
        {"transactions_path": str(folder.inputs / "*.csv")},
    )
    assert stopped.returncode == 0, stopped.output[-3000:]
    assert (tmp_path / "refreshed" / "serving.duckdb").read_bytes() == serving
    folder.refresh()
    folder.assert_equals_a_full_build()
