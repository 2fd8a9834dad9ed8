"""The DuckDB memory limit's default comes from the machine; DUCKDB_MEMORY_LIMIT overrides it."""

from __future__ import annotations

import duckdb
from conftest import run_dbt

from customer_segmentation import memory


def test_a_quarter_of_the_machine_with_a_floor():
    assert memory.default_duckdb_memory_limit(24 << 30) == "6144MiB"
    assert memory.default_duckdb_memory_limit(8 << 30) == "2048MiB"
    assert memory.default_duckdb_memory_limit(2 << 30) == "1024MiB"


def test_the_cgroup_limit_where_one_is_set(tmp_path):
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    assert memory.cgroup_limit_bytes((v2, v1)) is None  # neither file: no cgroup limit
    v1.write_text(str(4 << 30) + "\n")
    assert memory.cgroup_limit_bytes((v2, v1)) == 4 << 30
    v1.write_text("9223372036854771712\n")  # v1's "unlimited"
    assert memory.cgroup_limit_bytes((v2, v1)) is None
    v2.write_text("max\n")
    assert memory.cgroup_limit_bytes((v2, v1)) is None
    v2.write_text(str(3 << 30))
    assert memory.cgroup_limit_bytes((v2, v1)) == 3 << 30


def test_the_machine_is_the_smaller_of_physical_memory_and_cgroup(monkeypatch):
    monkeypatch.setattr(memory, "physical_memory_bytes", lambda: 24 << 30)
    monkeypatch.setattr(memory, "cgroup_limit_bytes", lambda: 8 << 30)
    assert memory.machine_memory_bytes() == 8 << 30
    monkeypatch.setattr(memory, "cgroup_limit_bytes", lambda: None)
    assert memory.machine_memory_bytes() == 24 << 30


def test_the_environment_overrides_and_duckdb_reads_it(monkeypatch):
    monkeypatch.setenv("DUCKDB_MEMORY_LIMIT", "1.5GB")
    assert memory.duckdb_memory_limit() == "1.5GB"
    monkeypatch.delenv("DUCKDB_MEMORY_LIMIT")
    monkeypatch.setattr(memory, "machine_memory_bytes", lambda: 8 << 30)
    limit = memory.duckdb_memory_limit()
    with duckdb.connect(config={"memory_limit": limit}) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "2.0 GiB"


def test_dbt_opens_the_build_file_with_it(tmp_path):
    """The profile's plugin sets DuckDB's memory_limit: the variable when set, else the default
    from the machine (an empty variable counts as unset)."""

    def dbt_memory_limit(value: str) -> str:
        result = run_dbt(
            tmp_path / (value or "default"),
            ["show", "--inline", "select current_setting('memory_limit') as limit_now"],
            env={"DUCKDB_MEMORY_LIMIT": value},
        )
        assert result.returncode == 0, result.output[-2000:]
        return result.output

    with duckdb.connect(config={"memory_limit": memory.default_duckdb_memory_limit()}) as con:
        default = con.execute("select current_setting('memory_limit')").fetchone()[0]
    assert f"| {default} " in dbt_memory_limit("")
    assert "| 1.0 GiB " in dbt_memory_limit("1GiB")
