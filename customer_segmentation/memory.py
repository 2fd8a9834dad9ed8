"""The build's memory budget: DuckDB's memory_limit, and the sizes the Python models work in.

DuckDB's limit defaults to DUCKDB_SHARE of the machine's memory: the cgroup's limit where one
is set (a container, a CI runner), else the physical memory. `DUCKDB_MEMORY_LIMIT` overrides
it (DuckDB's syntax: `2GB`, `1.5GiB`). The rest is for what DuckDB's limit does not count: the
Python models' arrays (up to about 2 GB at 100M lines, one matrix model at a time:
customer_segmentation.schedule), the interpreter, scikit-learn, implicit, pymc-marketing and
the page cache. At 100M lines the build passed with 2GB at a 3.9-4.0 GB peak RSS
(docs/performance.md); so a quarter keeps an 8 GiB laptop at 2 GiB, and gives a 24 GiB
machine 6 GiB, where DuckDB spills less.

The profile applies it through the dbt-duckdb plugin below (profiles.yml, `plugins`), the
publish CLI and the bench through `duckdb_memory_limit()`.
"""

from __future__ import annotations

import os
from pathlib import Path

DUCKDB_SHARE = 0.25
# Below this DuckDB cannot run the build's largest aggregations at any input size.
DUCKDB_FLOOR_BYTES = 1 << 30
# cgroup v2, then v1: the memory this process may use, where a limit is set
CGROUP_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def physical_memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def cgroup_limit_bytes(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int | None:
    """This process's cgroup memory limit, or None where none is set ('max', or v1's
    'unlimited' value, larger than any real memory)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
        return None
    return None


def machine_memory_bytes() -> int:
    """The memory the build may use: the cgroup limit where one is set and smaller, else the
    physical memory."""
    physical = physical_memory_bytes()
    limit = cgroup_limit_bytes()
    return min(physical, limit) if limit else physical


def default_duckdb_memory_limit(machine_bytes: int | None = None) -> str:
    """DUCKDB_SHARE of the machine's memory (at least DUCKDB_FLOOR_BYTES), in MiB."""
    machine = machine_memory_bytes() if machine_bytes is None else machine_bytes
    share = max(int(machine * DUCKDB_SHARE), DUCKDB_FLOOR_BYTES)
    return f"{share >> 20}MiB"


def duckdb_memory_limit() -> str:
    """`DUCKDB_MEMORY_LIMIT` when set, else the default from the machine."""
    return os.environ.get("DUCKDB_MEMORY_LIMIT") or default_duckdb_memory_limit()
