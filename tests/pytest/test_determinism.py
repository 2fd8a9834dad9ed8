"""The same input and settings give the same tables, to the row and to the last bit.

The session's sample build runs dbt on two threads (the default), so Python models run side
by side in one process; this build runs everything on one thread (one dbt thread, one BLAS and
OpenMP thread from process start). Every mart must be identical: EXCEPT ALL both ways, so a
float differing in its last bit fails.
"""

from __future__ import annotations

import duckdb
from conftest import run_dbt

# Wall-clock measurements, not results: left out of the comparison.
TIMING_COLUMNS = {"clv_model": "fit_seconds"}


def test_every_mart_is_identical_on_one_thread_and_on_two(sample_build, tmp_path):
    single = run_dbt(
        tmp_path,
        ["build", "--exclude-resource-type", "unit_test"],
        env={
            "DBT_THREADS": "1",
            "DUCKDB_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        },
    )
    assert single.returncode == 0, single.output[-4000:]
    with duckdb.connect() as con:
        con.execute(f"attach '{sample_build.duckdb_path}' as two (read_only)")
        con.execute(f"attach '{single.duckdb_path}' as one (read_only)")
        marts = [
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() "
                "where database_name = 'two' and schema_name = 'marts' order by 1"
            ).fetchall()
        ]
        assert len(marts) >= 15
        differing = {}
        for mart in marts:
            counts = [
                con.execute(
                    f"select count(*) from (select {columns(mart)} from {a}.marts.{mart} "
                    f"except all select {columns(mart)} from {b}.marts.{mart})"
                ).fetchone()[0]
                for a, b in (("two", "one"), ("one", "two"))
            ]
            if counts != [0, 0]:
                differing[mart] = counts
        assert not differing, f"rows only in the two-thread, one-thread build: {differing}"


def columns(mart: str) -> str:
    timing = TIMING_COLUMNS.get(mart)
    return f"* exclude ({timing})" if timing else "*"
