"""One pass over a CSV file that finds its records without DuckDB: the row count that the
reconciliation checks DuckDB's reader against, and the rows DuckDB would not number right.

The record rules (RFC 4180; on a well-formed file DuckDB's reader finds the same records):

- a line end (LF, CRLF, or CR in a CR-only file) ends a record, except inside a quoted field;
- a quote opens a quoted field only at the start of a field; elsewhere it is a plain
  character (``12" PIZZA TRAY``);
- inside a quoted field a doubled quote is a quote; a quote followed by the delimiter, a line
  end or the end of the file closes the field;
- anything else makes the record *unparseable*. A quote closing a field followed by other
  text (``"abc"def,``) ends the record at the end of that line, unless the field spans lines:
  then, as for a field still open at the end of the file, the quote that opened it is taken
  for one never closed, the record ends at the end of the line where it opened, and the
  lines after it are records again;
- a blank line is a data row with no values, except blank lines at the end of the file.

DuckDB's reader skips blank lines and reads everything after a quote that never closes into
one field, so a file with blank or unparseable rows is read from a repaired copy
(`write_repaired`) in which each such row is one DuckDB reads as one row. The same pass
hashes the file and decides its encoding (`Encoding`): UTF-8 when the whole file decodes as
UTF-8; else Windows-1252 when it holds one of that code page's characters in bytes 0x80-0x9F
(curly quotes, the euro sign, dashes: DuckDB reads no such file, so it is read from a copy
transcoded to UTF-8), else ISO-8859-1. A file that is mostly UTF-8 with a few bytes that are
not, a byte no supported encoding maps to a character, and a UTF-16 file fail naming the
file, the line and the bytes.
Quotes and line ends are found with numpy a block at a time; a Python loop runs only over
the quotes of a block whose quoting is irregular.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from customer_segmentation.fingerprint import file_fingerprint

QUOTE = ord('"')
CR = ord("\r")
LF = ord("\n")
SPACE = ord(" ")
TAB = ord("\t")
BLOCK_SIZE = 1 << 24
DELIMITERS = (",", ";", "\t", "|")


class CsvScanError(ValueError):
    """The file cannot be read (truncated archive, I/O error); the message names the file."""


@dataclass(frozen=True)
class CsvScan:
    """What one pass over a CSV file found. Offsets are in the (decompressed) bytes."""

    path: Path
    sha256: str  # of the file as stored (compressed or not)
    encoding: str  # 'utf-8', 'latin-1' or 'windows-1252'
    header: list[str]
    delimiter: str
    data_rows: int  # records after the header; blank rows count, blank lines at the end do not
    blank_rows: list[int]  # 1-based data row numbers
    unparseable_rows: list[int]
    edits: list[tuple[int, int, str]]  # (start, end, 'blank' | 'unparseable'), line end excluded
    end_of_data: int  # offset just after the last data row (blank lines at the end excluded)

    @property
    def needs_repair(self) -> bool:
        """True when DuckDB cannot read the file as it lies with these row numbers (or, for
        Windows-1252, in its encoding)."""
        return bool(self.edits) or self.encoding == WINDOWS_1252


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when its name ends in .gz."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


READ_ERRORS = (OSError, EOFError, zlib.error, gzip.BadGzipFile)


def _blocks(path: Path, newline: int, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the file from offset `start`, each block ending just after a line
    end (or at the end of the file), so that a quote's neighbours lie in its own block."""
    end_byte = bytes([newline])
    try:
        with open_binary(path) as fh:
            if start:
                if isinstance(fh, gzip.GzipFile):
                    _copy(fh, None, start)
                else:
                    fh.seek(start)
            offset, carry = start, b""
            while True:
                chunk = fh.read(BLOCK_SIZE)
                data = carry + chunk if carry else chunk
                if not chunk:
                    if data:
                        yield offset, data
                    return
                cut = data.rfind(end_byte) + 1
                if cut == 0:
                    carry = data
                    continue
                yield offset, data[:cut]
                offset += cut
                carry = data[cut:]
    except READ_ERRORS as exc:
        raise CsvScanError(f"{path}: cannot read the file: {exc}") from exc


def _first_line(path: Path) -> tuple[bytes, int]:
    """The first physical line (for the delimiter) and the file's line-end byte: LF (also
    for CRLF) unless the file has no LF and has CR (a CR-only file)."""
    try:
        with open_binary(path) as fh:
            head = fh.read(1 << 20)
    except READ_ERRORS as exc:
        raise CsvScanError(f"{path}: cannot read the file: {exc}") from exc
    newline = LF if b"\n" in head or b"\r" not in head else CR
    return head.split(bytes([newline]), 1)[0], newline


