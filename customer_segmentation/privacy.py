"""The forget list outside the SQL models (docs/privacy.md, "Forgetting a customer").

`forget_ids` reads the ids of the list named by the dbt var `forget_customers_path`, as
macros/forget_list.sql reads them for SQL (the build's on-run-start has checked the file).

`python -m customer_segmentation.privacy` (run by `make build` after `dbt build`) removes what
the build leaves behind of forgotten customers outside its tables. DuckDB does not overwrite
the blocks a delete or a replaced table frees: they stay in the file, unreadable through SQL
but readable as bytes, until later writes reuse them. So when the build file holds forgotten
customers' rows and the last build read every input file again (a change of the forget list
reads them all), the build file is copied table by table into a new file (`COPY FROM
DATABASE`), which replaces it; and while the build file holds forgotten customers' rows, the
repaired copies of inputs (`repaired_inputs/`, copies of the inputs with every row) are
deleted after each build (the next build that reads such an input makes its copy again). The
serving file needs nothing: each publish writes a new file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from customer_segmentation.sql_text import quote_ident, quote_literal

DEFAULT_BUILD_PATH = "warehouse/retail.duckdb"
REPAIRED_FOLDER = "repaired_inputs"

#: A customer id as stg_invoice_lines reads customer_id, from a text column `customer_id`: a
#: whole number from 1 to 10^15 (`17850.0` is 17850), else null; macros/forget_list.sql reads
#: the list with the same expression.
ID_EXPRESSION = """
case
    when try_cast(trim(customer_id) as double) = floor(try_cast(trim(customer_id) as double))
        and try_cast(trim(customer_id) as double) between 1 and 1e15
        then cast(try_cast(trim(customer_id) as double) as bigint)
end
"""

_IDS_SQL = f"""
select distinct id
from (
    select {ID_EXPRESSION} as id
    from read_csv($path, header = true, all_varchar = true, auto_detect = true,
                  null_padding = true)
)
where id is not null
"""


def forget_ids(con: duckdb.DuckDBPyConnection, path: str | None) -> frozenset[int]:
    """The customer ids on the forget list at `path` (none when `path` is empty)."""
    if not path:
        return frozenset()
    return frozenset(r[0] for r in con.execute(_IDS_SQL, {"path": path}).fetchall())


@dataclass(frozen=True)
class Cleanup:
    """What `clean_after_build` did."""

    rewritten: bool
    seconds: float
    size_before: int
    size_after: int
    files_removed: tuple[str, ...]

    def describe(self, build: Path) -> str:
        if not self.rewritten and not self.files_removed:
            return f"privacy: nothing to do for {build} (no forgotten customer, or none new)"
        parts = []
        if self.rewritten:
            parts.append(
                f"rewrote {build} into a new file in {self.seconds:.1f} s "
                f"({self.size_before / 1e6:,.1f} MB -> {self.size_after / 1e6:,.1f} MB), "
                "so that no freed block keeps a forgotten customer's rows"
            )
        if self.files_removed:
            parts.append(f"removed {len(self.files_removed)} repaired input file(s)")
        return "privacy: " + "; ".join(parts) + "."


def _state(build: Path) -> tuple[bool, bool]:
    """(the build file holds forgotten customers' rows, its last build read every file)."""
    con = duckdb.connect(str(build), read_only=True)
    try:
        tables = {
            (s, t)
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database()"
            ).fetchall()
        }
        needed = {("intermediate", "int_invoice_lines"), ("intermediate", "int_invoice_line_files")}
        if not needed <= tables:
            return False, False
        forgotten = con.execute(
            "select count(*) > 0 from intermediate.int_invoice_lines "
            "where reject_reason = 'customer_forgotten'"
        ).fetchall()[0][0]
        read_all = con.execute(
            "select coalesce(bool_and(build_change in ('added', 'changed')), false) "
            "from intermediate.int_invoice_line_files "
            "where build_change not in ('removed', 'gone')"
        ).fetchall()[0][0]
        return bool(forgotten), bool(read_all)
    finally:
        con.close()


def rewrite_database(build: Path) -> tuple[int, int]:
    """Copy every schema, table, view and comment of `build` into a new file that then
    replaces it (no other process may have it open). Returns the sizes before and after."""
    # a WAL left by a process that did not close the file (a killed build) belongs to it:
    # merged into it first, or it would stay beside the new file, which it does not match
    if build.with_name(build.name + ".wal").exists():
        with duckdb.connect(str(build)) as con:
            con.execute("checkpoint")
    size_before = build.stat().st_size
    tmp = build.with_name(f".{build.name}.rewrite-{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    source = build.stem
    con = duckdb.connect()
    try:
        con.execute(f"attach {quote_literal(str(build))} as {quote_ident(source)} (read_only)")
        con.execute(f"attach {quote_literal(str(tmp))} as __rewrite_target")
        con.execute(f"copy from database {quote_ident(source)} to __rewrite_target")
        con.execute("detach __rewrite_target")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, build)
    return size_before, build.stat().st_size


def clean_after_build(build: Path) -> Cleanup:
    """Remove what the last build left of forgotten customers outside its tables."""
    start = time.perf_counter()
    if not build.is_file():
        return Cleanup(False, 0.0, 0, 0, ())
    forgotten, read_all = _state(build)
    if not forgotten:
        return Cleanup(False, 0.0, 0, 0, ())
    removed = []
    folder = build.parent / REPAIRED_FOLDER
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            if f.is_file():
                f.unlink()
                removed.append(str(f))
    if not read_all:
        return Cleanup(False, time.perf_counter() - start, 0, 0, tuple(removed))
    size_before, size_after = rewrite_database(build)
    return Cleanup(True, time.perf_counter() - start, size_before, size_after, tuple(removed))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation.privacy",
        description="After a build under a forget list: rewrite the build file so that no "
        "freed block holds a forgotten customer's rows, delete repaired inputs "
        "(docs/privacy.md). Run when no other process has the build file open.",
    )
    parser.add_argument("--build", help="build file (default: $DUCKDB_PATH)")
    args = parser.parse_args(argv)
    build = Path(args.build or os.environ.get("DUCKDB_PATH") or DEFAULT_BUILD_PATH)
    try:
        result = clean_after_build(build)
    except duckdb.IOException as exc:
        print(
            f"privacy: cannot rewrite {build}: {exc} (is a build or a reader using it?)",
            file=sys.stderr,
        )
        return 1
    print(result.describe(build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
