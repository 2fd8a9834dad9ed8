"""Find and inspect the raw invoice-line files (CSV, CSV.gz, Parquet, Excel).

Called by the dbt Python models `stg_input_files` (one row per file the path matches: how to
read it, and how many data rows it holds, counted here without DuckDB's reader) and
`stg_excel_invoice_lines` (Excel rows, read here because DuckDB's excel extension would have
to be downloaded). The SQL view `stg_raw_invoice_lines` then reads CSV and Parquet files where
they lie, so a 100M-line input is never copied (a CSV with blank or unparseable rows is read
from a repaired copy, see `csv_scan`). Only values checked here reach SQL: existing paths and
header names, each quoted (macros `sql_string_literal`, `sql_identifier`); encoding and
delimiter from fixed lists.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq

from customer_segmentation import privacy, var_spec
from customer_segmentation.csv_scan import CsvScanError, scan_csv, write_repaired
from customer_segmentation.fingerprint import file_fingerprint, file_stat

# Canonical column -> accepted header spellings, compared after lower-casing and dropping
# spaces and underscores (Online Retail: InvoiceNo, UnitPrice, CustomerID;
# Online Retail II: Invoice, Price, Customer ID).
COLUMN_SPELLINGS: dict[str, tuple[str, ...]] = {
    "invoice_no": ("invoiceno", "invoice"),
    "stock_code": ("stockcode",),
    "description": ("description",),
    "quantity": ("quantity",),
    "invoice_date": ("invoicedate",),
    "unit_price": ("unitprice", "price"),
    "customer_id": ("customerid",),
    "country": ("country",),
}
RAW_COLUMNS = list(COLUMN_SPELLINGS)
OUTPUT_COLUMNS = ["source_file", "source_row", *RAW_COLUMNS, "has_extra_fields"]
SUPPORTED_SUFFIXES = tuple(var_spec.SPEC["transactions_path"]["suffixes"])
#: Bumped when the repaired copies of a CSV would come out differently.
REPAIR_VERSION = 2


class InputError(ValueError):
    """A problem with the input files that must stop the build, with a message for the user."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    label: str  # how the file is named in `source_file`
    kind: str  # csv | parquet | xlsx


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _")


def map_columns(header: list[str], where: str) -> dict[str, str]:
    """Map canonical column names to the file's header names; fail naming what is missing."""
    by_norm: dict[str, str] = {}
    for name in header:
        by_norm.setdefault(_normalise(name), name)
    mapping: dict[str, str] = {}
    missing = []
    for canonical, spellings in COLUMN_SPELLINGS.items():
        found = next((by_norm[s] for s in spellings if s in by_norm), None)
        if found is None:
            missing.append(f"{canonical} (header {' or '.join(spellings)})")
        else:
            mapping[canonical] = found
    if missing:
        raise InputError(
            f"{where}: missing required column(s): {', '.join(missing)}. Header found: {header}"
        )
    return mapping


