"""What a dbt Python model may reuse from the build before: its own previous table.

The staging models that read input files (`stg_input_files`, `stg_excel_invoice_lines`) keep
what they found per file and, on the next build, take it again for a file that has not
changed instead of reading it again (docs/refresh.md). `dbt build --full-refresh` reads every
file again.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def is_full_refresh() -> bool:
    """True when the dbt command runs with --full-refresh (the model runs inside dbt)."""
    from dbt.flags import get_flags

    return bool(getattr(get_flags(), "FULL_REFRESH", False))


def previous_table(session: Any, this: Any) -> pa.Table | None:
    """The model's table as the last build left it, or None: on the first build, with
    --full-refresh, or when it is not a table of this database."""
    if is_full_refresh():
        return None
    found = session.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? "
        "and table_name = ?",
        [this.database, this.schema, this.identifier],
    ).fetchall()
    if not found[0][0]:
        return None
    return session.sql(f"select * from {this!r}").to_arrow_table()
