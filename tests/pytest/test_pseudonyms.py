"""Pseudonymous serving (SERVING_CUSTOMER_KEY): the serving file holds keyed hashes of the
customer ids, the build file the ids; the key is written nowhere.

One build of a generated file whose customer ids are 12-digit numbers (731000012346, ...) that
no count, row number or amount of the data can equal, with `guest_policy: per_invoice` (guests'
negative synthetic ids) and rows planted so that an id sits where it should not: in `country`
(an unquoted comma), in `unit_price` (a missing field), in a broken row's raw text, in an invalid
id (`...x`), and one customer whose only rows are quarantined. The pseudonyms the tests expect
are computed here from the definition (HMAC-SHA-256 of the decimal id, first 63 bits), not by
the project's code.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import PROJECT_DIR, DbtResult, failure_summary, run_dbt

from customer_segmentation import pseudonyms
from customer_segmentation.generate import generate

PYTHON = sys.executable
KEY_A = "pseudonym-test-key-A-7f3e9c2b41d0"
KEY_B = "pseudonym-test-key-B-0c81d5e6a93f"
SHORT_KEY = "sh0rt-K3y-9q"  # 12 characters
ID_OFFSET = 731_000_000_000
ONLY_QUARANTINED_ID = 731_000_099_999
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]
RAW_FIELDS = pseudonyms.RAW_FIELDS
DISPLACED = set(pseudonyms.DISPLACED_FIELD_REASONS)
LINE_TABLES = {"fct_order_lines", "quarantined_transactions"}


def expected_pseudonym(key: str, customer_id: int) -> int:
    """The definition in docs/privacy.md, written out independently of the package."""
    mac = hmac.new(key.encode("utf-8"), str(customer_id).encode("ascii"), hashlib.sha256)
    value = int.from_bytes(mac.digest()[:8], "big") >> 1
    return -value if customer_id < 0 else value


def parse_id(text: str | None) -> int | None:
    """A customer id read from text as the cleaning rules read it, else None."""
    try:
        number = float((text or "").strip())
    except ValueError:
        return None
    if number != number or not number.is_integer() or not 1 <= number <= 1e15:
        return None
    return int(number)


def write_input(path: Path) -> tuple[Path, int]:
    """A generated file with 12-digit customer ids and the planted rows; returns (path, the
    id planted out of place)."""
    raw = path.with_suffix(".raw.csv")
    generate(rows=12000, seed=30, output=str(raw))
    with open(raw, encoding="latin-1", newline="") as src:
        rows = list(csv.reader(src))
    header, body = rows[0], rows[1:]
    column = header.index("CustomerID")
    for row in body:
        if row[column]:
            whole, dot, rest = row[column].partition(".")
            row[column] = f"{ID_OFFSET + int(whole)}{dot}{rest}"
    planted = next(int(float(row[column])) for row in body if row[column])
    with open(path, "w", encoding="latin-1", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows([header, *body])
        out.write(
            # an unquoted comma: the id lands in `country` (too_many_fields)
            f"581600,22423,REGENCY CAKESTAND, 3 TIER,2,12/9/2011 9:00,12.75,{planted},"
            "United Kingdom\n"
            # no description: the id lands in `unit_price` (missing_required_field)
            f"581601,22423,2,12/9/2011 9:00,12.75,{planted},United Kingdom\n"
            # text after a closing quote: the raw row, id included, is the description
            f'581602,22423,"REGENCY "CAKESTAND" 3 TIER,2,12/9/2011 9:00,12.75,{planted},'
            "United Kingdom\n"
            # an id that is not a whole number, with the id's digits in it
            f"581603,22423,REGENCY CAKESTAND 3 TIER,2,12/9/2011 9:00,12.75,{planted}x,"
            "United Kingdom\n"
            # a valid id, written with .0, on a rejected row
            f"581605,22423,REGENCY CAKESTAND 3 TIER,2,12/9/2011 9:00,12.75,{planted}.0,"
            "Unspecified\n"
            # a customer none of whose rows is accepted
            f"581604,POST,POSTAGE,1,12/9/2011 9:00,18.00,{ONLY_QUARANTINED_ID},United Kingdom\n"
        )
    raw.unlink()
    return path, planted


def publish(build: Path, serving: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    """`make publish` (the CLI) of a build file, with the key in the environment or unset."""
    env = {**os.environ, "DUCKDB_PATH": str(build), "SERVING_DUCKDB_PATH": str(serving)}
    env.pop(pseudonyms.KEY_ENV, None)
    if key is not None:
        env[pseudonyms.KEY_ENV] = key
    return subprocess.run(
        [PYTHON, "-m", "customer_segmentation.publish"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def marts_of(path: Path) -> list[str]:
    return [
        name
        for (name,) in query(
            path,
            "select table_name from duckdb_tables() where schema_name = 'marts' union "
            "select view_name from duckdb_views() where schema_name = 'marts' order by 1",
        )
        if name != "build_info"
    ]


def columns_of(path: Path, table: str) -> list[tuple[str, str]]:
    return query(
        path,
        "select column_name, data_type from duckdb_columns() where schema_name = 'marts' "
        f"and table_name = '{table}' order by column_index",
    )


def id_columns(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for table in marts_of(path):
        names = [c for c, _ in columns_of(path, table) if pseudonyms.is_id_column(c)]
        if names:
            found[table] = names
    return found


def real_ids(build: Path) -> set[int]:
    """Every customer id of the build file (accepted lines and quarantined rows), guests'
    synthetic ids (-1, -2, ...: small numbers found everywhere) aside."""
    ids = {row[0] for row in query(build, "select distinct customer_id from marts.fct_order_lines")}
    ids |= {
        parse_id(text)
        for (text,) in query(build, "select customer_id from marts.quarantined_transactions")
    }
    return {i for i in ids if i is not None and i > 0}


def cells_holding(path: Path, ids: set[int]) -> dict[str, int]:
    """Per `table.column` of the marts, the values that hold one of `ids`: as a number (equal),
    or as text (a run of digits in the value cast to text)."""
    texts = sorted(str(i) for i in ids)
    hits: dict[str, int] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("create temp table ids (id bigint, id_text varchar)")
        con.executemany("insert into ids values (?, ?)", [[int(t), t] for t in texts])
        tables = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' union all "
            "select view_name from duckdb_views() where schema_name = 'marts'"
        ).fetchall()
        for (table,) in tables:
            for column, data_type in con.execute(
                "select column_name, data_type from duckdb_columns() where schema_name = 'marts' "
                "and table_name = ?",
                [table],
            ).fetchall():
                value = f'marts."{table}"."{column}"'
                as_text = (
                    f"select count(*) from (select unnest(regexp_extract_all("
                    f"cast({value} as varchar), '[0-9]+')) as run from marts.\"{table}\") "
                    "where run in (select id_text from ids)"
                )
                count = con.execute(as_text).fetchone()[0]
                if data_type not in {"VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP"}:
                    count += con.execute(
                        f'select count(*) from marts."{table}" where try_cast({value} as '
                        "decimal(38, 4)) in (select id from ids)"
                    ).fetchone()[0]
                if count:
                    hits[f"{table}.{column}"] = count
    return hits


def join_counts(path: Path, tables: list[str]) -> dict[tuple[str, str], int]:
    """The rows of every join of two of `tables` on customer_id, in one query."""
    pairs = [(a, b) for i, a in enumerate(tables) for b in tables[i + 1 :]]
    counts = "select " + ", ".join(
        f"(select count(*) from marts.{a} as a join marts.{b} as b "
        "on a.customer_id = b.customer_id)"
        for a, b in pairs
    )
    return dict(zip(pairs, query(path, counts)[0], strict=True))


def served_rows(build: Path, table: str, key: str) -> list[tuple]:
    """The rows `table` of a pseudonymous serving file must hold, computed from the build file:
    every id replaced by its pseudonym, the quarantine's displaced fields withheld."""
    columns = [c for c, _ in columns_of(build, table)]
    rows = query(build, f'select * from marts."{table}"')
    out = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        for column in columns:
            if not pseudonyms.is_id_column(column) or values[column] is None:
                continue
            if table == "quarantined_transactions":
                parsed = parse_id(values[column])
                values[column] = None if parsed is None else str(expected_pseudonym(key, parsed))
            else:
                values[column] = expected_pseudonym(key, values[column])
        if table == "quarantined_transactions" and values["reject_reason"] in DISPLACED:
            values.update({f: None for f in RAW_FIELDS if f != "customer_id"})
        out.append(tuple(values[c] for c in columns))
    return out


