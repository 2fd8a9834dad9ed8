"""The declared schedule: the dbt models that must not run side by side, and the one lock
that keeps them apart.

dbt runs independent models at once (`DBT_THREADS`) in one process. A SQL model's memory is
DuckDB's, within its one `memory_limit`, spilled to disk above it, so SQL models may meet. A
Python model's arrays are not: they come on top of DuckDB's limit, and two such models side by
side add up. The models below hold a customer x product or product x product matrix in Python
memory; each runs its work inside `take_turn(<its name>)`, so at most one of them holds its
matrix at a time, whatever order dbt starts them in. The lineage stays data lineage: no model
refs another to wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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

_TURN = threading.Lock()


@dataclass(frozen=True)
class Turn:
    """One model's turn: when it started and ended (time.monotonic seconds)."""

    model: str
    started: float
    ended: float


_turns: list[Turn] = []


@contextmanager
def take_turn(model: str) -> Iterator[None]:
    """Run the block while no other model of TAKE_TURNS runs its own; `model` must be listed."""
    if model not in TAKE_TURNS:
        raise ValueError(f"{model!r} is not in schedule.TAKE_TURNS: declare it there, with why")
    with _TURN:
        started = time.monotonic()
        try:
            yield
        finally:
            _turns.append(Turn(model, started, time.monotonic()))


def turns() -> list[Turn]:
    """The turns taken in this process, in the order they ended."""
    return list(_turns)
