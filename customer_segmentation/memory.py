"""The build's memory budget: DuckDB's memory_limit, and the sizes the Python models work in.

DuckDB's limit defaults to DUCKDB_SHARE of the machine's memory: the cgroup's limit where one
is set (a container, a CI runner), else the physical memory. `DUCKDB_MEMORY_LIMIT` overrides
it (DuckDB's syntax: `2GB`, `1.5GiB`). The rest is for what DuckDB's limit does not count: the
Python models' arrays (up to about 2 GB at 100M lines, one matrix model at a time:
customer_segmentation.schedule), the interpreter, scikit-learn, implicit, pymc-marketing and
the page cache. At 100M lines the build passed with 2GB at a 3.80 GB peak RSS, DuckDB's limit
lowered to 1.5GB during the matrix models' turns (docs/performance.md); so a quarter keeps an
8 GiB laptop at 2 GiB, and gives a 24 GiB machine 6 GiB, where DuckDB spills less.

The profile applies it through the dbt-duckdb plugin (customer_segmentation/duckdb_plugin.py,
profiles.yml `plugins`), the publish CLI and the bench through `duckdb_memory_limit()`.

Below it, with their reasons, the sizes the Python models work in: each bounds one model's
memory whatever the input's size (their tables do not depend on them; pytest runs each model
with tiny sizes and compares). The SQL side's one such size is int_customer_rfm_snapshots'
`bytes_per_row` (its YAML): its groups of dates follow DuckDB's memory_limit.
"""

from __future__ import annotations

import os
import re
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


# The smallest DUCKDB_MEMORY_LIMIT accepted: below it the bundled sample's build runs out of
# memory (100MB failed in int_order_line_groups); a smaller value is a typo (`10MB`).
SMALLEST_LIMIT_MB = 256
_SIZE = re.compile(r"([0-9]+(?:[.][0-9]+)?) ?([KMGT])(i?)B", re.IGNORECASE)


def size_bytes(value: str) -> int:
    """A size in DuckDB's syntax (2GB, 1.5GiB, 6026MiB) in bytes; 0 when it is not one."""
    size = _SIZE.fullmatch(value.strip())
    if not size:
        return 0
    base = 1024 if size.group(3) else 1000
    return int(float(size.group(1)) * base ** ("KMGT".index(size.group(2).upper()) + 1))


def duckdb_memory_limit(value: str | None = None) -> str:
    """`value`, or `DUCKDB_MEMORY_LIMIT`, when set (a size such as 2GB or 1.5GiB, at least
    256MB, else ValueError naming the variable), else the default from the machine."""
    value = (value or os.environ.get("DUCKDB_MEMORY_LIMIT") or "").strip()
    if not value:
        return default_duckdb_memory_limit()
    if size_bytes(value) < SMALLEST_LIMIT_MB * 1000**2:
        raise ValueError(
            f"DUCKDB_MEMORY_LIMIT must be a size of at least {SMALLEST_LIMIT_MB}MB such as 2GB "
            f'or 1.5GiB, not "{value}"'
        )
    return value


# -- int_product_pairs (customer_segmentation.baskets) ---------------------------------------

# Order-product rows counted at once: about 0.25 GB of working memory per chunk. (At 100M
# lines, alone on the built file: 2.46 GB peak against 2.60 GB with chunks of 5,000,000 rows,
# in the same 82 s.)
ROWS_PER_CHUNK = 2_500_000
# Up to this many products the running total is a dense int32 array (5,000 products: 100 MB):
# adding a chunk's product to it needs no sparse triangle, conversion or merge. On the 3,901
# products of 10M generated lines, pair_counts alone took 7.2 s with the sparse total
# (triangle 1.4 s, conversions 0.5 s).
DENSE_PRODUCTS = 5_000
# Rows DuckDB sorts at once (about 0.3 GB of sort data): larger inputs are read in parts, one
# scan each, split by the hash of the invoice number.
ROWS_PER_SORT = 25_000_000

# -- both matrix readers (baskets, recommend) ----------------------------------------------

# Rows fetched from DuckDB at once.
BATCH_ROWS = 1_000_000

# -- recommendation_evaluation, customer_recommendations (customer_segmentation.recommend) ---

# Customers scored at once: a dense chunk x products block of float64 (2,000 x 4,000 = 64 MB).
# The size is fixed: BLAS's matrix product (ALS scores) can differ in the last bit with the
# number of rows it is given, so it must not follow the number of cores. Blocks above 32 MB
# (glibc's largest mmap threshold) go back to the system when freed; smaller ones can stay in
# the allocator of the thread that freed them. The evaluation ranks up to
# EVALUATION_CHUNK_WORKERS chunks side by side. customer_recommendations ranks one at a time:
# side by side (chunks of 1,000), alone on the built 100M-line file, it took 36.0 s instead of
# 59.3 s but 2.96 GB instead of 2.86 GB (2.99 GB with chunks of 500).
CUSTOMERS_PER_CHUNK = 2_000
EVALUATION_CHUNK_WORKERS = 2
# Order-product rows DuckDB aggregates and sorts at once while the training matrix is built:
# above it the customers are read in ranges of ids holding about this many rows each, one scan
# per range, so that DuckDB's share stays bounded. At 100M lines customer_recommendations alone
# peaked at 1.84 GB instead of 2.96 GB while the matrix was read, with the same 7,882,520 rows.
ROWS_PER_PART = 20_000_000

# -- the recommenders (customer_segmentation.recommenders) ----------------------------------

# item_item keeps every product's similarities (a dense products x products matrix) up to this
# many products, and only its NEIGHBOURS most similar products above it.
DENSE_SIMILARITY_PRODUCTS = 5_000
# EASE solves a dense products x products system for at most this many products (the most
# popular; the rest score 0): products^2 x 8 bytes per matrix, three at once (365 MB at 3,900
# products), and products^3 / 3 flops (1.8 s at 3,900 products on one core).
EASE_PRODUCTS = 5_000
# Matrix entries (customer x product) converted at once when a whole-matrix product is taken
# in blocks of customers (about 100 MB of working memory).
ENTRIES_PER_BLOCK = 4_000_000

# -- customer_segment_history (customer_segmentation.segmentation.history) ------------------

# Snapshot rows read, standardised and assigned at a time.
ASSIGN_CHUNK_ROWS = 1_000_000