def as_text(rows: list[tuple]) -> list[str]:
    """Rows as sorted text: comparable whatever their order, with NaN equal to NaN."""
    return sorted(repr(row) for row in rows)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[DbtResult, int]:
    """`dbt build` with SERVING_CUSTOMER_KEY = KEY_A and partial parsing on (so dbt writes its
    partial-parse file, where it keeps environment variables it reads at parse time)."""
    workdir = tmp_path_factory.mktemp("pseudonyms")
    source, planted = write_input(workdir / "lines.csv")
    result = run_dbt(
        workdir,
        BUILD_ARGS,
        {"transactions_path": str(source), "guest_policy": "per_invoice"},
        env={pseudonyms.KEY_ENV: KEY_A, "DBT_PARTIAL_PARSE": "true"},
    )
    assert result.returncode == 0, failure_summary(result.output)
    return result, planted


@pytest.fixture(scope="module")
def served(build) -> Path:
    """The serving file the build published itself (the dbt node) with KEY_A."""
    return build[0].duckdb_path.parent / "serving.duckdb"


def test_the_build_published_pseudonyms_and_says_so(build, served: Path):
    result, planted = build
    assert query(served, "select is_pseudonymous from marts.build_info") == [(True,)]
    # the data has what the tests need: guests, the planted rows, the quarantined-only id
    build_file = result.duckdb_path
    assert (
        query(build_file, "select count(*) from marts.fct_order_lines where customer_id < 0")[0][0]
        > 100
    )
    reasons = {
        r
        for (r,) in query(
            build_file,
            "select reject_reason from marts.quarantined_transactions where source_row > 12000",
        )
    }
    assert {"too_many_fields", "missing_required_field", "unparseable_row"} <= reasons
    assert {"invalid_customer_id", "excluded_country", "excluded_stock_code"} <= reasons
    assert ONLY_QUARANTINED_ID in real_ids(build_file)
    assert not query(
        build_file, f"select 1 from marts.fct_order_lines where customer_id = {ONLY_QUARANTINED_ID}"
    )
    comment = query(
        served,
        "select comment from duckdb_columns() where schema_name = 'marts' "
        "and table_name = 'customer_rfm' and column_name = 'customer_id'",
    )[0][0]
    assert "pseudonym" in comment and "docs/privacy.md" in comment


