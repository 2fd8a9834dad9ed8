"""The declared schedule: the dbt models that must not run side by side, and the one lock
that keeps them apart.

dbt runs independent models at once (`DBT_THREADS`) in one process. A SQL model's memory is
DuckDB's, within its one `memory_limit`, spilled to disk above it, so SQL models may meet. A
Python model's arrays are not: they come on top of DuckDB's limit, and two such models side by
side add up. The models below hold a customer x product or product x product matrix in Python
memory; each runs its work inside `take_turn(<its name>, session)`, so at most one of them
holds its matrix at a time, whatever order dbt starts them in, and DuckDB's memory_limit is
TURN_DUCKDB_SHARE of the build's while it does. The lineage stays data lineage: no model refs
another to wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from customer_segmentation.memory import duckdb_memory_limit, size_bytes

# model -> why it must not run beside another model of this list (peaks alone, 100M lines)
TAKE_TURNS: dict[str, str] = {
    "int_product_pairs": (
        "counts pairs in a products x products array from order x product chunks: "
        "2.1 GB peak alone at 100M lines"
    ),
    "recommendation_evaluation": (
        "trains four recommenders on the customer x product matrix of the training period: "
        "1.8 GB peak alone at 100M lines"
    ),
    "customer_recommendations": (
        "reads the customer x product matrix and scores every customer: "
        "1.8 GB peak alone at 100M lines"
    ),
}

# DuckDB's memory_limit during a turn, as a share of the build's (DUCKDB_MEMORY_LIMIT or the
# machine's default). DuckDB keeps table blocks cached up to its limit and gives them back only
# to stay under it; the matrix arrays come on top. With DUCKDB_MEMORY_LIMIT=2GB and the whole
# limit during the turns, 100M-line builds peaked at 4.09-4.37 GB (DuckDB ~2.0 GB, the
# interpreter and its libraries ~0.5 GB, a matrix model's arrays 1.5-1.8 GB); with this share,
# at 3.80 GB.
TURN_DUCKDB_SHARE = 0.75

_TURN = threading.Lock()


@dataclass(frozen=True)
class Turn:
    """One model's turn: when it started and ended (time.monotonic seconds)."""

    model: str
    started: float
    ended: float


_turns: list[Turn] = []


@contextmanager
def take_turn(model: str, session) -> Iterator[None]:
    """Run the block while no other model of TAKE_TURNS runs its own; `model` must be listed.
    DuckDB's memory_limit (one for the whole build file, set through the model's `session`) is
    TURN_DUCKDB_SHARE of the build's during the block, and the build's again after it."""
    if model not in TAKE_TURNS:
        raise ValueError(f"{model!r} is not in schedule.TAKE_TURNS: declare it there, with why")
    with _TURN:
        started = time.monotonic()
        build_limit = duckdb_memory_limit()
        turn_bytes = int(size_bytes(build_limit) * TURN_DUCKDB_SHARE)
        session.execute(f"set memory_limit = '{turn_bytes >> 20}MiB'")
        try:
            yield
        finally:
            session.execute(f"set memory_limit = '{build_limit}'")
            _turns.append(Turn(model, started, time.monotonic()))


def turns() -> list[Turn]:
    """The turns taken in this process, in the order they ended."""
    return list(_turns)
