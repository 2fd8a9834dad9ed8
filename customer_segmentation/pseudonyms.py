"""Pseudonymous customer ids in the serving file, keyed by `SERVING_CUSTOMER_KEY`.

With the variable set, publish writes in every customer id column of every mart the keyed hash
of the id instead of the id: HMAC-SHA-256 with the key over the id in decimal ASCII (`17850`,
`-3`), its first 63 bits as a BIGINT, positive, or negative for the negative synthetic id of a
guest (`guest_policy: per_invoice`). The same id gets the same pseudonym in every table and in
every publish with the same key, so joins work; the build file keeps the real ids.

The mapping is computed here, in Python, from the distinct ids of the marts; the copy looks each
id up in it through a scalar function registered on the publishing connection, so every row
stays where the plain copy puts it. The key never enters SQL text, a table, a log or an error
message.
What counts as a customer id column, and what the pseudonyms do not protect against:
docs/privacy.md.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from duckdb.sqltypes import BIGINT

from customer_segmentation.sql_text import quote_ident, quote_literal

KEY_ENV = "SERVING_CUSTOMER_KEY"
MIN_KEY_CHARS = 16
#: A column holds a customer id when it is named `customer_id` or ends in `_customer_id`.
ID_COLUMN = "customer_id"
#: The mart of rejected rows: its values are text as read, not typed.
RAW_TABLE = "quarantined_transactions"
RAW_FIELDS = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "unit_price",
    "invoiced_at",
    "customer_id",
    "country",
)
#: Rows whose fields may not be where the header says (a broken quote, an extra or a missing
#: field): a customer id can sit in any of their raw fields, which are withheld.
DISPLACED_FIELD_REASONS = ("unparseable_row", "too_many_fields", "missing_required_field")
#: Tables with these columns (the lines) keep the order in which the build gives them, as
#: without the key: that of the rows read, not of the ids. Every other table with a customer id
#: is written ordered by its pseudonyms, since the build stores many of them ordered by the id.
INPUT_ORDER_COLUMNS = ("source_file", "source_row")
#: The scalar function the copy calls, registered only while a publish copies.
FUNCTION = "__customer_pseudonym"
#: Column types whose every value is a BIGINT.
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}

COLUMN_NOTE = (
    " In this serving file: a pseudonym, HMAC-SHA-256 of the id under SERVING_CUSTOMER_KEY, "
    "the same in every table (docs/privacy.md)."
)
RAW_ID_NOTE = (
    " In this serving file: the pseudonym of the id, as text; null when the text is not a "
    "valid id (docs/privacy.md)."
)
RAW_TABLE_NOTE = (
    " In this serving file, customer_id holds pseudonyms, and the raw fields of rows rejected "
    f"as {', '.join(DISPLACED_FIELD_REASONS)} are withheld (null): an id may sit in any of them."
)


class PseudonymError(RuntimeError):
    """Pseudonyms cannot be served; the message names no id and never shows the key."""


def serving_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key from `SERVING_CUSTOMER_KEY` as UTF-8 bytes; None when the variable is unset.

    A variable that is set but shorter than 16 characters (empty included) is an error: a
    pseudonymous publish must not quietly become a publish of the real ids.
    """
    value = (os.environ if environ is None else environ).get(KEY_ENV)
    if value is None:
        return None
    if len(value) < MIN_KEY_CHARS:
        raise PseudonymError(
            f"{KEY_ENV} must be at least {MIN_KEY_CHARS} characters long: it is set, but shorter "
            "(unset it to serve the real customer ids)"
        )
    return value.encode("utf-8")


def pseudonym(key: bytes, customer_id: int) -> int:
    """The pseudonym of one id: the first 63 bits of HMAC-SHA-256(key, decimal id), signed
    like the id (guests' synthetic ids are negative)."""
    digest = hmac.digest(key, b"%d" % customer_id, "sha256")
    value = int.from_bytes(digest[:8], "big") >> 1
    return -value if customer_id < 0 else value