def test_the_serving_file_holds_no_real_customer_id(build, served: Path):
    result, planted = build
    ids = real_ids(result.duckdb_path)
    # the search finds the ids where the build file holds them, planted ones included
    in_build = cells_holding(result.duckdb_path, ids)
    assert {f"{t}.customer_id" for t in id_columns(result.duckdb_path)} <= set(in_build)
    assert {
        "quarantined_transactions.country",
        "quarantined_transactions.unit_price",
        "quarantined_transactions.description",
    } <= set(in_build)
    assert cells_holding(served, ids) == {}
    # guests' synthetic ids (-1, -2, ...) are not served either
    guests = {
        i
        for (i,) in query(
            result.duckdb_path,
            "select distinct customer_id from marts.fct_order_lines where customer_id < 0",
        )
    }
    for table, columns in id_columns(served).items():
        for column in columns:
            values = {
                v for (v,) in query(served, f'select distinct "{column}" from marts."{table}"')
            }
            assert not values & guests, f"{table}.{column} serves a guest's synthetic id"
            assert not {v for v in values if isinstance(v, int)} & ids, f"{table}.{column}"


def test_every_mart_is_the_build_mart_with_each_id_replaced_by_its_hmac(build, served: Path):
    """The same id has the same pseudonym in every table (that of the definition), every other
    value is the build's, and no row is lost or added."""
    result, _ = build
    build_file = result.duckdb_path
    assert marts_of(served) == marts_of(build_file)
    with_ids = id_columns(build_file)
    assert set(with_ids) == {
        "clv_validation_customers", "customer_lifetime_summary", "customer_lifetime_value",
        "customer_recommendations", "customer_reorder_recommendations", "customer_rfm",
        "customer_segment_history", "customer_segments", "customer_value_tiers",
        "fct_order_lines", "fct_orders", "loyalty_programme", "loyalty_programme_changes",
        "quarantined_transactions",
    }  # fmt: skip
    for table in marts_of(build_file):
        got = query(served, f'select * from marts."{table}"')
        if table in with_ids:
            want = served_rows(build_file, table, KEY_A)
        else:
            want = query(build_file, f'select * from marts."{table}"')
        assert as_text(got) == as_text(want), table


