"""Publish the marts of a successful `dbt build` to the serving file, atomically.

Command line (from the project folder; `make build` runs it after `dbt build` succeeded)::

    python -m customer_segmentation.publish [--build PATH] [--serving PATH]
        [--target-path DIR] [--run-results FILE] [--manifest FILE]

Why a second file: DuckDB lets one process write a file or many processes read it, never
both. dbt writes the build file (`DUCKDB_PATH`); BI tools and analysts open only the serving
file (`SERVING_DUCKDB_PATH`, default `warehouse/serving.duckdb`), read-only. So a dashboard
holding the serving file open never blocks a build.

How a publish stays atomic:

1. Refuse unless the last dbt command was a `build` whose every node succeeded
   (`target/run_results.json`: no error, fail or skip) and which built every mart (a partial
   `--select` build would publish marts of two builds), and no dbt command started after it
   (`target/manifest.json` carries the same invocation id: a build killed part-way has
   rewritten the manifest but never wrote its run results).
2. Copy every mart the manifest declares (schema `marts`; relations left behind by deleted
   models are not published) from the build file, opened read-only, into a new temporary file
   next to the serving file, inside DuckDB (`CREATE TABLE ... AS FROM`: no row passes through
   Python, so 100M lines copy at disk speed). Table and column descriptions are copied as
   DuckDB comments (from the build file, else from the manifest), and `marts.build_info`
   records which build this is.
3. Check the row counts, CHECKPOINT, close, fsync, then `os.replace` the temporary file onto
   the serving file and fsync the folder.

A reader that holds the old serving file open keeps reading the old file (its inode lives
until the last reader closes it), so it sees one build only; new connections get the new one.
A publish that fails or is killed before the rename leaves the last good serving file as it
was; its temporary file is removed by the next publish. Two publishes at once are serialised
by a lock file. The rename is atomic on POSIX file systems on one machine (Linux, macOS); on
Windows a reader holding the file open makes the rename fail, and the old file stays.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from customer_segmentation.serving import serving_path

try:  # POSIX only; on Windows two publishes at once are not guarded.
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms this project runs on
    fcntl = None  # type: ignore[assignment]

DEFAULT_BUILD_PATH = "warehouse/retail.duckdb"
PUBLISHED_SCHEMA = "marts"
BUILD_INFO_TABLE = "build_info"
#: dbt node statuses that count as success; anything else (error, fail, skipped, runtime
#: error, partial success, or a status this code does not know) refuses the publish.
OK_STATUSES = frozenset({"success", "pass", "warn", "no-op"})
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
    "built_at": ("timestamp", "When that build finished (UTC, from dbt's run_results.json)."),
    "published_at": ("timestamp", "When the marts were published to this file (UTC)."),
    "dbt_version": ("varchar", "Version of dbt-core that ran the build."),
    "dbt_vars": ("varchar", "The `--vars` given to the build, as JSON (`{}` for defaults)."),
    "published_tables": ("varchar", "Names of the published marts, sorted, comma-separated."),
    "published_rows": ("bigint", "Rows in all published marts together."),
}


class PublishError(RuntimeError):
    """The build cannot be published; the message says why and what to do."""


@dataclass(frozen=True)
class BuildRecord:
    """What dbt's artifacts say about the build being published."""

    build_id: str
    built_at: dt.datetime
    dbt_version: str
    dbt_vars: dict[str, Any]
    manifest: dict[str, Any] = field(repr=False)
    statuses: dict[str, str] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class Mart:
    """One relation to publish, with the descriptions to attach to it."""

    unique_id: str
    name: str
    description: str
    column_descriptions: dict[str, str]


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote."""

    serving_path: Path
    build_id: str
    tables: dict[str, int]
    seconds: float


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise PublishError(f"no {what} at {path}: run `dbt build` first (or pass its path)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"cannot read {what} {path}: {exc}") from exc


def _parse_timestamp(text: str | None) -> dt.datetime:
    """dbt's ISO timestamp (`2026-11-23T10:12:44.664564Z`) as a naive UTC datetime."""
    if not text:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def check_build(run_results_path: Path, manifest_path: Path) -> BuildRecord:
    """Return the build's record if its artifacts show a complete, successful `dbt build`.

    Raises `PublishError` naming the failed nodes, or the reason the artifacts cannot be
    trusted (another command, or a killed build, ran after the last successful one).
    """
    run_results = _read_json(run_results_path, "dbt run results")
    manifest = _read_json(manifest_path, "dbt manifest")
    command = run_results.get("args", {}).get("which")
    if command != "build":
        raise PublishError(
            f"the last dbt command recorded in {run_results_path} was `{command}`, not `build`:"
            " only the marts of a `dbt build` whose tests passed are published; run `dbt build`"
        )
    results = run_results.get("results") or []
    if not results:
        raise PublishError(f"{run_results_path} lists no node: the build ran nothing")
    bad = [r for r in results if r.get("status") not in OK_STATUSES]
    if bad:
        tally = Counter(str(r.get("status")) for r in bad)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))
        # The causes first: skipped nodes only follow from them.
        causes = [r for r in bad if r.get("status") != "skipped"] or bad
        listed = "; ".join(f"{r.get('unique_id')} ({r.get('status')})" for r in causes[:5])
        more = f"; and {len(causes) - 5} more" if len(causes) > 5 else ""
        raise PublishError(
            f"the last dbt build did not succeed ({summary}): {listed}{more}; "
            "the serving file is left as it was"
        )
    invocation = run_results.get("metadata", {}).get("invocation_id")
    manifest_invocation = manifest.get("metadata", {}).get("invocation_id")
    if not invocation or invocation != manifest_invocation:
        raise PublishError(
            f"{manifest_path} comes from another dbt invocation ({manifest_invocation}) than "
            f"{run_results_path} ({invocation}): a dbt command started after the last build "
            "(maybe a build that was killed), so the build file may hold a mix; run `dbt build`"
        )
    metadata = run_results["metadata"]
    return BuildRecord(
        build_id=invocation,
        built_at=_parse_timestamp(metadata.get("generated_at")),
        dbt_version=str(metadata.get("dbt_version", "")),
        dbt_vars=dict(run_results.get("args", {}).get("vars") or {}),
        manifest=manifest,
        statuses={r.get("unique_id", ""): r.get("status", "") for r in results},
    )