class _Records:
    """Running tally of records as their line ends are found."""

    def __init__(self) -> None:
        self.record_start = 0  # offset of the record being read
        self.records = 0  # complete records so far, the header included
        self.header_end = -1  # offset of the header's line end
        self.last_nonblank = 0  # record number of the last non-blank record
        self.end_of_data = 0  # offset just after it (its line end included)
        self.blank: list[tuple[int, int, int]] = []  # (record number, start, end)
        self.unparseable: list[tuple[int, int, int]] = []

    def add(self, ends: np.ndarray, data: np.ndarray, base: int) -> None:
        """Records ending at the absolute offsets `ends` (sorted line-end positions)."""
        if not len(ends):
            return
        starts = np.empty_like(ends)
        starts[0] = self.record_start
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts
        blank = lengths == 0
        one = np.flatnonzero((lengths == 1) & (starts >= base))
        if len(one):
            blank[one] = data[starts[one] - base] == CR
        numbers = self.records + 1 + np.arange(len(ends), dtype=np.int64)
        if self.records == 0:
            self.header_end = int(ends[0])
            blank[0] = False
        for i in np.flatnonzero(blank).tolist():
            self.blank.append((int(numbers[i]), int(starts[i]), int(ends[i])))
        nonblank = np.flatnonzero(~blank)
        if len(nonblank):
            self.last_nonblank = int(numbers[nonblank[-1]])
            self.end_of_data = int(ends[nonblank[-1]]) + 1
        self.records += len(ends)
        self.record_start = int(ends[-1]) + 1

    def add_unparseable(self, end: int, size: int) -> None:
        """The record being read is unparseable and ends at line end `end` (or `size`)."""
        self.records += 1
        if self.records == 1:
            self.header_end = end
        self.unparseable.append((self.records, self.record_start, end))
        self.last_nonblank = self.records
        self.end_of_data = min(end + 1, size)
        self.record_start = end + 1

    def finish(self, size: int) -> None:
        """The end of the file: a last record without a line end still counts."""
        if self.record_start < size:
            self.records += 1
            if self.records == 1:
                self.header_end = size
            self.last_nonblank = self.records
            self.end_of_data = size


class _Rewind(Exception):  # noqa: N818 - a signal, not an error
    """A quoted field that spans lines turned out broken: its record ends at the end of the
    line where the field opened, and the scan resumes after that line."""

    def __init__(self, quote_open: int) -> None:
        super().__init__(quote_open)
        self.quote_open = quote_open


