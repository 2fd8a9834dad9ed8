"""The connection recipes for BI tools in docs/serving.md carry exactly the safe reader's settings.

Each recipe of docs/serving.md (the settings table, Metabase, the Superset URI and engine
parameters, DBeaver's driver properties and JDBC URL, the ODBC DSN) is parsed out of the page
and compared with SAFE_READER_CONFIG (customer_segmentation/serving.py, the one list), in its
spelling for that tool. Every fenced block and inline code of docs/serving.md and README.md
that names `enable_external_access` must belong to a recipe checked here or hold every setting
itself, so a recipe added to either without a check does not slip through. The README's first
Python example must open the serving file through `connect_readonly`, and it is run; the two
Superset recipes open a connection through SQLAlchemy and duckdb-engine, which reports the
settings.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import duckdb
import pytest
from conftest import PROJECT_DIR

from customer_segmentation.serving import SAFE_READER_CONFIG

SERVING_DOC = "docs/serving.md"
# The recipes live in docs/serving.md; the README keeps the first Python example.
RECIPES_DOC = (PROJECT_DIR / SERVING_DOC).read_text(encoding="utf-8")
README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
DOCS = {SERVING_DOC: RECIPES_DOC, "README.md": README}
SAFE = list(SAFE_READER_CONFIG.items())
# How tools spell "open read-only": duckdb-engine's connect_args and the JDBC driver property.
READ_ONLY_SPELLINGS = {
    ("read_only", "true"): ("access_mode", "read_only"),
    ("duckdb.read_only", "true"): ("access_mode", "read_only"),
}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Snippet:
    """A fenced block (its content) or an inline code span of a page, with its offsets."""

    start: int
    end: int
    text: str
    fenced: bool


def snippets(text: str = RECIPES_DOC) -> list[Snippet]:
    found = [Snippet(m.start(1), m.end(1), m.group(1), True) for m in FENCE.finditer(text)]
    # inline code outside the fenced blocks (blanked out, so offsets stay those of the page)
    prose = FENCE.sub(lambda m: " " * len(m.group(0)), text)
    found += [Snippet(m.start(1), m.end(1), m.group(1), False) for m in INLINE.finditer(prose)]
    return sorted(found, key=lambda s: s.start)


def region(start_marker: str, end_marker: str) -> tuple[int, int]:
    """Offsets of the docs/serving.md text from `start_marker` up to the next `end_marker`."""
    start = RECIPES_DOC.find(start_marker)
    assert start >= 0, f"{SERVING_DOC} has no {start_marker!r}"
    end = RECIPES_DOC.find(end_marker, start + len(start_marker))
    assert end >= 0, f"{SERVING_DOC} has no {end_marker!r} after {start_marker!r}"
    return start, end


def within(span: tuple[int, int]) -> list[Snippet]:
    return [s for s in snippets() if span[0] <= s.start and s.end <= span[1]]


def normalise(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [READ_ONLY_SPELLINGS.get((k, v.lower()), (k, v.lower())) for k, v in pairs]


@dataclass(frozen=True)
class Recipe:
    name: str
    settings: list[tuple[str, str]]  # (DuckDB setting, value) in the order the recipe gives them
    spans: list[tuple[int, int]]  # the docs/serving.md text it was read from: blocks, code, tables


def table(span: tuple[int, int]) -> tuple[tuple[int, int], list[list[str]]]:
    """The first markdown table in `span`: its offsets, and the cells of its rows (header and
    separator rows left out)."""
    match = re.compile(r"(?:^[ \t]*\|.*\n?)+", re.MULTILINE).search(RECIPES_DOC, *span)
    assert match, f"no table in {SERVING_DOC} at {RECIPES_DOC[span[0] : span[0] + 40]!r}"
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in match.group(0).splitlines()
    ]
    return match.span(), rows[2:]


def settings_table() -> Recipe:
    """The table of "The safe connection": `setting` (or two) | `value` | what it stops."""
    span, rows = table(region("## The safe connection", "In Python:"))
    pairs = []
    for cells in rows:
        value = INLINE.fullmatch(cells[1])
        assert value, cells
        pairs += [(key, value.group(1)) for key in INLINE.findall(cells[0])]
    return Recipe("the safe connection's table", normalise(pairs), [span])


METABASE_SWITCHES = {
    "Establish a read-only connection": ("access_mode", {"on": "read_only", "off": "automatic"}),
    "Allow loading unsigned extensions": (
        "allow_unsigned_extensions",
        {"on": "true", "off": "false"},
    ),
}
METABASE_OPTIONS = "Additional DuckDB connection string options (advanced)"


def metabase() -> Recipe:
    span, rows = table(region("**Metabase**", "**Superset**"))
    fields = {cells[0]: cells[1] for cells in rows}
    pairs = []
    for field, (setting, values) in METABASE_SWITCHES.items():
        assert fields.get(field) in values, (field, fields.get(field))
        pairs.append((setting, values[fields[field]]))
    options = INLINE.fullmatch(fields[METABASE_OPTIONS])
    assert options, fields[METABASE_OPTIONS]
    pairs += parse_qsl(options.group(1), strict_parsing=True)
    return Recipe("Metabase", normalise(pairs), [span])


def superset_uri() -> Recipe:
    span = region("**Superset**", "**DBeaver**")
    [uri] = [s for s in within(span) if s.fenced and s.text.startswith("duckdb:")]
    pairs = parse_qsl(urlsplit(uri.text.strip()).query, strict_parsing=True)
    return Recipe("Superset SQLAlchemy URI", normalise(pairs), [(uri.start, uri.end)])


def superset_engine_parameters() -> Recipe:
    span = region("**Superset**", "**DBeaver**")
    [params] = [s for s in within(span) if not s.fenced and s.text.startswith('{"connect_args"')]
    connect_args = json.loads(params.text)["connect_args"]
    assert set(connect_args) <= {"read_only", "config"}, connect_args
    pairs = (
        [("read_only", json.dumps(connect_args["read_only"]))]
        if "read_only" in connect_args
        else []
    )
    pairs += [(k, json.dumps(v).strip('"')) for k, v in connect_args.get("config", {}).items()]
    return Recipe("Superset engine parameters", normalise(pairs), [(params.start, params.end)])


def dbeaver_spans() -> tuple[tuple[int, int], tuple[int, int]]:
    """DBeaver's driver-properties form, and its JDBC-URL form (from "Or give" to Tableau)."""
    start, end = region("**DBeaver**", "**Tableau")
    url_form = RECIPES_DOC.find("Or give the whole JDBC URL", start, end)
    assert url_form >= 0, "the DBeaver recipe no longer offers the JDBC URL form"
    return (start, url_form), (url_form, end)