def resolve_inputs(path_spec: object, project_dir: Path) -> list[InputFile]:
    """Expand the `transactions_path` var into a sorted list of supported files."""
    problem = var_spec.problem("transactions_path", path_spec)
    if problem is not None:
        raise InputError(f"dbt var 'transactions_path' = {path_spec!r} {problem}")
    pattern = os.path.expanduser(str(path_spec).strip())
    full = pattern if os.path.isabs(pattern) else str(project_dir / pattern)
    # A file of that exact name is that file, even when its name holds glob characters
    # (`export 201[1].csv`); otherwise the path is a glob.
    literal = os.path.isfile(full) or not glob.has_magic(full)
    matches = [full] if literal else sorted(glob.glob(full, recursive=True))
    files = [m for m in matches if os.path.isfile(m)]
    if not files:
        raise InputError(
            f"dbt var 'transactions_path' = {path_spec!r} matches no file (looked for {full})"
        )
    seen: dict[str, str] = {}
    for f in files:
        real = os.path.realpath(f)
        if real in seen:
            raise InputError(
                f"dbt var 'transactions_path' = {path_spec!r} reaches the same file twice: "
                f"{seen[real]} and {f} are both {real} (a link, or a glob that follows one); "
                "its rows would be read twice. Point the path at each file once"
            )
        seen[real] = f
    out = []
    for f in files:
        lower = f.lower()
        suffix = next((s for s in SUPPORTED_SUFFIXES if lower.endswith(s)), None)
        if suffix is None:
            raise InputError(
                f"dbt var 'transactions_path': {f} is not a supported file "
                f"(expected one of {', '.join(SUPPORTED_SUFFIXES)})"
            )
        kind = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}[suffix]
        path = Path(f)
        try:
            label = str(path.resolve().relative_to(project_dir.resolve()))
        except ValueError:
            label = str(path.resolve())
        out.append(InputFile(path=path, label=label, kind=kind))
    return out


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _excel_batches(f: InputFile) -> Iterator[pa.RecordBatch]:
    """The workbook's rows; a workbook openpyxl cannot read (truncated, corrupt, not a
    workbook) fails naming the file."""
    from openpyxl.utils.exceptions import InvalidFileException

    unreadable = (
        zipfile.BadZipFile,
        InvalidFileException,
        KeyError,
        EOFError,
        OSError,
        zlib.error,
        ElementTree.ParseError,
        ValueError,
        TypeError,
    )
    try:
        yield from _excel_sheet_batches(f)
    except InputError:
        raise
    except unreadable as exc:
        raise InputError(
            f"{f.path}: cannot read the Excel workbook, it is truncated or damaged "
            f"({type(exc).__name__}: {exc}); export it again"
        ) from exc


def _excel_sheet_batches(f: InputFile) -> Iterator[pa.RecordBatch]:
    from openpyxl import load_workbook

    workbook = load_workbook(f.path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header_row = next(rows, None)
            where = f"{f.path} (sheet {sheet.title!r})"
            if header_row is None or all(v is None for v in header_row):
                raise InputError(f"{where}: the sheet is empty (no header row)")
            header = ["" if v is None else str(v) for v in header_row]
            mapping = map_columns(header, where)
            index = {canonical: header.index(name) for canonical, name in mapping.items()}
            width = len(header)
            label = f"{f.label}[{sheet.title}]"
            pending: list[tuple] = []  # empty rows held back: trailing ones are not data
            buffer: dict[str, list] = {c: [] for c in OUTPUT_COLUMNS}
            row_no = 0
            for values in rows:
                if all(v is None for v in values):
                    pending.append(values)
                    continue
                for held in [*pending, values]:
                    row_no += 1
                    buffer["source_file"].append(label)
                    buffer["source_row"].append(row_no)
                    for canonical in RAW_COLUMNS:
                        i = index[canonical]
                        buffer[canonical].append(_cell_text(held[i]) if i < len(held) else None)
                    buffer["has_extra_fields"].append(any(v is not None for v in held[width:]))
                pending = []
                if row_no and len(buffer["source_row"]) >= 100_000:
                    yield _to_batch(buffer)
                    buffer = {c: [] for c in OUTPUT_COLUMNS}
            if buffer["source_row"]:
                yield _to_batch(buffer)
    finally:
        workbook.close()


_ARROW_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("source_row", pa.int64())]
    + [(c, pa.string()) for c in RAW_COLUMNS]
    + [("has_extra_fields", pa.bool_())]
)