class _Machine:
    """The record rules applied block by block; state carries over between blocks."""

    def __init__(self, delimiter: int, newline: int, records: _Records) -> None:
        self.delim = delimiter
        self.newline = newline
        self.records = records
        self.in_quote = False
        self.quote_open = -1  # offset of the quote that opened the current quoted field
        self.skip_to_line_end = False  # inside an unparseable record

    def block(self, base: int, chunk: bytes) -> None:
        data = np.frombuffer(chunk, dtype=np.uint8)
        quotes = np.flatnonzero(data == QUOTE)
        newlines = np.flatnonzero(data == self.newline)
        opens = None if self.skip_to_line_end else self._field_openings(data, quotes)
        if opens is not None:
            self._alternating(data, base, quotes, newlines, opens)
        else:
            self._exact(data, base, quotes, newlines)

    def _field_openings(self, data: np.ndarray, quotes: np.ndarray) -> np.ndarray | None:
        """When every quote of the block opens a field at its start, closes one before a
        delimiter or a line end, or is half of a doubled quote, quotes simply alternate: the
        mask of the quotes that open a field. None when some quote breaks the pattern."""
        if not len(quotes):
            return np.zeros(0, dtype=bool)
        n = len(data)
        opening = (np.arange(len(quotes)) + int(self.in_quote)) % 2 == 0
        adjacent = np.diff(quotes) == 1
        after_quote = np.concatenate(([False], adjacent))
        before_quote = np.concatenate((adjacent, [False]))
        field_start = self._starts(data, quotes)
        field_end = self._ends(data, quotes, n)
        ok = np.where(opening, field_start | after_quote, field_end | before_quote)
        if not ok.all():
            return None
        # a quote right after a closing one is the second half of a doubled quote
        return opening & ~after_quote

    def _starts(self, data: np.ndarray, quotes: np.ndarray) -> np.ndarray:
        """Quotes at the start of a field: after a delimiter or a line end, with at most one
        space between (as DuckDB's reader has it)."""
        prev = np.where(quotes > 0, data[np.maximum(quotes - 1, 0)], self.newline)
        prev2 = np.where(quotes > 1, data[np.maximum(quotes - 2, 0)], self.newline)
        boundary = (prev == self.delim) | (prev == self.newline)
        spaced = (prev == SPACE) & ((prev2 == self.delim) | (prev2 == self.newline))
        return boundary | spaced

    def _ends(self, data: np.ndarray, quotes: np.ndarray, n: int) -> np.ndarray:
        """Quotes followed by a delimiter, a line end or the end of the block, with any
        spaces and tabs between."""
        nxt = np.where(quotes < n - 1, data[np.minimum(quotes + 1, n - 1)], self.newline)
        ends = (nxt == self.delim) | (nxt == self.newline) | (nxt == CR)
        for i in np.flatnonzero((nxt == SPACE) | (nxt == TAB)).tolist():
            j = int(quotes[i]) + 1
            while j < n and data[j] in (SPACE, TAB):
                j += 1
            ends[i] = j == n or data[j] in (self.delim, self.newline, CR)
        return ends

    def _alternating(
        self,
        data: np.ndarray,
        base: int,
        quotes: np.ndarray,
        newlines: np.ndarray,
        opens: np.ndarray,
    ) -> None:
        inside = (np.searchsorted(quotes, newlines) + int(self.in_quote)) % 2 == 1
        if len(quotes) % 2:
            self.in_quote = not self.in_quote
        if self.in_quote and opens.any():
            self.quote_open = base + int(quotes[np.flatnonzero(opens)[-1]])
        self.records.add(base + newlines[~inside], data, base)

    def _exact(self, data: np.ndarray, base: int, quotes: np.ndarray, newlines: np.ndarray) -> None:
        """Quote by quote; the line ends between two quotes in bulk."""
        n = len(data)
        done = 0  # line ends before this block offset are accounted for

        def line_ends_before(stop: int) -> None:
            nonlocal done
            ends = newlines[np.searchsorted(newlines, done) : np.searchsorted(newlines, stop)]
            done = max(done, stop)
            if not len(ends):
                return
            if self.skip_to_line_end:
                self.records.add_unparseable(base + int(ends[0]), base + n)
                self.skip_to_line_end = False
                ends = ends[1:]
            if not self.in_quote:  # line ends inside a quoted field are text
                self.records.add(base + ends, data, base)

        i = 0
        while i < len(quotes):
            q = int(quotes[i])
            line_ends_before(q)
            i += 1
            if self.skip_to_line_end:
                continue
            here = quotes[i - 1 : i]
            if not self.in_quote:
                if self._starts(data, here)[0]:
                    self.in_quote = True
                    self.quote_open = base + q
                continue
            if q + 1 < n and data[q + 1] == QUOTE:
                i += 1  # a doubled quote inside the field
                continue
            self.in_quote = False
            if not self._ends(data, here, n)[0]:
                # text after the closing quote: the record is broken. If the field spans
                # lines, the quote that opened it is the culprit (a quote never closed,
                # which paired with a later one), not the lines between.
                opened = self.quote_open - base
                if opened < 0 or np.any((newlines > opened) & (newlines < q)):
                    raise _Rewind(self.quote_open)
                self.skip_to_line_end = True
        line_ends_before(n)


UTF_8, LATIN_1, WINDOWS_1252 = "utf-8", "latin-1", "windows-1252"
#: Bytes 0x80-0x9F that Windows-1252 leaves undefined (ISO-8859-1 has control codes there).
CP1252_UNDEFINED = np.array([0x81, 0x8D, 0x8F, 0x90, 0x9D], dtype=np.uint8)


