"""Publish the marts of a complete, passing `dbt build` to the serving file, atomically.

Why a second file: DuckDB lets one process write a file or many processes read it, never
both. dbt writes the build file (`DUCKDB_PATH`); BI tools and analysts open only the serving
file (`SERVING_DUCKDB_PATH`, default `warehouse/serving.duckdb`), read-only. So a dashboard
holding the serving file open never blocks a build.

Two ways in, one copy:

* `dbt build` publishes itself: its last node, `models/serving/publish_serving_file.py`, refs
  every mart, so dbt runs it last and skips it when a model or a test upstream failed; it calls
  `publish_in_build` on the build's own DuckDB connection.
* `python -m customer_segmentation.publish [--build PATH] [--serving PATH]
  [--storage-version V]` (`make publish`) republishes the last complete build of the build
  file, which it attaches read-only.

What may be published is decided from the records the build keeps in the build file itself
(schema `meta`, written by the hooks in `dbt_project.yml`): `meta.dbt_invocations` (one row per
dbt command: its relations, whether everything was selected, running/passed/failed) and
`meta.relation_writes` (which invocation last wrote each relation, recorded inside the
relation's own transaction). Only a `dbt build` that selected every relation and test, passed,
and still owns every relation it wrote is published. The marts need no input file: the lines
are kept in the build file (`intermediate.int_invoice_lines`), so the exports may change or
go after the build. `marts.build_info` says whether the build read every input file or only
the files added or changed (`intermediate.int_invoice_line_files`).

How a publish stays atomic: the marts are copied inside DuckDB (`CREATE TABLE ... AS FROM`: no
row passes through Python) into a new temporary file next to the serving file, with their
DuckDB comments and `marts.build_info`; the row counts are checked, the file checkpointed,
closed and fsynced, then `os.replace`d onto the serving file and the folder fsynced. A reader
holding the old file keeps reading it (its inode lives until the last reader closes it); new
connections get the new one. A publish that fails or is killed before the rename leaves the
last good serving file as it was; its temporary file is removed by the next publish. Two
publishes at once are serialised by a lock file. The rename is atomic on POSIX file systems on
one machine (Linux, macOS); on Windows a reader holding the file open makes the rename fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from customer_segmentation.memory import duckdb_memory_limit
from customer_segmentation.pseudonyms import PseudonymError, ServingIds, serving_ids
from customer_segmentation.serving import serving_path
from customer_segmentation.sql_text import quote_ident, quote_literal

try:  # POSIX only; on Windows two publishes at once are not guarded.
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms this project runs on
    fcntl = None  # type: ignore[assignment]

DEFAULT_BUILD_PATH = "warehouse/retail.duckdb"
PUBLISHED_SCHEMA = "marts"
#: Where the build keeps its records (macros create_build_records and record_*); its
#: relations (the publish node's table) are bookkeeping, not data, and are never checked.
RECORDS_SCHEMA = "meta"
INPUT_FILE_CHANGES = ("intermediate", "int_invoice_line_files")
BUILD_INFO_TABLE = "build_info"
#: Alias of the temporary serving file inside the publishing DuckDB session.
TARGET_ALIAS = "__publish_target"
#: On-disk format of the serving file. DuckDB 2.0 writes files only DuckDB 2.0 can read unless
#: told otherwise; BI drivers (Metabase's, ODBC, JDBC) often bundle an older DuckDB, so the
#: serving file is written in the format every DuckDB since 1.0 reads.
DEFAULT_STORAGE_VERSION = "v1.0.0"
STORAGE_VERSION_ENV = "SERVING_STORAGE_VERSION"

BUILD_INFO_DESCRIPTION = (
    "One row: which dbt build the marts of this serving file come from. Written by "
    "`customer_segmentation.publish` in the same file as the marts, so a reader that sees a "
    "build_id sees the marts of that build and no other."
)
BUILD_INFO_COLUMNS: dict[str, tuple[str, str]] = {
    "build_id": ("varchar", "dbt invocation id of the `dbt build` that produced the marts."),
    "built_at": (
        "timestamp",
        "When that build wrote the last of its tables (UTC; its tests ran after).",
    ),
    "published_at": ("timestamp", "When the marts were published to this file (UTC)."),
    "is_pseudonymous": (
        "boolean",
        "True when every customer id column holds pseudonyms (SERVING_CUSTOMER_KEY was set), "
        "not the ids (docs/privacy.md).",
    ),
    "dbt_version": ("varchar", "Version of dbt-core that ran the build."),
    "dbt_vars": ("varchar", "The `--vars` given to the build, as JSON (`{}` for defaults)."),
    "published_tables": ("varchar", "Names of the published marts, sorted, comma-separated."),
    "published_rows": ("bigint", "Rows in all published marts together."),
    "build_kind": (
        "varchar",
        "`full` when the build read every input file, `refresh` when it read only the files "
        "added or changed since the last build (docs/refresh.md).",
    ),
    "files_added": ("varchar", "The input files new since the last build, as a JSON list."),
    "files_changed": (
        "varchar",
        "The input files read again: changed since the last build, read under other cleaning "
        "vars, or written again because their duplicate lines changed; a JSON list.",
    ),
    "files_removed": ("varchar", "The input files gone since the last build, as a JSON list."),
}


class PublishError(RuntimeError):
    """The build cannot be published; the message says why and what to do."""


@dataclass(frozen=True)
class Invocation:
    """One dbt command as the build file records it (meta.dbt_invocations)."""

    invocation_id: str
    command: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str  # running | passed | failed
    dbt_version: str
    dbt_vars: str  # JSON
    relations: tuple[tuple[str, str], ...]  # (schema, relation) as the graph listed them
    is_full_selection: bool

    @property
    def data_relations(self) -> tuple[tuple[str, str], ...]:
        """Its relations outside the records' own schema."""
        return tuple(r for r in self.relations if r[0] != RECORDS_SCHEMA)

    def describe(self) -> str:
        state = {
            "running": "recorded as running: killed, or still running",
            "failed": "failed",
            "passed": "passed",
        }.get(self.status, self.status)
        started = _utc(self.started_at)
        return f"{self.invocation_id} (`dbt {self.command}` started {started}, {state})"


