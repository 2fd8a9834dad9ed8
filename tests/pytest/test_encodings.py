"""CSV encodings as real exports have them, on the real pipeline: Windows-1252 (Excel on
Windows: curly quotes, the euro sign, dashes) is read as what it is; a file no supported
encoding reads fails naming the file, the line and the bytes; UTF-16 is named as such."""

from __future__ import annotations

import pytest
from conftest import run_dbt
from test_ingest import CLEANING, GOOD, HEADER, MONTH_FIRST, build_cleaning, reasons, write

WINDOWS_DESCRIPTIONS = [
    "\u201cDOLLY\u201d GIRL LUNCH BOX \u2013 \u20ac5 OFFER",  # curly quotes, en dash, euro
    "BAG 500g \u2018RETRO\u2019 SPOT\u2026",  # single curly quotes, ellipsis
    "ZUSTAND \u00dcBERPR\u00dcFT \u00a3",  # letters and the pound sign, as in ISO-8859-1
]


def windows_rows() -> list[str]:
    return [
        GOOD[0].replace("WHITE HANGING HEART T-LIGHT HOLDER", WINDOWS_DESCRIPTIONS[0]),
        GOOD[1].replace('"LANTERN, WHITE METAL"', WINDOWS_DESCRIPTIONS[1]),
        GOOD[2].replace("HAND WARMER UNION JACK", WINDOWS_DESCRIPTIONS[2]),
    ]


def descriptions(result) -> list[str]:
    return [
        d
        for (d,) in result.query(
            "select description from marts.fct_order_lines order by source_row"
        )
    ]


def test_windows_1252_is_read_as_windows_1252(tmp_path):
    f = write(tmp_path / "excel_windows.csv", HEADER + "\n".join(windows_rows()) + "\n", "cp1252")
    result = build_cleaning(tmp_path / "b", f)
    assert descriptions(result) == WINDOWS_DESCRIPTIONS
    assert result.query("select encoding from staging.stg_input_files") == [("windows-1252",)]


def test_windows_1252_with_a_blank_row_is_repaired_and_transcoded(tmp_path):
    rows = windows_rows()
    text = HEADER + rows[0] + "\n\n" + rows[1] + "\n" + rows[2] + "\n"
    result = build_cleaning(tmp_path / "b", write(tmp_path / "gap.csv", text, "cp1252"))
    assert descriptions(result) == WINDOWS_DESCRIPTIONS
    assert reasons(result) == {2: "blank_row"}


def test_latin_1_without_windows_characters_is_read_in_place(tmp_path):
    f = write(tmp_path / "latin.csv", HEADER + windows_rows()[2] + "\n", "latin-1")
    result = build_cleaning(tmp_path / "b", f)
    assert descriptions(result) == [WINDOWS_DESCRIPTIONS[2]]
    assert result.query("select encoding, read_path = path from staging.stg_input_files") == [
        ("latin-1", True)
    ]


def fails_reading(tmp_path, data: bytes, *needles: str) -> str:
    f = tmp_path / "export.csv"
    f.write_bytes(data)
    result = run_dbt(tmp_path / "b", CLEANING, {"transactions_path": str(f), **MONTH_FIRST})
    assert result.returncode != 0
    line = next((x for x in result.output.splitlines() if "export.csv" in x), "")
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}\n{result.output[-3000:]}"
    return line


def test_a_utf8_file_with_one_latin_1_line_fails_naming_the_line_and_bytes(tmp_path):
    utf8 = [GOOD[0].replace("WHITE", "WHITE \u00a35 \u00e9t\u00e9"), GOOD[1]]
    latin = GOOD[2].replace("HAND WARMER", "HAND WARMER \u00a3")
    data = (HEADER + "\n".join(utf8) + "\n").encode() + (latin + "\n").encode("latin-1")
    fails_reading(tmp_path, data, "line 4 ", "0xA3", "not UTF-8", "mixes two encodings")


def test_a_byte_no_encoding_maps_fails_naming_the_line_and_byte(tmp_path):
    data = (HEADER + GOOD[0] + "\n").encode("latin-1") + (
        GOOD[2].replace("HAND WARMER", "HAND\x81WARMER") + "\n"
    ).encode("latin-1")
    fails_reading(tmp_path, data, "line 3 ", "0x81", "Windows-1252")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_utf16_is_named(tmp_path, codec):
    data = (HEADER + "\n".join(GOOD) + "\n").encode(codec)
    fails_reading(tmp_path, data, "UTF-16")