class _EncodingCheck:
    """Counts, over the blocks of the file, the non-ASCII characters that are well-formed
    UTF-8 and the bytes that are not, and where the first bad byte, the first byte of
    0x80-0x9F and the first byte Windows-1252 leaves undefined lie (offsets in the
    decompressed bytes). A block is decoded as UTF-8 until one fails; from then on its bytes
    above 0x7F are classed with numpy (a lead byte followed by its continuation bytes is a
    character), which costs little where they are few, as in an ISO-8859-1 export. Blocks end
    at line ends, so no UTF-8 sequence is split between two."""

    def __init__(self) -> None:
        self.utf8_chars = 0  # non-ASCII characters that are well-formed UTF-8
        self.bad_bytes = 0  # bytes above 0x7F that are not part of one
        self.first_bad: tuple[int, bytes] | None = None
        self.first_c1 = -1
        self.first_undefined = -1

    def __call__(self, base: int, chunk: bytes) -> None:
        if chunk.isascii():
            return
        data = np.frombuffer(chunk, dtype=np.uint8)
        high = np.flatnonzero(data >= 0x80)
        values = data[high]
        if self.first_c1 < 0:
            c1 = high[(values & 0xE0) == 0x80]
            self.first_c1 = base + int(c1[0]) if len(c1) else -1
        if self.first_undefined < 0:
            undefined = high[np.isin(values, CP1252_UNDEFINED)]
            self.first_undefined = base + int(undefined[0]) if len(undefined) else -1
        if self.first_bad is None:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.first_bad = (base + exc.start, chunk[exc.start : exc.end])
            else:
                self.utf8_chars += len(high) - int(np.count_nonzero((values & 0xC0) == 0x80))
                return
        characters, covered = _utf8_sequences(data, high)
        self.utf8_chars += characters
        self.bad_bytes += len(high) - covered

    def encoding(self, path: Path, newline: int) -> str:
        """The file's encoding, or CsvScanError naming the line and bytes no supported
        encoding reads."""
        if self.first_bad is None:
            return UTF_8
        offset, raw = self.first_bad
        if self.utf8_chars >= self.bad_bytes:
            raise CsvScanError(
                f"{path}: line {_line_number(path, offset, newline):,} holds bytes that are not "
                f"UTF-8 ({_hex(raw)}), though the file's other non-ASCII text is UTF-8 "
                f"({self.utf8_chars:,} characters against {self.bad_bytes:,} such bytes): "
                "the file mixes two encodings. Save it again in one (UTF-8)"
            )
        if self.first_undefined >= 0:
            with open_binary(path) as fh:
                _copy(fh, None, self.first_undefined)
                byte = fh.read(1)
            raise CsvScanError(
                f"{path}: line {_line_number(path, self.first_undefined, newline):,} holds the "
                f"byte {_hex(byte)}, which is no character in any encoding read here (UTF-8, "
                "Windows-1252, ISO-8859-1): the file is in another encoding or damaged. Save it "
                "again as UTF-8"
            )
        return WINDOWS_1252 if self.first_c1 >= 0 else LATIN_1


def _utf8_sequences(data: np.ndarray, high: np.ndarray) -> tuple[int, int]:
    """(characters, bytes) of the well-formed UTF-8 sequences that start at the positions
    `high` of `data` (the bytes above 0x7F): a lead byte with as many continuation bytes
    (0x80-0xBF) after it as it announces."""
    following = [
        data[np.minimum(high + k, len(data) - 1)] * (high + k < len(data)) for k in (1, 2, 3)
    ]
    lead = data[high]
    continued = [(b & 0xC0) == 0x80 for b in following]
    two = (lead >= 0xC2) & (lead <= 0xDF) & continued[0]
    three = (lead >= 0xE0) & (lead <= 0xEF) & continued[0] & continued[1]
    four = (lead >= 0xF0) & (lead <= 0xF4) & continued[0] & continued[1] & continued[2]
    counts = [int(np.count_nonzero(m)) for m in (two, three, four)]
    return sum(counts), 2 * counts[0] + 3 * counts[1] + 4 * counts[2]


def _hex(raw: bytes) -> str:
    return " ".join(f"0x{b:02X}" for b in raw)


def _line_number(path: Path, offset: int, newline: int) -> int:
    """1-based physical line (the header is line 1) that holds byte `offset`."""
    count = 1
    for base, chunk in _blocks(path, newline):
        if base + len(chunk) > offset:
            return count + chunk.count(bytes([newline]), 0, offset - base)
        count += chunk.count(bytes([newline]))
    return count


