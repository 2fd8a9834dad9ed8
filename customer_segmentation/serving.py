"""The serving file BI tools and analysts open, and the one safe way to open it.

`dbt build` writes the build file (`DUCKDB_PATH`); `customer_segmentation.publish` copies its
marts into the serving file (`SERVING_DUCKDB_PATH`, default `warehouse/serving.duckdb`) with an
atomic rename. Readers only ever open the serving file, read-only, so they never block a build.

`connect_readonly` opens it the way a BI user should: read-only, with every access outside the
database file switched off and the configuration locked, so a query cannot read local files
(`read_csv('/etc/passwd')`), attach other databases, install or load extensions, write files
with `COPY ... TO`, or `SET` its way out of these limits. The same settings, spelled for each BI
tool, are in docs/serving.md, checked by tests/pytest/test_serving_recipes.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlencode

import duckdb

DEFAULT_SERVING_PATH = "warehouse/serving.duckdb"
SERVING_PATH_ENV = "SERVING_DUCKDB_PATH"

#: The DuckDB settings of a safe reader, in the order they are documented. DuckDB accepts them
#: at connect time; `lock_configuration` comes last so that nothing can change the others.
SAFE_READER_CONFIG: dict[str, str] = {
    "access_mode": "read_only",
    "enable_external_access": "false",
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
    "allow_unsigned_extensions": "false",
    "lock_configuration": "true",
}


def serving_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The serving file: `path` if given, else `$SERVING_DUCKDB_PATH`, else the default."""
    return Path(path or os.environ.get(SERVING_PATH_ENV) or DEFAULT_SERVING_PATH)


def connect_readonly(path: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """Open the serving file read-only with external access off and the configuration locked.

    Raises `FileNotFoundError` when there is no serving file yet (nothing was published):
    DuckDB would otherwise fail with a less helpful message, or in read-write mode create an
    empty file.
    """
    target = serving_path(path)
    if not target.is_file():
        raise FileNotFoundError(
            f"no serving file at {target}: run `make build` (a `dbt build` whose every model "
            "and test passes publishes) first"
        )
    config = {key: value for key, value in SAFE_READER_CONFIG.items() if key != "access_mode"}
    return duckdb.connect(str(target), read_only=True, config=config)


def sqlalchemy_url(path: str | os.PathLike[str] | None = None) -> str:
    """The duckdb-engine (SQLAlchemy) URL of a safe reader, as Superset takes it.

    duckdb-engine passes the URL's query parameters to DuckDB as settings at connect time.
    """
    target = serving_path(path).resolve()
    return f"duckdb:///{target.as_posix()}?{urlencode(SAFE_READER_CONFIG)}"


def jdbc_url(path: str | os.PathLike[str] | None = None) -> str:
    """The DuckDB JDBC URL of a safe reader (DBeaver, Metabase's driver is built on it).

    The JDBC driver reads settings from `;key=value` pairs after the path.
    """
    target = serving_path(path).resolve()
    options = "".join(f";{key}={value}" for key, value in SAFE_READER_CONFIG.items())
    return f"jdbc:duckdb:{target.as_posix()}{options}"


def odbc_connection_string(path: str | os.PathLike[str] | None = None) -> str:
    """The DuckDB ODBC connection string of a safe reader (Tableau, Power BI, Excel)."""
    target = serving_path(path).resolve()
    options = "".join(f"{key}={value};" for key, value in SAFE_READER_CONFIG.items())
    return f"Driver=DuckDB Driver;Database={target};{options}"


def main() -> None:
    """Print the connection settings of the serving file for each kind of client."""
    print(f"serving file: {serving_path().resolve()}")
    print(f"SQLAlchemy / Superset: {sqlalchemy_url()}")
    print(f"JDBC / DBeaver:        {jdbc_url()}")
    print(f"ODBC / Tableau, Power BI: {odbc_connection_string()}")


if __name__ == "__main__":
    main()