@dataclass(frozen=True)
class BuildChanges:
    """The input files a build read again, and those it found gone (int_invoice_line_files)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """`full` when the build read every file it holds, else `refresh`."""
        return "refresh" if self.unchanged else "full"

    def describe(self) -> str:
        """One line: the kind and the files, for the build log."""
        parts = [
            f"{len(files)} {what} ({', '.join(files)})" if files else f"0 {what}"
            for what, files in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
            )
        ]
        return f"{self.kind} build: input files {', '.join(parts)}, {len(self.unchanged)} unchanged"


@dataclass(frozen=True)
class BuildRecord:
    """What `marts.build_info` says about the published build."""

    build_id: str
    built_at: dt.datetime
    dbt_version: str
    dbt_vars: str
    changes: BuildChanges = BuildChanges()


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote."""

    serving_path: Path
    build_id: str
    tables: dict[str, int]
    seconds: float


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _utc(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{_naive_utc(value):%Y-%m-%d %H:%M:%S} UTC"


def _relation_list(relations: Sequence[tuple[str, str]], limit: int = 8) -> str:
    names = [f"{schema}.{name}" for schema, name in sorted(relations)]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# -- the records -----------------------------------------------------------------------------


def read_records(
    con: Any, catalog: str
) -> tuple[list[Invocation], dict[tuple[str, str], tuple[str, dt.datetime]]]:
    """The invocations (oldest first) and, per relation, (invocation, time) of its last write."""
    present = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
            [catalog, RECORDS_SCHEMA],
        ).fetchall()
    }
    if not {"dbt_invocations", "relation_writes"} <= present:
        raise PublishError(
            "the build file has no build records (meta.dbt_invocations, meta.relation_writes): "
            "it was built before builds recorded themselves, or not by this project; "
            "run `dbt build`"
        )
    meta = f"{quote_ident(catalog)}.{quote_ident(RECORDS_SCHEMA)}"
    rows = con.execute(
        f"select invocation_id, command, started_at, finished_at, status, dbt_version, "
        f"dbt_vars, relations, is_full_selection from {meta}.dbt_invocations "
        f"order by started_at, invocation_id"
    ).fetchall()
    invocations = [
        Invocation(
            invocation_id=row[0],
            command=row[1],
            started_at=row[2],
            finished_at=row[3],
            status=row[4],
            dbt_version=row[5],
            dbt_vars=row[6],
            relations=tuple((r["schema_name"], r["relation_name"]) for r in row[7]),
            is_full_selection=bool(row[8]),
        )
        for row in rows
    ]
    writes = {
        (schema, name): (invocation, written_at)
        for schema, name, invocation, written_at in con.execute(
            f"select schema_name, relation_name, invocation_id, written_at "
            f"from {meta}.relation_writes"
        ).fetchall()
    }
    return invocations, writes


