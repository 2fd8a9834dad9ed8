"""csv_scan counts a CSV file's records without DuckDB; DuckDB's reader, given the file (or its
repaired copy), must find exactly those records. Checked on random files, well-formed and
not, split into blocks of every size, and on the fast (numpy) path against the exact one."""

from __future__ import annotations

import csv
import gzip
import io
import random
from pathlib import Path

import duckdb
import pytest

from customer_segmentation import csv_scan
from customer_segmentation.csv_scan import CsvScanError, scan_csv, write_repaired
from customer_segmentation.fingerprint import file_fingerprint

_DUCKDB = duckdb.connect()


def duckdb_rows(path: Path, fields: int) -> list[tuple]:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(fields))
    with _DUCKDB.cursor() as con:
        return con.execute(
            f"select * from read_csv(?, header = true, auto_detect = false, "
            f"columns = {{{columns}, 'extra_fields': 'VARCHAR'}}, delim = ',', quote = '\"', "
            "escape = '\"', null_padding = true, strict_mode = false, parallel = false)",
            [str(path)],
        ).fetchall()


def exact_scan(path: Path, monkeypatch) -> csv_scan.CsvScan:
    """The scan with the numpy fast path switched off: every quote through the exact rules."""
    with monkeypatch.context() as patch:
        patch.setattr(csv_scan._Machine, "_field_openings", lambda self, data, quotes: None)
        return scan_csv(path)


def random_file(rnd: random.Random) -> str:
    line_end = rnd.choice(["\n", "\r\n", "\r"])
    if rnd.random() < 0.5:  # well-formed, as a CSV writer quotes it, maybe with blank lines
        out = io.StringIO()
        writer = csv.writer(
            out, lineterminator=line_end, quoting=rnd.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
        )
        writer.writerow(["a", "b", "c"])
        for _ in range(rnd.randint(0, 8)):
            writer.writerow(
                ["".join(rnd.choice('ab,"\n ') for _ in range(rnd.randint(0, 4))) for _ in "abc"]
            )
        lines = out.getvalue().split(line_end)
        for _ in range(rnd.randint(0, 2)):
            lines.insert(rnd.randint(1, len(lines)), "")
        text = line_end.join(lines)
    else:  # anything: stray quotes, blank lines, spaces and tabs around quotes
        pieces = ["a", ",", '"', line_end, line_end, " ", '""', "\t", "b"]
        text = "a,b,c" + line_end + "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 40)))
    if line_end == "\r":
        text = text.replace("\n", "")
    return text


@pytest.mark.parametrize("block_size", [3, 64, 1 << 24])
def test_duckdb_reads_exactly_the_records_counted(tmp_path, monkeypatch, block_size):
    monkeypatch.setattr(csv_scan, "BLOCK_SIZE", block_size)
    rnd = random.Random(block_size)
    source, repaired = tmp_path / "f.csv", tmp_path / "repaired.csv"
    for _ in range(200):
        text = random_file(rnd)
        source.write_bytes(text.encode())
        scan = scan_csv(source)
        exact = exact_scan(source, monkeypatch)
        assert (scan.data_rows, scan.blank_rows, scan.unparseable_rows, scan.edits) == (
            exact.data_rows,
            exact.blank_rows,
            exact.unparseable_rows,
            exact.edits,
        ), repr(text)
        if scan.needs_repair:
            write_repaired(scan, 1, repaired)
        rows = duckdb_rows(repaired if scan.needs_repair else source, 3)
        assert len(rows) == scan.data_rows, repr(text)
        for row in scan.blank_rows:
            assert rows[row - 1] == (None, None, None, None), repr(text)
        for row in scan.unparseable_rows:
            assert rows[row - 1][1] is not None, repr(text)
            assert rows[row - 1][0] is None and rows[row - 1][2] is None, repr(text)


