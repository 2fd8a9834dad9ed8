"""Find and inspect the raw invoice-line files (CSV, CSV.gz, Parquet, Excel).

Called by the dbt Python models `stg_input_files` (how to read each file: format, encoding,
delimiter, which header field is which column) and `stg_excel_invoice_lines` (Excel rows,
read here because DuckDB's excel extension would have to be downloaded). The SQL view
`stg_raw_invoice_lines` then reads CSV and Parquet files where they lie, so a 100M-line input
is never copied: every data row of every file becomes exactly one row with its file and
1-based row number, and rows that do not parse are carried as text and quarantined later.
Only values checked here reach SQL: existing paths and header names, each quoted (macros
`sql_string_literal`, `sql_identifier`); encoding and delimiter from fixed lists.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import glob
import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

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
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".xlsx")


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
    if not isinstance(path_spec, str) or not path_spec.strip() or "\x00" in path_spec:
        raise InputError(
            f"dbt var 'transactions_path' must be a non-empty path or glob, got {path_spec!r}"
        )
    pattern = os.path.expanduser(path_spec.strip())
    full = pattern if os.path.isabs(pattern) else str(project_dir / pattern)
    matches = sorted(glob.glob(full, recursive=True)) if glob.has_magic(full) else [full]
    files = [m for m in matches if os.path.isfile(m)]
    if not files:
        raise InputError(
            f"dbt var 'transactions_path' = {path_spec!r} matches no file (looked for {full})"
        )
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


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def detect_encoding(path: Path, chunk_size: int = 1 << 24) -> str:
    """'utf-8' if the whole file decodes as UTF-8, else 'latin-1' (which decodes any bytes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open_binary(path) as fh:
        try:
            while chunk := fh.read(chunk_size):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8"


def read_csv_header(path: Path, encoding: str) -> tuple[list[str], str, bool]:
    """The header fields, the delimiter (comma, semicolon, tab or pipe), and whether any
    data follows the header."""
    with _open_binary(path) as fh:
        first = fh.readline(1 << 20).decode(encoding)
        has_data = bool(fh.read(1 << 16).strip())
    first = first.lstrip("\ufeff").rstrip("\r\n")
    if not first.strip():
        raise InputError(f"{path}: the file is empty (no header row)")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: counts[d])
    header = next(csv.reader([first], delimiter=delimiter))
    return header, delimiter, has_data


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


def _csv_entry(f: InputFile) -> dict[str, object] | None:
    """How to read one CSV file, or None for a file with a header and no data row."""
    encoding = detect_encoding(f.path)
    header, delimiter, has_data = read_csv_header(f.path, encoding)
    mapping = map_columns(header, str(f.path))
    if not has_data:
        return None
    position = {name: f"c{i}" for i, name in enumerate(header)}
    return {
        "delimiter": delimiter,
        "encoding": encoding,
        "field_count": len(header),
        **{f"{c}_column": position[mapping[c]] for c in RAW_COLUMNS},
    }


def _parquet_entry(con: duckdb.DuckDBPyConnection, f: InputFile) -> dict[str, object]:
    columns = con.read_parquet(str(f.path)).columns
    mapping = map_columns(list(columns), str(f.path))
    return {f"{c}_column": mapping[c] for c in RAW_COLUMNS}


INPUT_FILES_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("source_file", pa.string()),
        ("path", pa.string()),
        ("file_format", pa.string()),
        ("encoding", pa.string()),
        ("delimiter", pa.string()),
        ("field_count", pa.int32()),
    ]
    + [(f"{c}_column", pa.string()) for c in RAW_COLUMNS]
)


def input_files(
    con: duckdb.DuckDBPyConnection, path_spec: object, project_dir: str | Path
) -> pa.Table:
    """One row per input file with data: how the SQL view `stg_raw_invoice_lines` reads it.

    CSV: encoding, delimiter, number of header fields and, per canonical column, the position
    (`c0`, `c1`, ...) of its header field. Parquet: the file's own column name per canonical
    column. Excel (`file_format` 'xlsx'): rows come from `stg_excel_invoice_lines` instead.
    Paths are absolute, so the view reads them from any working directory.
    """
    files = resolve_inputs(path_spec, Path(project_dir))
    rows: list[dict[str, object]] = []
    for f in files:
        if f.kind == "csv":
            entry = _csv_entry(f)
        elif f.kind == "parquet":
            entry = _parquet_entry(con, f)
        else:
            entry = {}
        if entry is None:
            continue
        rows.append(
            {
                "file_index": len(rows) + 1,
                "source_file": f.label,
                "path": str(f.path.resolve()),
                "file_format": f.kind,
                **entry,
            }
        )
    if not rows:
        raise InputError(
            f"dbt var 'transactions_path' = {path_spec!r}: the file(s) have a header but "
            f"no data rows: {', '.join(f.label for f in files)}"
        )
    return pa.Table.from_pylist(rows, schema=INPUT_FILES_SCHEMA)


def excel_lines(path_spec: object, project_dir: str | Path) -> pa.Table:
    """The data rows of every sheet of every Excel workbook among the inputs, as text."""
    files = resolve_inputs(path_spec, Path(project_dir))
    batches = [b for f in files if f.kind == "xlsx" for b in _excel_batches(f)]
    return pa.Table.from_batches(batches, schema=_ARROW_SCHEMA)