class PseudonymLookup:
    """The pseudonyms of a set of ids, looked up a column at a time (a DuckDB Arrow function)."""

    def __init__(self, mapping: pa.Table) -> None:
        self._ids = mapping.column("customer_id").to_numpy()
        self._pseudonyms = mapping.column("pseudonym").to_numpy()

    def __call__(self, ids: pa.Array) -> pa.Array:
        valid = ids.is_valid().to_numpy(zero_copy_only=False)
        values = ids.fill_null(0).to_numpy()[valid]
        at = np.searchsorted(self._ids, values)
        if (at == len(self._ids)).any() or (self._ids[at] != values).any():
            # The lookup comes from these very columns; if an id had no pseudonym, the publish
            # fails rather than serve the id.
            raise PseudonymError("a customer id has no pseudonym; nothing was published")
        found = np.zeros(len(valid), np.int64)
        found[valid] = self._pseudonyms[at]
        return pa.array(found, pa.int64(), mask=~valid)


def pseudonym_table(key: bytes, ids: Iterable[int]) -> pa.Table:
    """(customer_id, pseudonym) for each distinct id, sorted by id.

    Raises `PseudonymError`, naming no id, if two ids get one pseudonym or one gets 0. With n
    ids the chance of that is about n^2 / 2^64 (5e-8 at a million ids).
    """
    unique = sorted(set(ids))
    values = [pseudonym(key, customer_id) for customer_id in unique]
    if len(set(values)) != len(values) or 0 in values:
        raise PseudonymError(
            f"two of the {len(unique)} customer ids get the same pseudonym under "
            f"{KEY_ENV} (or one gets 0); publish with another key"
        )
    return pa.table(
        {
            "customer_id": pa.array(unique, pa.int64()),
            "pseudonym": pa.array(values, pa.int64()),
        }
    )


def is_id_column(name: str) -> bool:
    return name == ID_COLUMN or name.endswith("_" + ID_COLUMN)


def parsed_id(expression: str) -> str:
    """SQL: a customer id read from text as stg_invoice_lines reads it (a whole number from 1
    to 10^15, `17850` or `17850.0`), else null."""
    number = f"try_cast(trim({expression}) as double)"
    return (
        f"case when {number} = floor({number}) and {number} between 1 and 1e15 "
        f"then cast({number} as bigint) end"
    )


@dataclass
class _Table:
    name: str
    columns: list[str]
    id_columns: list[str] = field(default_factory=list)

    @property
    def is_raw(self) -> bool:
        return self.name == RAW_TABLE

    @property
    def keeps_input_order(self) -> bool:
        return all(c in self.columns for c in INPUT_ORDER_COLUMNS)