def dbeaver_driver_properties() -> Recipe:
    span, _ = dbeaver_spans()
    properties = [s for s in within(span) if "=" in s.text]
    pairs = [tuple(s.text.split("=", 1)) for s in properties]
    return Recipe(
        "DBeaver driver properties", normalise(pairs), [(s.start, s.end) for s in properties]
    )


def dbeaver_jdbc_url() -> Recipe:
    _, span = dbeaver_spans()
    [url] = [s for s in within(span) if s.fenced and s.text.startswith("jdbc:duckdb:")]
    pairs = [tuple(option.split("=", 1)) for option in url.text.strip().split(";")[1:]]
    return Recipe("DBeaver JDBC URL", normalise(pairs), [(url.start, url.end)])


def odbc_dsn() -> Recipe:
    span = region("**Tableau and Power BI**", "## The report")
    [ini] = [s for s in within(span) if s.fenced and "Driver = DuckDB Driver" in s.text]
    pairs = []
    for line in ini.text.splitlines():
        key, _, value = line.partition("=")
        if value and key.strip() not in ("Driver", "Database"):
            pairs.append((key.strip(), value.strip()))
    return Recipe("ODBC DSN (odbc.ini)", normalise(pairs), [(ini.start, ini.end)])


RECIPES = [
    settings_table,
    metabase,
    superset_uri,
    superset_engine_parameters,
    dbeaver_driver_properties,
    dbeaver_jdbc_url,
    odbc_dsn,
]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda f: f.__name__)
def test_each_recipe_holds_exactly_the_safe_reader_settings(recipe):
    found = recipe()
    assert dict(found.settings) == SAFE_READER_CONFIG, found.name
    assert len(found.settings) == len(SAFE), f"{found.name} repeats a setting: {found.settings}"
    # lock_configuration locks what comes before it
    assert found.settings[-1] == SAFE[-1], found.name


