"""Quoting for DuckDB SQL text where a value cannot be a parameter (identifiers, ATTACH,
COMMENT ON)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A DuckDB string literal (for statements that take no parameters: ATTACH, COMMENT)."""
    return "'" + text.replace("'", "''") + "'"