def _check_not_utf16(path: Path, head: bytes) -> None:
    """UTF-16 (or UTF-32) has a byte-order mark or NUL bytes in every ASCII character."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4096]:
        raise CsvScanError(
            f"{path}: the file is UTF-16 encoded (a byte-order mark or NUL bytes in its first "
            'line), which is not read here: save it as CSV in UTF-8 (Excel: "CSV UTF-8")'
        )


def _line_end_after(path: Path, offset: int, newline: int) -> int:
    """Offset of the first line end after `offset`, or -1 when there is none."""
    for base, chunk in _blocks(path, newline, offset):
        found = chunk.find(bytes([newline]))
        if found >= 0:
            return base + found
    return -1


def scan_csv(path: Path) -> CsvScan:
    """Find the records of the CSV file `path` by the rules in this module's docstring."""
    head, newline = _first_line(path)
    _check_not_utf16(path, head)
    head = head.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
    if not head.strip():
        raise CsvScanError(f"{path}: the file is empty (no header row)")
    head_text = head.decode("latin-1")
    delimiter = max(DELIMITERS, key=head_text.count)

    compressed = path.name.lower().endswith(".gz")
    digest = hashlib.sha256()
    check = _EncodingCheck()
    records = _Records()
    hashed = size = start = 0
    while True:
        machine = _Machine(ord(delimiter), newline, records)
        try:
            for base, chunk in _blocks(path, newline, start):
                end = base + len(chunk)
                if end > hashed:  # each byte once through the hash and the UTF-8 check
                    fresh = chunk[max(hashed - base, 0) :]
                    check(max(hashed, base), fresh)
                    if not compressed:
                        digest.update(fresh)
                    hashed = end
                size = max(size, end)
                machine.block(base, chunk)
        except _Rewind as rewind:
            quote_open = rewind.quote_open
        else:
            if not machine.in_quote:
                break
            quote_open = machine.quote_open  # a quoted field still open at the end
        # The record that opened the broken field ends at the end of that line; the lines
        # after it are read again as records.
        line_end = _line_end_after(path, quote_open, newline)
        records.add_unparseable(line_end if line_end >= 0 else size, size)
        if line_end < 0:
            break
        start = line_end + 1
    if machine.skip_to_line_end:
        records.add_unparseable(size, size)
    else:
        records.finish(size)
    encoding = check.encoding(path, newline)

    with open_binary(path) as fh:
        header_bytes = fh.read(max(records.header_end, 0))
    header_text = header_bytes.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r").decode(_codec(encoding))
    header = next(csv.reader([header_text], delimiter=delimiter), [])

    last = records.last_nonblank
    blank = [(r, s, e) for r, s, e in records.blank if r <= last]  # not those at the end
    unparseable = [(r, s, e) for r, s, e in records.unparseable if r > 1]  # not the header
    edits = sorted(
        [(s, e, "blank") for _, s, e in blank] + [(s, e, "unparseable") for _, s, e in unparseable]
    )
    return CsvScan(
        path=path,
        sha256=file_fingerprint(path)[2] if compressed else digest.hexdigest(),
        encoding=encoding,
        header=header,
        delimiter=delimiter,
        data_rows=max(last - 1, 0),
        blank_rows=[r - 1 for r, _, _ in blank],
        unparseable_rows=[r - 1 for r, _, _ in unparseable],
        edits=edits,
        end_of_data=records.end_of_data,
    )


def _codec(encoding: str) -> str:
    """Python's codec for an encoding name of `CsvScan` (Windows-1252 is `cp1252`)."""
    return "cp1252" if encoding == WINDOWS_1252 else encoding


def write_repaired(scan: CsvScan, description_index: int, out: Path) -> None:
    """A copy of the file that DuckDB reads with the scan's rows and row numbers: a blank row
    becomes a row of empty fields, an unparseable row a row whose description field holds
    its raw text (quoted), blank lines at the end are left out; other bytes are copied, and
    a Windows-1252 file is transcoded to UTF-8 on the way."""
    delim = scan.delimiter.encode("latin-1")
    fields = len(scan.header)
    transcode = (
        (lambda raw: raw.decode("cp1252").encode("utf-8"))
        if scan.encoding == WINDOWS_1252
        else None
    )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open_binary(scan.path) as src, open(tmp, "wb") as dst:
        position = 0
        for start, end, kind in scan.edits:
            _copy(src, dst, start - position, transcode)
            raw = src.read(end - start)
            if transcode is not None:
                raw = transcode(raw)
            cr = b"\r" if raw.endswith(b"\r") else b""
            if kind == "blank":
                dst.write(delim * (fields - 1) + cr)
            else:
                text = raw[: len(raw) - len(cr)]
                quoted = b'"' + text.replace(b'"', b'""') + b'"'
                dst.write(
                    delim * description_index + quoted + delim * (fields - 1 - description_index)
                )
                dst.write(cr)
            position = end
        _copy(src, dst, scan.end_of_data - position, transcode)
    os.replace(tmp, out)


def _copy(
    src: io.BufferedIOBase,
    dst: io.BufferedIOBase | None,
    count: int,
    transcode: Callable[[bytes], bytes] | None = None,
) -> None:
    """Copy `count` bytes from `src` to `dst` (or skip them when `dst` is None), passed
    through `transcode` (a single-byte encoding: any cut between bytes is a cut between
    characters)."""
    while count > 0:
        chunk = src.read(min(count, BLOCK_SIZE))
        if not chunk:
            return
        if dst is not None:
            dst.write(transcode(chunk) if transcode is not None else chunk)
        count -= len(chunk)