def check_publishable(
    build: Invocation,
    invocations: Sequence[Invocation],
    writes: dict[tuple[str, str], tuple[str, dt.datetime]],
) -> None:
    """Refuse unless the build file still holds exactly what `build` wrote.

    Raises `PublishError` naming the relations another invocation rewrote (or `build` never
    wrote), and any later invocation that is recorded as running (killed) or failed and wrote
    anything.
    """
    by_id = {inv.invocation_id: inv for inv in invocations}
    foreign: dict[str, list[tuple[str, str]]] = {}
    for relation in build.data_relations:
        writer = writes.get(relation, ("", None))[0]
        if writer != build.invocation_id:
            foreign.setdefault(writer, []).append(relation)
    if foreign:
        parts = []
        for writer, relations in sorted(foreign.items()):
            who = by_id[writer].describe() if writer in by_id else (writer or "no invocation")
            parts.append(f"{_relation_list(relations)} (by {who})")
        raise PublishError(
            f"build {build.invocation_id} cannot be published: the build file no longer holds "
            f"what it wrote; {sum(map(len, foreign.values()))} of its relations were written "
            f"since by other dbt invocations: {'; '.join(parts)}. Publishing would mix "
            "builds; run a full `dbt build`"
        )
    later = [
        inv
        for inv in invocations
        if inv.started_at > build.started_at and inv.status in {"running", "failed"}
    ]
    for inv in later:
        wrote = [rel for rel, (writer, _) in writes.items() if writer == inv.invocation_id]
        if wrote:
            raise PublishError(
                f"build {build.invocation_id} cannot be published: dbt invocation "
                f"{inv.describe()} wrote {_relation_list(wrote)} after it; run `dbt build`"
            )


def latest_complete_build(invocations: Sequence[Invocation]) -> Invocation:
    """The last `dbt build` that selected every relation and test of the project (with all
    their rows: not --empty or --sample) and passed."""
    complete = [
        inv
        for inv in invocations
        if inv.command == "build" and inv.status == "passed" and inv.is_full_selection
    ]
    if not complete:
        last = invocations[-1].describe() if invocations else "none"
        raise PublishError(
            "the build file records no complete `dbt build` that passed (every model, seed and "
            f"test selected, none failed); the last dbt invocation was {last}. Run `dbt build`"
        )
    return complete[-1]


def build_record(
    build: Invocation,
    writes: dict[tuple[str, str], tuple[str, dt.datetime]],
    changes: BuildChanges,
) -> BuildRecord:
    written = [writes[r][1] for r in build.data_relations if r in writes]
    built_at = max(written) if written else build.started_at
    return BuildRecord(
        build.invocation_id, _naive_utc(built_at), build.dbt_version, build.dbt_vars, changes
    )


# -- what the build did to its input files ---------------------------------------------------