def marts_from_manifest(manifest: dict[str, Any], schema: str = PUBLISHED_SCHEMA) -> list[Mart]:
    """The relations dbt builds in `schema` (models, seeds, snapshots; not ephemeral models).

    Sorted by name, so a publish is deterministic.
    """
    marts: dict[str, Mart] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") not in {"model", "seed", "snapshot"}:
            continue
        config = node.get("config") or {}
        if node.get("schema") != schema or config.get("materialized") == "ephemeral":
            continue
        if config.get("enabled") is False:
            continue
        name = node.get("alias") or node["name"]
        columns = {
            col_name: (col.get("description") or "").strip()
            for col_name, col in (node.get("columns") or {}).items()
        }
        marts[name] = Mart(
            node["unique_id"], name, (node.get("description") or "").strip(), columns
        )
    return [marts[name] for name in sorted(marts)]


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A DuckDB string literal (for statements that take no parameters: ATTACH, COMMENT)."""
    return "'" + text.replace("'", "''") + "'"


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


def _session_config() -> dict[str, str]:
    """Settings of the publishing DuckDB session: the same resources as the dbt profile."""
    return {
        "threads": os.environ.get("DUCKDB_THREADS", "2"),
        "memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT", "8GB"),
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


def _relations(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> set[str]:
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
    con: duckdb.DuckDBPyConnection, catalog: str, schema: str
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


def _copy_marts(
    con: duckdb.DuckDBPyConnection,
    source: str,
    marts: Sequence[Mart],
    record: BuildRecord,
) -> dict[str, int]:
    """Copy each mart with its comments into the target catalog; return rows per table."""
    schema = quote_ident(PUBLISHED_SCHEMA)
    src_schema = f"{quote_ident(source)}.{schema}"
    dst_schema = f"{quote_ident(TARGET_ALIAS)}.{schema}"
    table_comments, column_comments = _existing_comments(con, source, PUBLISHED_SCHEMA)
    con.execute(f"create schema {dst_schema}")
    counts: dict[str, int] = {}
    for mart in marts:
        src = f"{src_schema}.{quote_ident(mart.name)}"
        dst = f"{dst_schema}.{quote_ident(mart.name)}"
        # Views are materialised: the serving file holds no reference to other schemas.
        con.execute(f"create table {dst} as from {src}")
        copied = con.execute(f"select count(*) from {dst}").fetchone()[0]
        expected = con.execute(f"select count(*) from {src}").fetchone()[0]
        if copied != expected:
            raise PublishError(f"{mart.name}: copied {copied} rows of {expected}")
        counts[mart.name] = int(copied)
        description = table_comments.get(mart.name) or mart.description
        if description:
            con.execute(f"comment on table {dst} is {quote_literal(description)}")
        columns = [
            name
            for (name,) in con.execute(
                "select column_name from duckdb_columns() where database_name = ? "
                "and schema_name = ? and table_name = ? order by column_index",
                [TARGET_ALIAS, PUBLISHED_SCHEMA, mart.name],
            ).fetchall()
        ]
        for column in columns:
            text = column_comments.get((mart.name, column)) or mart.column_descriptions.get(
                column, ""
            )
            if text:
                con.execute(
                    f"comment on column {dst}.{quote_ident(column)} is {quote_literal(text)}"
                )
    _write_build_info(con, dst_schema, record, counts)
    return counts


def _write_build_info(
    con: duckdb.DuckDBPyConnection, dst_schema: str, record: BuildRecord, counts: dict[str, int]
) -> None:
    table = f"{dst_schema}.{quote_ident(BUILD_INFO_TABLE)}"
    columns = ", ".join(f"{name} {kind}" for name, (kind, _) in BUILD_INFO_COLUMNS.items())
    con.execute(f"create table {table} ({columns})")
    con.execute(
        f"insert into {table} values (?, ?, ?, ?, ?, ?, ?)",
        [
            record.build_id,
            record.built_at,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            record.dbt_version,
            json.dumps(record.dbt_vars, sort_keys=True),
            ", ".join(sorted(counts)),
            sum(counts.values()),
        ],
    )
    con.execute(f"comment on table {table} is {quote_literal(BUILD_INFO_DESCRIPTION)}")
    for name, (_, text) in BUILD_INFO_COLUMNS.items():
        con.execute(f"comment on column {table}.{quote_ident(name)} is {quote_literal(text)}")


def publish(
    build: str | os.PathLike[str] | None = None,
    serving: str | os.PathLike[str] | None = None,
    *,
    target_path: str | os.PathLike[str] | None = None,
    run_results: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    storage_version: str | None = None,
) -> PublishResult:
    """Publish the marts of the last successful `dbt build` to the serving file.

    Defaults: `build` = `$DUCKDB_PATH` or `warehouse/retail.duckdb`; `serving` =
    `$SERVING_DUCKDB_PATH` or `warehouse/serving.duckdb`; the artifacts are read from
    `target_path` (`$DBT_TARGET_PATH` or `target`) unless given one by one; `storage_version`
    = `$SERVING_STORAGE_VERSION` or `v1.0.0` (`latest` for DuckDB's newest format).
    """
    started = time.monotonic()
    build_path = Path(build or os.environ.get("DUCKDB_PATH") or DEFAULT_BUILD_PATH)
    serving_file = serving_path(serving)
    target_dir = Path(target_path or os.environ.get("DBT_TARGET_PATH") or "target")
    run_results_path = Path(run_results) if run_results else target_dir / "run_results.json"
    manifest_path = Path(manifest) if manifest else run_results_path.with_name("manifest.json")
    storage = storage_version or os.environ.get(STORAGE_VERSION_ENV) or DEFAULT_STORAGE_VERSION

    record = check_build(run_results_path, manifest_path)
    marts = marts_from_manifest(record.manifest)
    if not marts:
        raise PublishError(f"the manifest declares no model in schema `{PUBLISHED_SCHEMA}`")
    not_built = [m.name for m in marts if record.statuses.get(m.unique_id) != "success"]
    if not_built:
        raise PublishError(
            "the last dbt build did not build every mart (a partial `--select` build?): "
            f"{', '.join(not_built)}; publishing would mix builds, run a full `dbt build`"
        )
    if any(m.name == BUILD_INFO_TABLE for m in marts):
        raise PublishError(f"a mart is named `{BUILD_INFO_TABLE}`, which publish reserves")
    if not build_path.is_file():
        raise PublishError(f"no build file at {build_path} (DUCKDB_PATH)")

    serving_file.parent.mkdir(parents=True, exist_ok=True)
    with publish_lock(serving_file):
        remove_stale_temp_files(serving_file)
        temp = serving_file.parent / (
            f"{_temp_prefix(serving_file)}{os.getpid()}-{secrets.token_hex(4)}.tmp"
        )
        try:
            counts = _write_serving_copy(build_path, temp, marts, record, storage)
            _fsync_file(temp)
            # A WAL beside the serving file can only come from someone writing to it, which
            # readers must not do; it must never be replayed onto the new file.
            Path(f"{serving_file}.wal").unlink(missing_ok=True)
            os.replace(temp, serving_file)
            _fsync_dir(serving_file.parent)
        finally:
            temp.unlink(missing_ok=True)
            Path(f"{temp}.wal").unlink(missing_ok=True)
    return PublishResult(serving_file, record.build_id, counts, time.monotonic() - started)


def _write_serving_copy(
    build_path: Path, temp: Path, marts: Sequence[Mart], record: BuildRecord, storage: str
) -> dict[str, int]:
    """Write the marts into the new file `temp` and close it, fully checkpointed."""
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
                f"cannot open the build file {build_path} read-only (is a dbt build still "
                f"running?): {exc}"
            ) from exc
        present = _relations(con, source, PUBLISHED_SCHEMA)
        missing = [m.name for m in marts if m.name not in present]
        if missing:
            raise PublishError(
                f"the build file {build_path} lacks marts the manifest declares: "
                f"{', '.join(missing)}; run `dbt build`"
            )
        con.execute(
            f"attach {quote_literal(str(temp))} as {quote_ident(TARGET_ALIAS)} "
            f"(storage_version {quote_literal(storage)})"
        )
        counts = _copy_marts(con, source, marts, record)
        con.execute(f"checkpoint {quote_ident(TARGET_ALIAS)}")
        con.execute(f"detach {quote_ident(TARGET_ALIAS)}")
    finally:
        con.close()
    if Path(f"{temp}.wal").exists():
        raise PublishError(f"{temp} was not fully checkpointed; not published")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; exit status 1 when the build is not published."""
    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation.publish",
        description="Publish the marts of a successful dbt build to the serving file.",
    )
    parser.add_argument("--build", help="build file (default: $DUCKDB_PATH)")
    parser.add_argument("--serving", help="serving file (default: $SERVING_DUCKDB_PATH)")
    parser.add_argument("--target-path", help="dbt target folder (default: target)")
    parser.add_argument("--run-results", help="run_results.json of the build")
    parser.add_argument("--manifest", help="manifest.json of the build")
    parser.add_argument(
        "--storage-version",
        help="DuckDB format of the serving file: oldest DuckDB that must read it "
        f"(default: ${STORAGE_VERSION_ENV} or {DEFAULT_STORAGE_VERSION}; `latest` for the newest)",
    )
    args = parser.parse_args(argv)
    try:
        result = publish(
            args.build,
            args.serving,
            target_path=args.target_path,
            run_results=args.run_results,
            manifest=args.manifest,
            storage_version=args.storage_version,
        )
    except (PublishError, duckdb.Error, OSError) as exc:
        print(f"publish: not published: {exc}", file=sys.stderr)
        return 1
    print(
        f"publish: {len(result.tables)} marts ({sum(result.tables.values())} rows) of build "
        f"{result.build_id} published to {result.serving_path} in {result.seconds:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