def superset_engine(recipe, serving):
    """A SQLAlchemy engine made as Superset makes it from the recipe in docs/serving.md."""
    from sqlalchemy import create_engine

    [(start, end)] = recipe().spans
    text = RECIPES_DOC[start:end].strip()
    if recipe is superset_uri:
        return create_engine(f"duckdb:///{serving.as_posix()}?{urlsplit(text).query}")
    return create_engine(f"duckdb:///{serving.as_posix()}", **json.loads(text))


@pytest.mark.parametrize("recipe", [superset_uri, superset_engine_parameters])
def test_superset_recipes_connect_with_the_safe_reader_settings(tmp_path, recipe):
    from sqlalchemy import text

    serving = tmp_path / "serving.duckdb"
    duckdb.connect(str(serving)).close()
    engine = superset_engine(recipe, serving)
    with engine.connect() as con:
        seen = {
            key: str(con.execute(text(f"select current_setting('{key}')")).scalar()).lower()
            for key in SAFE_READER_CONFIG
        }
    engine.dispose()
    assert seen == SAFE_READER_CONFIG


def test_dbeaver_url_form_keeps_the_read_only_driver_property():
    # With the URL alone DBeaver reports the connection as writable.
    _, span = dbeaver_spans()
    assert "duckdb.read_only=true" in [s.text for s in within(span) if not s.fenced]


@pytest.mark.parametrize("page", DOCS)
def test_every_snippet_naming_a_setting_is_a_checked_or_complete_recipe(page):
    text = DOCS[page]
    # the checked recipes are those of docs/serving.md; nothing in the README is claimed
    claimed = [span for recipe in RECIPES for span in recipe().spans] if text is RECIPES_DOC else []
    loose = [
        s
        for s in snippets(text)
        if "enable_external_access" in s.text
        and not any(a <= s.start and s.end <= b for a, b in claimed)
    ]
    for s in loose:
        # a recipe no parser above reads: it must carry every setting in itself
        pairs = re.findall(r'"?([A-Za-z_][\w.]*)"?\s*[=:]\s*"?(\w+)', s.text)
        settings = dict(normalise(pairs))
        missing = {k: v for k, v in SAFE if settings.get(k) != v}
        line = text.count("\n", 0, s.start) + 1
        assert not missing, (
            f"{page} line {line}: a recipe without {missing} "
            f"(complete it, or check it in this file): {s.text[:200]!r}"
        )


def first_python_example() -> Snippet:
    return next(s for s in snippets(README) if s.fenced and re.search(r"\bimport\b", s.text))


def test_first_python_example_opens_the_serving_file_through_connect_readonly(tmp_path):
    example = first_python_example()
    assert "connect_readonly" in example.text, example.text
    assert "duckdb.connect" not in example.text, example.text
    # and it runs: on a serving file with the mart it reads
    serving = tmp_path / "serving.duckdb"
    with duckdb.connect(str(serving)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.quarantined_transactions as select 'duplicate_line' as r")
    [command] = [line for line in example.text.splitlines() if "connect_readonly" in line]
    args = shlex.split(command)
    assert args[0].endswith("python"), args
    proc = subprocess.run(
        [sys.executable, *args[1:]],
        cwd=tmp_path,
        env={"SERVING_DUCKDB_PATH": str(serving), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "duplicate_line" in proc.stdout


def test_python_examples_of_the_serving_page_open_the_file_through_connect_readonly():
    examples = [s for s in snippets() if s.fenced and re.search(r"\bimport\b", s.text)]
    assert examples, f"{SERVING_DOC} has no Python example"
    for example in examples:
        assert "connect_readonly" in example.text, example.text
        assert "duckdb.connect" not in example.text, example.text
