"""The forget list in Python (docs/privacy.md, "Forgetting a customer").

`forget_ids` reads the ids of the list named by the dbt var `forget_customers_path`, as
macros/forget_list.sql reads them for SQL (the build's on-run-start has checked the file).
"""

from __future__ import annotations

import duckdb

#: The ids of the list: whole numbers from 1 to 10^15 (`17850.0` is 17850), read as
#: stg_invoice_lines reads customer_id; the same select as macros/forget_list.sql.
_IDS_SQL = """
select distinct cast(number as bigint)
from (
    select try_cast(trim(customer_id) as double) as number
    from read_csv($path, header = true, all_varchar = true, auto_detect = true,
                  null_padding = true)
)
where number = floor(number) and number between 1 and 1e15
"""


def forget_ids(con: duckdb.DuckDBPyConnection, path: str | None) -> frozenset[int]:
    """The customer ids on the forget list at `path` (none when `path` is empty)."""
    if not path:
        return frozenset()
    return frozenset(r[0] for r in con.execute(_IDS_SQL, {"path": path}).fetchall())