def _to_batch(buffer: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(buffer, schema=_ARROW_SCHEMA)


def _repaired_copy_folder(con: duckdb.DuckDBPyConnection, project_dir: Path) -> Path:
    """`repaired_inputs/` beside the build file (DuckDB's database path)."""
    rows = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    if not rows or not rows[0][0]:  # an in-memory database
        return project_dir / "warehouse" / "repaired_inputs"
    return (project_dir / rows[0][0]).parent / "repaired_inputs"


def _csv_entry(f: InputFile, repaired_folder: Path) -> dict[str, object]:
    """How to read one CSV file, with its data rows counted by `csv_scan` (not by DuckDB)."""
    scan = scan_csv(f.path)
    mapping = map_columns(scan.header, str(f.path))
    position = {name: f"c{i}" for i, name in enumerate(scan.header)}
    read_path = f.path.resolve()
    if scan.needs_repair and scan.data_rows:
        repaired_folder.mkdir(parents=True, exist_ok=True)
        read_path = repaired_folder / f"{scan.sha256[:32]}-v{REPAIR_VERSION}.csv"
        if not read_path.is_file():
            write_repaired(scan, scan.header.index(mapping["description"]), read_path)
    return {
        "sha256": scan.sha256,
        "data_rows": scan.data_rows,
        "blank_rows": len(scan.blank_rows),
        "unparseable_rows": scan.unparseable_rows,
        "read_path": str(read_path) if scan.data_rows else None,
        "delimiter": scan.delimiter,
        "encoding": scan.encoding,
        "field_count": len(scan.header),
        **{f"{c}_column": position[mapping[c]] for c in RAW_COLUMNS},
    }


def _parquet_entry(f: InputFile) -> dict[str, object]:
    try:
        metadata = pq.ParquetFile(f.path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{f.path}: cannot read the Parquet file: {exc}") from exc
    mapping = map_columns(list(metadata.schema.names), str(f.path))
    return {
        "sha256": file_fingerprint(f.path)[2],
        "data_rows": metadata.num_rows,
        "read_path": str(f.path.resolve()) if metadata.num_rows else None,
        **{f"{c}_column": mapping[c] for c in RAW_COLUMNS},
    }


INPUT_FILES_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("source_file", pa.string()),
        ("path", pa.string()),
        ("file_format", pa.string()),
        ("size_bytes", pa.int64()),
        ("modified_ns", pa.int64()),
        ("sha256", pa.string()),
        ("data_rows", pa.int64()),
        ("blank_rows", pa.int64()),
        ("unparseable_rows", pa.list_(pa.int64())),
        ("read_path", pa.string()),
        ("encoding", pa.string()),
        ("delimiter", pa.string()),
        ("field_count", pa.int32()),
    ]
    + [(f"{c}_column", pa.string()) for c in RAW_COLUMNS]
)


def _reusable(previous: pa.Table | None) -> dict[tuple[str, str, int, int], dict[str, object]]:
    """The previous build's rows by (source_file, path, size, modification time), when that
    table has this build's columns."""
    if previous is None or previous.schema != INPUT_FILES_SCHEMA:
        return {}
    return {
        (r["source_file"], r["path"], r["size_bytes"], r["modified_ns"]): r
        for r in previous.to_pylist()
    }


def input_files(
    con: duckdb.DuckDBPyConnection,
    path_spec: object,
    project_dir: str | Path,
    previous: pa.Table | None = None,
) -> pa.Table:
    """One row per file the `transactions_path` var matches: how the SQL view
    `stg_raw_invoice_lines` reads it, and its data rows counted without DuckDB's reader.

    CSV: rows counted by `csv_scan` (quoted line ends, blank and unparseable rows handled),
    encoding, delimiter, number of header fields and, per canonical column, the position
    (`c0`, `c1`, ...) of its header field; `read_path` is a repaired copy when DuckDB could
    not read the file as it lies. Parquet: rows from the file's metadata, the file's own
    column name per canonical column. Excel (`file_format` 'xlsx'): rows come from
    `stg_excel_invoice_lines` instead. Size, modification time and SHA-256 let a later step
    tell whether the file changed since it was read. Paths are absolute.

    `previous` is this table as the last build left it: a file with the same name, path, size
    and modification time is taken from it without being read again (its repaired copy, if
    it has one, must still exist).
    """
    project = Path(project_dir)
    files = resolve_inputs(path_spec, project)
    repaired_folder = _repaired_copy_folder(con, project)
    reusable = _reusable(previous)
    rows: list[dict[str, object]] = []
    for f in files:
        before = file_stat(f.path)
        known = reusable.get((f.label, str(f.path.resolve()), *before))
        if known is not None and (known["read_path"] is None or Path(known["read_path"]).is_file()):
            rows.append({**known, "file_index": len(rows) + 1})
            continue
        try:
            if f.kind == "csv":
                entry = _csv_entry(f, repaired_folder)
            elif f.kind == "parquet":
                entry = _parquet_entry(f)
            else:
                entry = {"sha256": file_fingerprint(f.path)[2]}
        except CsvScanError as exc:
            raise InputError(str(exc)) from exc
        except OSError as exc:
            raise InputError(f"{f.path}: cannot read the file: {exc}") from exc
        if file_stat(f.path) != before:
            raise InputError(f"{f.path}: the file changed while it was being read")
        rows.append(
            {
                "file_index": len(rows) + 1,
                "source_file": f.label,
                "path": str(f.path.resolve()),
                "file_format": f.kind,
                "size_bytes": before[0],
                "modified_ns": before[1],
                **entry,
            }
        )
    if not any(r.get("data_rows") or r["file_format"] == "xlsx" for r in rows):
        raise InputError(
            f"dbt var 'transactions_path' = {path_spec!r}: the file(s) have a header but "
            f"no data rows: {', '.join(f.label for f in files)}"
        )
    return pa.Table.from_pylist(rows, schema=INPUT_FILES_SCHEMA)