def test_counts_quoted_line_ends_blank_and_unparseable_rows(tmp_path):
    text = (
        "a,b,c\n"
        '1,"two\nlines",3\n'  # row 1: one record over two lines
        "\n"  # row 2: blank
        '4,"unclosed,6\n'  # row 3: a quote that never closes
        "7,8,9\n"  # row 4
        '10,"eleven, 11",12\n'  # row 5: its quotes do not pair with the one left open
        "\n\n"  # blank lines at the end: not rows
    )
    f = tmp_path / "f.csv"
    f.write_text(text)
    scan = scan_csv(f)
    assert (scan.data_rows, scan.blank_rows, scan.unparseable_rows) == (5, [2], [3])
    assert scan.header == ["a", "b", "c"]
    write_repaired(scan, 1, tmp_path / "r.csv")
    assert duckdb_rows(tmp_path / "r.csv", 3) == [
        ("1", "two\nlines", "3", None),
        (None, None, None, None),
        (None, '4,"unclosed,6', None, None),
        ("7", "8", "9", None),
        ("10", "eleven, 11", "12", None),
    ]


def test_encoding_delimiter_and_hash(tmp_path):
    f = tmp_path / "f.csv"
    f.write_bytes("a;b\n£1;2\n".encode("latin-1"))
    scan = scan_csv(f)
    assert (scan.encoding, scan.delimiter, scan.data_rows) == ("latin-1", ";", 1)
    assert scan.sha256 == file_fingerprint(f)[2]
    f.write_bytes("a;b\n£1;2\n".encode())
    assert scan_csv(f).encoding == "utf-8"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([("£1 é", "utf-8"), ("ü", "utf-8")], "utf-8"),
        ([("£1 é", "latin-1"), ("ü", "latin-1")], "latin-1"),
        ([("“x” – €5", "cp1252"), ("£", "cp1252")], "windows-1252"),
        # a UTF-8 file with a line that is not: named (the file's own UTF-8 outnumbers it)
        ([("£1 é ü ö", "utf-8"), ("£", "latin-1")], "line 3 holds bytes that are not UTF-8"),
        # a single-byte file with a line of UTF-8 is read single-byte (its bytes outnumber it)
        ([("£", "utf-8"), ("é ü ö £1", "latin-1")], "latin-1"),
        # an accented capital before a curly quote is well-formed UTF-8 by chance: outnumbered
        ([("CAFÉ’S", "cp1252"), ("£ £ £", "cp1252")], "windows-1252"),
    ],
)
def test_the_encoding_is_the_one_that_fits_the_whole_file(tmp_path, lines, expected):
    f = tmp_path / "f.csv"
    f.write_bytes(b"a,b\n" + b"".join(f"{text},1\n".encode(codec) for text, codec in lines))
    if expected.startswith("line"):
        with pytest.raises(CsvScanError, match=expected):
            scan_csv(f)
        return
    scan = scan_csv(f)
    assert scan.encoding == expected
    assert scan.needs_repair == (expected == "windows-1252")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a,b\n1,2\n3,x\x81y\n", "line 3 holds the byte 0x81"),
        ("a,b\n1,2\n".encode("utf-16"), "UTF-16"),
        ("a,b\n1,2\n".encode("utf-16-be"), "UTF-16"),
    ],
)
def test_bytes_no_encoding_reads_are_named(tmp_path, data, message):
    f = tmp_path / "f.csv"
    f.write_bytes(data)
    with pytest.raises(CsvScanError, match=message):
        scan_csv(f)


def test_a_windows_1252_copy_is_utf8_with_the_same_rows(tmp_path):
    f = tmp_path / "f.csv"
    f.write_bytes("a,b\n“q”,1\n\n€,2\n".encode("cp1252"))
    scan = scan_csv(f)
    out = tmp_path / "copy.csv"
    write_repaired(scan, 0, out)
    assert out.read_text(encoding="utf-8") == "a,b\n“q”,1\n,\n€,2\n"
    assert duckdb_rows(out, 2) == [("“q”", "1", None), (None, None, None), ("€", "2", None)]


def test_gzip_is_hashed_as_stored_and_a_truncated_one_is_named(tmp_path):
    f = tmp_path / "f.csv.gz"
    f.write_bytes(gzip.compress(b"a,b\n1,2\n" * 1000))
    scan = scan_csv(f)
    assert scan.data_rows == 1999 and scan.sha256 == file_fingerprint(f)[2]
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(CsvScanError, match="f.csv.gz"):
        scan_csv(f)