def build_changes(con: Any, catalog: str) -> BuildChanges:
    """The input files the build read (added or changed), and those it found gone, from the
    records of int_invoice_lines (intermediate.int_invoice_line_files); `full` when it read
    every file it holds."""
    schema, table = INPUT_FILE_CHANGES
    found = con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? "
        "and table_name = ?",
        [catalog, schema, table],
    ).fetchall()[0][0]
    if not found:
        raise PublishError(f"the build file has no {schema}.{table}: run `dbt build`")
    rows = con.execute(
        f"select input_file, build_change from {quote_ident(catalog)}.{quote_ident(schema)}."
        f"{quote_ident(table)} where build_change in ('added', 'changed', 'removed', "
        "'unchanged') order by input_file"
    ).fetchall()
    by_change: dict[str, list[str]] = {}
    for name, change in rows:
        by_change.setdefault(change, []).append(name)
    return BuildChanges(
        added=tuple(by_change.get("added", ())),
        changed=tuple(by_change.get("changed", ())),
        removed=tuple(by_change.get("removed", ())),
        unchanged=tuple(by_change.get("unchanged", ())),
    )


def _temp_prefix(serving: Path) -> str:
    return f".{serving.name}.publish-"


def remove_stale_temp_files(serving: Path) -> list[Path]:
    """Delete temporary files left by publishes that failed or were killed.

    Only called while holding the publish lock, so no running publish owns them.
    """
    removed = []
    for path in sorted(serving.parent.glob(_temp_prefix(serving) + "*")):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def publish_lock(serving: Path) -> Iterator[None]:
    """Hold an exclusive lock on `.<serving>.publish.lock` so publishes never overlap."""
    lock_path = serving.parent / f".{serving.name}.publish.lock"
    with open(lock_path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _relations(con: Any, catalog: str, schema: str) -> set[str]:
    rows = con.execute(
        """
        select table_name from duckdb_tables() where database_name = ? and schema_name = ?
        union all
        select view_name from duckdb_views() where database_name = ? and schema_name = ?
        """,
        [catalog, schema, catalog, schema],
    ).fetchall()
    return {name for (name,) in rows}


def _existing_comments(
    con: Any, catalog: str, schema: str
) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Table and column comments persisted by dbt (`persist_docs`) in the build file."""
    tables = con.execute(
        """
        select table_name, comment from duckdb_tables()
        where database_name = ? and schema_name = ? and comment is not null
        union all
        select view_name, comment from duckdb_views()
        where database_name = ? and schema_name = ? and comment is not null
        """,
        [catalog, schema, catalog, schema],
    ).fetchall()
    columns = con.execute(
        """
        select table_name, column_name, comment from duckdb_columns()
        where database_name = ? and schema_name = ? and comment is not null
        """,
        [catalog, schema],
    ).fetchall()
    return (
        {name: text.strip() for name, text in tables if text.strip()},
        {(t, c): text.strip() for t, c, text in columns if text.strip()},
    )


def marts_of(con: Any, catalog: str, build: Invocation) -> list[str]:
    """The marts `build` made (its relations in schema marts), sorted; all must be there."""
    marts = sorted(name for schema, name in build.relations if schema == PUBLISHED_SCHEMA)
    if not marts:
        raise PublishError(f"build {build.invocation_id} made no relation in schema marts")
    if BUILD_INFO_TABLE in marts:
        raise PublishError(f"a mart is named `{BUILD_INFO_TABLE}`, which publish reserves")
    missing = sorted(set(marts) - _relations(con, catalog, PUBLISHED_SCHEMA))
    if missing:
        raise PublishError(f"the build file lacks marts of build {build.invocation_id}: {missing}")
    return marts


def _copy_marts(
    con: Any, source: str, marts: Sequence[str], record: BuildRecord, served: ServingIds
) -> dict[str, int]:
    """Copy each mart with its comments into the target catalog, customer ids as `served`
    says; return rows per table."""
    schema = quote_ident(PUBLISHED_SCHEMA)
    src_schema = f"{quote_ident(source)}.{schema}"
    dst_schema = f"{quote_ident(TARGET_ALIAS)}.{schema}"
    table_comments, column_comments = _existing_comments(con, source, PUBLISHED_SCHEMA)
    con.execute(f"create schema {dst_schema}")
    counts: dict[str, int] = {}
    for name in marts:
        src = f"{src_schema}.{quote_ident(name)}"
        dst = f"{dst_schema}.{quote_ident(name)}"
        # Views are materialised: the serving file holds no reference to other schemas. The
        # statement reports the rows it read from the source; counting a view again would
        # read the input files once more (fct_order_lines: 2.1 s at 10M lines).
        expected = con.execute(f"create table {dst} as {served.query(name, src)}").fetchone()[0]
        copied = con.execute(f"select count(*) from {dst}").fetchone()[0]
        if copied != expected:
            raise PublishError(f"{name}: copied {copied} rows of {expected}")
        counts[name] = int(copied)
        if table_comments.get(name):
            con.execute(f"comment on table {dst} is {quote_literal(table_comments[name])}")
        for (table, column), text in sorted(column_comments.items()):
            if table == name:
                con.execute(
                    f"comment on column {dst}.{quote_ident(column)} is {quote_literal(text)}"
                )
    served.annotate(con, TARGET_ALIAS, PUBLISHED_SCHEMA)
    _write_build_info(con, dst_schema, record, counts, served.is_pseudonymous)
    return counts


def _write_build_info(
    con: Any, dst_schema: str, record: BuildRecord, counts: dict[str, int], pseudonymous: bool
) -> None:
    table = f"{dst_schema}.{quote_ident(BUILD_INFO_TABLE)}"
    columns = ", ".join(f"{name} {kind}" for name, (kind, _) in BUILD_INFO_COLUMNS.items())
    con.execute(f"create table {table} ({columns})")
    values = {
        "build_id": record.build_id,
        "built_at": record.built_at,
        "published_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "is_pseudonymous": pseudonymous,
        "dbt_version": record.dbt_version,
        "dbt_vars": record.dbt_vars,
        "published_tables": ", ".join(sorted(counts)),
        "published_rows": sum(counts.values()),
        "build_kind": record.changes.kind,
        "files_added": json.dumps(list(record.changes.added)),
        "files_changed": json.dumps(list(record.changes.changed)),
        "files_removed": json.dumps(list(record.changes.removed)),
    }
    con.execute(
        f"insert into {table} ({', '.join(quote_ident(c) for c in values)}) "
        f"values ({', '.join('?' for _ in values)})",
        list(values.values()),
    )
    con.execute(f"comment on table {table} is {quote_literal(BUILD_INFO_DESCRIPTION)}")
    for name, (_, text) in BUILD_INFO_COLUMNS.items():
        con.execute(f"comment on column {table}.{quote_ident(name)} is {quote_literal(text)}")


@contextmanager
def compression_without_fsst(con: Any) -> Iterator[None]:
    """DuckDB's FSST string compression left out while the marts are written, then restored.

    DuckDB tries every compression on every column segment and keeps the smallest. On the
    marts FSST never wins (dictionary does, on strings that repeat: codes, descriptions,
    countries), so trying it is wasted: copying fct_order_lines of 10M lines took 7.0 s
    (13.5 s of CPU) with it and 6.0 s (11.6 s) without, for a file of 188 and 186 MB. The
    setting is global: the publish node is the build's last node, so nothing else writes
    meanwhile.
    """
    (before,) = con.execute("select current_setting('disabled_compression_methods')").fetchone()
    methods = [m for m in (before or "").split(",") if m.strip()]
    if "fsst" not in methods:
        con.execute(
            "set disabled_compression_methods = " + quote_literal(",".join([*methods, "fsst"]))
        )
    try:
        yield
    finally:
        con.execute("set disabled_compression_methods = " + quote_literal(before or ""))


def copy_to_serving(
    con: Any,
    source: str,
    marts: Sequence[str],
    record: BuildRecord,
    serving: Path,
    storage: str,
) -> dict[str, int]:
    """Copy `marts` of catalog `source` (on `con`) to the serving file, atomically.

    Shared by the CLI (an in-memory session with the build file attached read-only) and the
    publish node (the build's own connection). The marts hold what they show (the lines are
    in the build file, int_invoice_lines), so the input files may change after the build.
    """
    serving.parent.mkdir(parents=True, exist_ok=True)
    with publish_lock(serving):
        remove_stale_temp_files(serving)
        temp = serving.parent / f"{_temp_prefix(serving)}{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            con.execute(
                f"attach {quote_literal(str(temp))} as {quote_ident(TARGET_ALIAS)} "
                f"(storage_version {quote_literal(storage)})"
            )
            try:
                with (
                    compression_without_fsst(con),
                    serving_ids(con, source, PUBLISHED_SCHEMA, marts) as served,
                ):
                    counts = _copy_marts(con, source, marts, record, served)
                    con.execute(f"checkpoint {quote_ident(TARGET_ALIAS)}")
            finally:
                con.execute(f"detach {quote_ident(TARGET_ALIAS)}")
            if Path(f"{temp}.wal").exists():
                raise PublishError(f"{temp} was not fully checkpointed; not published")
            _fsync_file(temp)
            # A WAL beside the serving file can only come from someone writing to it, which
            # readers must not do; it must never be replayed onto the new file.
            Path(f"{serving}.wal").unlink(missing_ok=True)
            os.replace(temp, serving)
            _fsync_dir(serving.parent)
        finally:
            temp.unlink(missing_ok=True)
            Path(f"{temp}.wal").unlink(missing_ok=True)
    return counts


def _storage(storage_version: str | None) -> str:
    return storage_version or os.environ.get(STORAGE_VERSION_ENV) or DEFAULT_STORAGE_VERSION


def _check_not_the_build_file(serving: Path, build: Path) -> None:
    if serving.resolve() == build.resolve():
        raise PublishError(f"the serving file {serving} is the build file itself")


# -- the command line ------------------------------------------------------------------------


def _duckdb_threads() -> str:
    value = os.environ.get("DUCKDB_THREADS", "2")
    if not re.fullmatch(r"[1-9][0-9]{0,3}", value):
        raise PublishError(f'DUCKDB_THREADS must be a whole number from 1 to 9999, not "{value}"')
    return value


def _duckdb_memory_limit() -> str:
    try:
        return duckdb_memory_limit()
    except ValueError as exc:
        raise PublishError(str(exc)) from exc


def _session_config() -> dict[str, str]:
    """Settings of the publishing DuckDB session: the same resources as the dbt profile."""
    return {
        "threads": _duckdb_threads(),
        "memory_limit": _duckdb_memory_limit(),
        "temp_directory": os.environ.get("DUCKDB_TEMP_DIRECTORY", "warehouse/tmp"),
        "preserve_insertion_order": "true",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }


def _build_catalog_alias(build: Path) -> str:
    """Attach the build file under its own name: views there refer to it by that name."""
    stem = build.name.split(".")[0]
    if not stem or stem in {"memory", "system", "temp", TARGET_ALIAS}:
        return "__publish_source"
    return stem


def publish(
    build: str | os.PathLike[str] | None = None,
    serving: str | os.PathLike[str] | None = None,
    *,
    storage_version: str | None = None,
) -> PublishResult:
    """Republish the last complete `dbt build` recorded in the build file.

    Defaults: `build` = `$DUCKDB_PATH` or `warehouse/retail.duckdb`; `serving` =
    `$SERVING_DUCKDB_PATH` or `warehouse/serving.duckdb`; `storage_version` =
    `$SERVING_STORAGE_VERSION` or `v1.0.0` (`latest` for DuckDB's newest format).
    """
    started = time.monotonic()
    build_path = Path(build or os.environ.get("DUCKDB_PATH") or DEFAULT_BUILD_PATH)
    serving_file = serving_path(serving)
    if not build_path.is_file():
        raise PublishError(f"no build file at {build_path} (DUCKDB_PATH): run `dbt build`")
    _check_not_the_build_file(serving_file, build_path)
    source = _build_catalog_alias(build_path)
    Path(_session_config()["temp_directory"]).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config=_session_config())
    try:
        try:
            con.execute(
                f"attach {quote_literal(str(build_path))} as {quote_ident(source)} (read_only)"
            )
        except duckdb.Error as exc:
            raise PublishError(
                f"cannot open the build file {build_path} read-only (is a dbt command still "
                f"running?): {exc}"
            ) from exc
        invocations, writes = read_records(con, source)
        build_run = latest_complete_build(invocations)
        check_publishable(build_run, invocations, writes)
        marts = marts_of(con, source, build_run)
        record = build_record(build_run, writes, build_changes(con, source))
        counts = copy_to_serving(
            con, source, marts, record, serving_file, _storage(storage_version)
        )
    finally:
        con.close()
    return PublishResult(serving_file, build_run.invocation_id, counts, time.monotonic() - started)


# -- the publish node of `dbt build` ---------------------------------------------------------


def _current_invocation_id() -> str:
    """The id of the dbt command this process runs (the publish node runs inside dbt)."""
    from dbt_common.invocation import get_invocation_id

    return get_invocation_id()


def publish_in_build(session: Any, catalog: str, storage_version: str | None = None) -> dict:
    """Publish from inside `dbt build` (the node publish_serving_file), through its connection.

    Publishes only when this invocation is a `dbt build` (so the tests ran) that selected
    every relation and test of the project and wrote every relation; dbt runs the node only
    when every model and test upstream passed. Otherwise nothing is published and the row
    says why. Returns the node's one row, as a dict of columns.

    The copy runs on a cursor of its own (a new connection to the same database): dbt may
    hold a transaction open on `session` that has written to the build file, and a DuckDB
    transaction can write to one attached database only.
    """
    con = session.cursor()
    try:
        return _publish_in_build(con, catalog, storage_version)
    finally:
        con.close()


def _publish_in_build(con: Any, catalog: str, storage_version: str | None) -> dict:
    invocation_id = _current_invocation_id()
    serving_file = serving_path().resolve()
    row: dict[str, Any] = {
        "invocation_id": invocation_id,
        "command": None,
        "is_published": False,
        "serving_path": str(serving_file),
        "published_tables": 0,
        "published_rows": 0,
        "reason": None,
    }
    invocations, writes = read_records(con, catalog)
    current = next((inv for inv in invocations if inv.invocation_id == invocation_id), None)
    if current is None:
        raise PublishError(f"dbt invocation {invocation_id} is not recorded (on-run-start)")
    row["command"] = current.command
    unwritten = [r for r in current.data_relations if writes.get(r, ("",))[0] != invocation_id]
    if current.command != "build":
        row["reason"] = (
            f"`dbt {current.command}` does not publish: only `dbt build`, which runs the tests"
        )
    elif not current.is_full_selection:
        row["reason"] = (
            "a partial `dbt build` (--select/--exclude, --empty, --sample) does not publish: "
            "the build file would hold relations or test results of other builds"
        )
    elif unwritten:
        row["reason"] = (
            f"this build did not write {len(unwritten)} relations: {_relation_list(unwritten)}"
        )
    if row["reason"]:
        return row
    build_file = con.execute(
        "select path from duckdb_databases() where database_name = ?", [catalog]
    ).fetchone()[0]
    _check_not_the_build_file(serving_file, Path(build_file))
    marts = marts_of(con, catalog, current)
    counts = copy_to_serving(
        con,
        catalog,
        marts,
        build_record(current, writes, build_changes(con, catalog)),
        serving_file,
        _storage(storage_version),
    )
    row.update(
        is_published=True,
        published_tables=len(counts),
        published_rows=sum(counts.values()),
        reason="published",
    )
    return row


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; exit status 1 when the build is not published."""
    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation.publish",
        description="Republish the last complete dbt build of the build file to the serving file.",
    )
    parser.add_argument("--build", help="build file (default: $DUCKDB_PATH)")
    parser.add_argument("--serving", help="serving file (default: $SERVING_DUCKDB_PATH)")
    parser.add_argument(
        "--storage-version",
        help="DuckDB format of the serving file: oldest DuckDB that must read it "
        f"(default: ${STORAGE_VERSION_ENV} or {DEFAULT_STORAGE_VERSION}; `latest` for the newest)",
    )
    args = parser.parse_args(argv)
    try:
        result = publish(args.build, args.serving, storage_version=args.storage_version)
    except (PublishError, PseudonymError, duckdb.Error, OSError) as exc:
        print(f"publish: not published: {exc}", file=sys.stderr)
        return 1
    print(
        f"publish: {len(result.tables)} marts ({sum(result.tables.values())} rows) of build "
        f"{result.build_id} published to {result.serving_path} in {result.seconds:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