class ServingIds:
    """How publish copies each mart: as it is, or with pseudonyms (`SERVING_CUSTOMER_KEY`)."""

    def __init__(self, key: bytes | None, tables: Mapping[str, _Table]) -> None:
        self._key = key
        self._tables = dict(tables)
        self._registered = False

    @property
    def is_pseudonymous(self) -> bool:
        return self._key is not None

    @classmethod
    def prepare(cls, con: Any, catalog: str, schema: str, marts: Sequence[str]) -> ServingIds:
        """Read the key, find the customer id columns of `marts` in `catalog.schema`, and (with
        a key) register the lookup of their distinct ids' pseudonyms on `con`."""
        key = serving_key()
        if key is None:
            return cls(None, {})
        rows = con.execute(
            "select table_name, column_name, data_type from duckdb_columns() "
            "where database_name = ? and schema_name = ? order by table_name, column_index",
            [catalog, schema],
        ).fetchall()
        tables: dict[str, _Table] = {}
        wanted = set(marts)
        for table, column, data_type in rows:
            if table not in wanted:
                continue
            entry = tables.setdefault(table, _Table(table, []))
            entry.columns.append(column)
            if not is_id_column(column):
                continue
            raw_text = table == RAW_TABLE and column == ID_COLUMN and data_type == "VARCHAR"
            if data_type not in INTEGER_TYPES and not raw_text:
                raise PseudonymError(
                    f"{schema}.{table}.{column} is a customer id column of type {data_type}: "
                    "publish pseudonymises whole-number ids (and the text of "
                    f"{RAW_TABLE}.{ID_COLUMN}); make it a bigint"
                )
            entry.id_columns.append(column)
        serving = cls(key, tables)
        serving._register(con, catalog, schema)
        return serving

    def _id_sources(self, catalog: str, schema: str) -> list[str]:
        selects = []
        for table in self._tables.values():
            source = f"{quote_ident(catalog)}.{quote_ident(schema)}.{quote_ident(table.name)}"
            for column in table.id_columns:
                value = (
                    parsed_id(quote_ident(column))
                    if table.is_raw
                    else f"cast({quote_ident(column)} as bigint)"
                )
                selects.append(f"select distinct {value} as customer_id from {source}")
        return selects

    def _register(self, con: Any, catalog: str, schema: str) -> None:
        selects = self._id_sources(catalog, schema)
        ids: list[int] = []
        if selects:
            union = "\nunion\n".join(selects)
            found = con.execute(
                f"select customer_id from ({union}) where customer_id is not null"
            ).fetchnumpy()["customer_id"]
            ids = found.tolist()
        lookup = PseudonymLookup(pseudonym_table(self._key, ids))  # type: ignore[arg-type]
        con.create_function(
            FUNCTION, lookup, [BIGINT], BIGINT, type="arrow", null_handling="special"
        )
        self._registered = True

    def close(self, con: Any) -> None:
        """Remove the lookup (it holds the real ids beside their pseudonyms)."""
        if self._registered:
            con.remove_function(FUNCTION)
            self._registered = False

    def query(self, name: str, source: str) -> str:
        """The query that gives mart `name` (at `source`, a quoted relation) as served."""
        table = self._tables.get(name)
        if table is None or not table.id_columns:
            return f"from {source}"
        replaced: list[str] = []
        for column in table.id_columns:
            value = parsed_id(quote_ident(column)) if table.is_raw else quote_ident(column)
            pseudo = f"{FUNCTION}({value})"
            if table.is_raw:
                pseudo = f"cast({pseudo} as varchar)"
            replaced.append(f"{pseudo} as {quote_ident(column)}")
        if table.is_raw:
            displaced = ", ".join(quote_literal(r) for r in DISPLACED_FIELD_REASONS)
            for column in RAW_FIELDS:
                if column in table.columns and column not in table.id_columns:
                    replaced.append(
                        f"case when reject_reason in ({displaced}) then null "
                        f"else {quote_ident(column)} end as {quote_ident(column)}"
                    )
        select = f"select * replace ({', '.join(replaced)}) from {source}"
        if table.keeps_input_order:
            return select
        # ids first, then every other column: a stored order that owes nothing to the ids
        order = table.id_columns + [c for c in table.columns if c not in table.id_columns]
        positions = [table.columns.index(c) + 1 for c in order]
        return f"{select} order by {', '.join(map(str, positions))}"

    def annotate(self, con: Any, catalog: str, schema: str) -> None:
        """Add to the descriptions copied into `catalog.schema` a note on each pseudonymous
        column (and on the quarantine's withheld fields), so BI tools say what they show."""
        target = f"{quote_ident(catalog)}.{quote_ident(schema)}"
        for table in self._tables.values():
            if not table.id_columns:
                continue
            relation = f"{target}.{quote_ident(table.name)}"
            comments = dict(
                con.execute(
                    "select column_name, comment from duckdb_columns() where database_name = ? "
                    "and schema_name = ? and table_name = ?",
                    [catalog, schema, table.name],
                ).fetchall()
            )
            for column in table.id_columns:
                note = RAW_ID_NOTE if table.is_raw else COLUMN_NOTE
                text = ((comments.get(column) or "") + note).strip()
                con.execute(
                    f"comment on column {relation}.{quote_ident(column)} is {quote_literal(text)}"
                )
            if table.is_raw:
                (current,) = con.execute(
                    "select comment from duckdb_tables() where database_name = ? "
                    "and schema_name = ? and table_name = ?",
                    [catalog, schema, table.name],
                ).fetchone()
                text = ((current or "") + RAW_TABLE_NOTE).strip()
                con.execute(f"comment on table {relation} is {quote_literal(text)}")


@contextmanager
def serving_ids(con: Any, catalog: str, schema: str, marts: Sequence[str]) -> Iterator[ServingIds]:
    """`ServingIds.prepare`, with the mapping table dropped afterwards whatever happens."""
    served = ServingIds(None, {})
    try:
        served = ServingIds.prepare(con, catalog, schema, marts)
        yield served
    finally:
        served.close(con)