def test_tables_are_not_stored_in_the_order_of_the_real_ids(build, served: Path):
    """The build stores customer tables ordered by id; served in that order, a row's position
    would tell its id's rank. Served tables are ordered by pseudonym; the lines keep the build
    file's order, along which the real ids go up and down (a join would have grouped them in
    the order of the ids it matched)."""
    result, _ = build
    for table in id_columns(served):
        if table in LINE_TABLES:
            continue
        ids = [i for (i,) in query(served, f'select customer_id from marts."{table}"')]
        assert ids == sorted(ids), table
    build_order = [
        i for (i,) in query(result.duckdb_path, "select customer_id from marts.customer_segments")
    ]
    assert build_order == sorted(build_order)  # what would leak
    # a table is copied in the build's order (fct_order_lines is a view, read in parallel)
    rows = "select source_file, source_row from marts.quarantined_transactions"
    assert query(served, rows) == query(result.duckdb_path, rows)
    real_of = {
        expected_pseudonym(KEY_A, i): i
        for (i,) in query(
            result.duckdb_path, "select distinct customer_id from marts.fct_order_lines"
        )
        if i is not None
    }
    served_ids = query(served, "select customer_id from marts.fct_order_lines")
    real = [real_of[p] for (p,) in served_ids if p is not None]
    steps = [b - a for a, b in itertools.pairwise(real)]
    ups, downs = sum(s > 0 for s in steps), sum(s < 0 for s in steps)
    assert min(ups, downs) > (ups + downs) / 4, (ups, downs)


def test_joins_across_marts_give_the_same_rows_as_with_real_ids(build, served: Path):
    """Every pair of marts with a customer id, joined on it, gives as many rows in the serving
    file as in the build file; every such mart meets another in at least one non-empty join."""
    result, _ = build
    tables = sorted(t for t in id_columns(result.duckdb_path) if t != "quarantined_transactions")
    real = join_counts(result.duckdb_path, tables)
    assert join_counts(served, tables) == real
    joined = {table for pair, rows in real.items() if rows for table in pair}
    assert joined == set(tables)
    # the quarantine's ids (text) join the lines' ids
    quarantine_join = (
        "select count(*) from marts.quarantined_transactions q join marts.fct_order_lines f "
        "on {} = f.customer_id"
    )
    real = query(result.duckdb_path, quarantine_join.format(pseudonyms.parsed_id("q.customer_id")))
    assert real[0][0] > 0
    assert query(served, quarantine_join.format("try_cast(q.customer_id as bigint)")) == real


def test_one_key_gives_the_same_pseudonyms_another_key_others(build, served: Path, tmp_path):
    result, _ = build
    again, other, plain = (tmp_path / f"{n}.duckdb" for n in ("again", "other", "plain"))
    for path, key in ((again, KEY_A), (other, KEY_B), (plain, None)):
        proc = publish(result.duckdb_path, path, key)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = (
        "select source_file, source_row, customer_id from marts.fct_order_lines "
        "where customer_id is not null order by 1, 2"
    )
    real = query(result.duckdb_path, lines)
    first, second, third = (query(p, lines) for p in (served, again, other))
    assert first == second  # the node's publish and the CLI's, one key
    assert len(first) == len(real)
    a_of = {r[2]: a[2] for r, a in zip(real, first, strict=True)}
    b_of = {r[2]: b[2] for r, b in zip(real, third, strict=True)}
    assert all(a_of[i] == expected_pseudonym(KEY_A, i) for i in a_of)
    assert all(b_of[i] == expected_pseudonym(KEY_B, i) for i in b_of)
    assert not set(a_of.values()) & set(b_of.values())
    # without the key: the ids, and build_info says so
    assert query(plain, lines) == real
    assert query(plain, "select is_pseudonymous from marts.build_info") == [(False,)]
    assert query(again, "select is_pseudonymous from marts.build_info") == [(True,)]