EXCEL_SCHEMA = pa.schema(
    list(_ARROW_SCHEMA)
    + [
        pa.field("is_forgotten", pa.bool_()),
        pa.field("workbook_sha256", pa.string()),
        pa.field("forget_list_digest", pa.string()),
    ]
)


def _forget(table: pa.Table, forgotten: frozenset[int]) -> pa.Table:
    """The sheet rows with those of forgotten customers blanked: every raw field null and
    `is_forgotten` true (int_invoice_lines stores them as `customer_forgotten`). A customer id
    is read as stg_invoice_lines reads it (privacy.ID_EXPRESSION)."""
    con = duckdb.connect()
    try:
        con.register("sheet_rows", table.select(["customer_id"]))
        ids = con.sql(f"select {privacy.ID_EXPRESSION} as id from sheet_rows").to_arrow_table()
    finally:
        con.close()
    value_set = pa.array(sorted(forgotten), pa.int64())
    flags = pa.compute.fill_null(pa.compute.is_in(ids["id"], value_set=value_set), False)
    flags = flags.combine_chunks() if isinstance(flags, pa.ChunkedArray) else flags
    for name in RAW_COLUMNS:
        i = table.schema.get_field_index(name)
        column = pa.compute.if_else(flags, pa.scalar(None, pa.string()), table[name])
        table = table.set_column(i, name, column)
    return table.append_column("is_forgotten", flags)


def excel_lines(
    input_files,
    previous: pa.Table | None = None,
    forgotten: frozenset[int] = frozenset(),
) -> pa.Table:
    """The data rows of every sheet of every Excel workbook among the inputs, as text: the
    workbooks are the `xlsx` rows of `input_files` (stg_input_files, a DuckDB relation), so
    the glob of `transactions_path` is resolved once, for every format. The rows of the
    customers in `forgotten` (the forget list) are blanked (`_forget`). Each row carries its
    workbook's SHA-256 and the forget list's digest; the rows of a workbook with the same
    name, SHA-256 and list in `previous` (this table as the last build left it) are taken
    from there, not read again."""
    digest = hashlib.md5(",".join(sorted(str(i) for i in forgotten)).encode()).hexdigest()
    workbooks = (
        input_files.filter("file_format = 'xlsx'")
        .order("file_index")
        .select("path, source_file, sha256")
        .fetchall()
    )
    known: dict[tuple[str, str], pa.Table] = {}
    if previous is not None and previous.schema == EXCEL_SCHEMA and previous.num_rows:
        previous = previous.filter(pa.compute.equal(previous["forget_list_digest"], digest))
        for label, sha in {
            (s.split("[", 1)[0], h)
            for s, h in zip(
                previous["source_file"].to_pylist(),
                previous["workbook_sha256"].to_pylist(),
                strict=True,
            )
        }:
            prefix = pa.compute.starts_with(previous["source_file"], f"{label}[")
            known[(label, sha)] = previous.filter(prefix)
    parts = []
    for path, label, sha in workbooks:
        if (label, sha) in known:
            parts.append(known[(label, sha)])
            continue
        batches = list(_excel_batches(InputFile(Path(path), label, "xlsx")))
        table = _forget(pa.Table.from_batches(batches, schema=_ARROW_SCHEMA), forgotten)
        table = table.append_column("workbook_sha256", pa.array([sha] * table.num_rows))
        table = table.append_column(
            "forget_list_digest", pa.array([digest] * table.num_rows, pa.string())
        )
        parts.append(table)
    return pa.concat_tables(parts) if parts else EXCEL_SCHEMA.empty_table()