def test_the_key_is_written_nowhere(build, served: Path, tmp_path):
    """Not in the build or serving file, dbt's target/ (run_results.json, manifest.json, the
    partial-parse file) or logs/, nor the DuckDB temp folder."""
    result, _ = build
    workdir = result.duckdb_path.parent
    republished = tmp_path / "serving.duckdb"
    assert publish(result.duckdb_path, republished, KEY_A).returncode == 0
    files = [p for p in [*workdir.rglob("*"), republished] if p.is_file()]
    names = {p.name for p in files}
    assert {"retail.duckdb", "serving.duckdb", "run_results.json", "dbt.log"} <= names
    assert "partial_parse.msgpack" in names
    needles = [KEY_A.encode(), KEY_A.encode("utf-16-le"), KEY_A.encode().hex().encode()]
    found = [str(p) for p in files for needle in needles if needle in p.read_bytes()]
    assert found == []
    assert KEY_A not in result.output


def test_a_short_key_stops_dbt_naming_the_variable_not_the_value(tmp_path):
    result = run_dbt(tmp_path, ["parse"], env={pseudonyms.KEY_ENV: SHORT_KEY})
    assert result.returncode != 0
    assert "SERVING_CUSTOMER_KEY must be at least 16 characters" in result.output
    assert SHORT_KEY not in result.output
    logs = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SHORT_KEY.encode() not in logs
    empty = run_dbt(tmp_path / "empty", ["parse"], env={pseudonyms.KEY_ENV: ""})
    assert empty.returncode != 0 and "SERVING_CUSTOMER_KEY must be" in empty.output


def test_a_short_key_stops_the_publish_and_leaves_the_serving_file(build, served, tmp_path):
    result, _ = build
    serving = tmp_path / "serving.duckdb"
    assert publish(result.duckdb_path, serving, None).returncode == 0
    before = serving.read_bytes()
    proc = publish(result.duckdb_path, serving, SHORT_KEY)
    assert proc.returncode == 1
    assert "SERVING_CUSTOMER_KEY must be at least 16 characters" in proc.stderr
    assert SHORT_KEY not in proc.stdout + proc.stderr
    assert serving.read_bytes() == before
    assert list(tmp_path.glob(".serving.duckdb.publish-*")) == []


def numbers_in_report(html: str) -> tuple[set[str], set[str]]:
    """The runs of digits of the report's text, and the whole numbers of plotly's base64 arrays
    (`{"dtype": "i8", "bdata": ...}`: a chart's numbers are not written as digits)."""
    arrays: set[str] = set()
    for dtype, data in re.findall(r'"dtype":"(\w+)","bdata":"((?:[^"\\]|\\.)*)"', html):
        values = np.frombuffer(base64.b64decode(json.loads(f'"{data}"')), dtype=np.dtype(dtype))
        arrays |= {str(int(v)) for v in values.tolist() if float(v).is_integer()}
    return set(re.findall(r"[0-9]+", html)), arrays


def test_the_report_shows_no_customer_id(build, served: Path, tmp_path):
    """The report drawn from the pseudonymous file holds neither a real id nor a pseudonym: it
    draws aggregates only (docs/privacy.md)."""
    result, _ = build
    output = tmp_path / "report.html"
    subprocess.run(
        [PYTHON, "-m", "customer_segmentation.report", "--serving", str(served),
         "--output", str(output)],
        cwd=PROJECT_DIR, check=True, capture_output=True,
    )  # fmt: skip
    text, arrays = numbers_in_report(output.read_text(encoding="utf-8"))
    # the search reads the charts' arrays: the monthly active customers are drawn there
    active = {str(n) for (n,) in query(served, "select active_customers from marts.monthly_kpis")}
    assert active <= arrays
    pseudonymous = {
        abs(int(value))
        for table, columns in id_columns(served).items()
        for column in columns
        for (value,) in query(served, f'select distinct "{column}" from marts."{table}"')
        if value is not None
    }
    real = real_ids(result.duckdb_path)
    assert len(real) > 50 and len(pseudonymous) > len(real)  # guests' pseudonyms too
    ids = {str(i) for i in real | pseudonymous}
    ids |= {str(int(float(p))) for p in pseudonymous}  # as a chart's float64 array holds them
    assert not (text | arrays) & ids


# -- the module, without dbt -------------------------------------------------------------------


def test_the_key_is_read_from_the_environment_only_when_long_enough():
    assert pseudonyms.serving_key({}) is None
    assert pseudonyms.serving_key({pseudonyms.KEY_ENV: KEY_A}) == KEY_A.encode()
    for value in ("", SHORT_KEY, "x" * 15):
        with pytest.raises(pseudonyms.PseudonymError) as error:
            pseudonyms.serving_key({pseudonyms.KEY_ENV: value})
        assert pseudonyms.KEY_ENV in str(error.value)
        assert not value or value not in str(error.value)


def test_pseudonyms_follow_the_definition():
    for customer_id in (1, 12346, 731000012346, 10**15, -1, -4021):
        got = pseudonyms.pseudonym(KEY_A.encode(), customer_id)
        assert got == expected_pseudonym(KEY_A, customer_id)
        assert (got > 0) == (customer_id > 0) and abs(got) < 2**63
    table = pseudonyms.pseudonym_table(KEY_A.encode(), [5, 3, 5, -2])
    assert table.column("customer_id").to_pylist() == [-2, 3, 5]
    assert table.column("pseudonym").to_pylist() == [
        expected_pseudonym(KEY_A, i) for i in (-2, 3, 5)
    ]


def test_two_ids_with_one_pseudonym_fail_the_publish_naming_no_id(monkeypatch):
    monkeypatch.setattr(pseudonyms, "pseudonym", lambda key, i: 42 if i in (123457, 998877) else i)
    with pytest.raises(pseudonyms.PseudonymError) as error:
        pseudonyms.pseudonym_table(KEY_A.encode(), [123457, 998877, 5])
    assert "same pseudonym" in str(error.value)
    assert not re.search(r"123457|998877", str(error.value))
    pseudonyms.pseudonym_table(KEY_A.encode(), [123457, 5])  # no collision, no error


def test_the_lookup_gives_each_id_its_pseudonym_and_fails_on_an_unknown_id():
    """The function the copy calls: nulls stay null, an id it was not given stops the publish
    (it cannot happen: it is given the ids of the very columns it is applied to)."""
    ids = [731000012346, -7, 12, 99]
    lookup = pseudonyms.PseudonymLookup(pseudonyms.pseudonym_table(KEY_A.encode(), ids))
    got = lookup(pa.array([99, None, -7, 731000012346, 99, None], pa.int64()))
    assert got.to_pylist() == [
        None if i is None else expected_pseudonym(KEY_A, i)
        for i in (99, None, -7, 731000012346, 99, None)
    ]
    assert lookup(pa.array([None, None], pa.int64())).to_pylist() == [None, None]
    for unknown in (13, 100, -8, 731000012347):
        with pytest.raises(pseudonyms.PseudonymError, match="no pseudonym") as error:
            lookup(pa.array([12, unknown, None], pa.int64()))
        assert str(unknown) not in str(error.value)
    empty = pseudonyms.PseudonymLookup(pseudonyms.pseudonym_table(KEY_A.encode(), []))
    assert empty(pa.array([None], pa.int64())).to_pylist() == [None]
    with pytest.raises(pseudonyms.PseudonymError):
        empty(pa.array([1], pa.int64()))


def test_a_customer_id_column_of_another_type_stops_the_publish(monkeypatch):
    monkeypatch.setenv(pseudonyms.KEY_ENV, KEY_A)
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.orders (order_id bigint, referrer_customer_id varchar)")
    with pytest.raises(pseudonyms.PseudonymError, match=r"marts\.orders\.referrer_customer_id"):
        pseudonyms.ServingIds.prepare(con, "memory", "marts", ["orders"])
    con.execute("create table marts.clean (id bigint, ref_customer_id integer, customer_id bigint)")
    con.execute("insert into marts.clean values (1, 7, 8), (2, null, 8)")
    served = pseudonyms.ServingIds.prepare(con, "memory", "marts", ["clean"])
    rows = con.execute(served.query("clean", "marts.clean")).fetchall()
    assert rows == sorted(
        [
            (1, expected_pseudonym(KEY_A, 7), expected_pseudonym(KEY_A, 8)),
            (2, None, expected_pseudonym(KEY_A, 8)),
        ],
        key=lambda r: (r[1] is None, r[1] or 0),
    )
