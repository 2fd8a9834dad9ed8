"""One BLAS/OpenMP thread for every fit, so the same input gives the identical table."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

# What each step's single-threaded block uses (see `single_threaded`).
KMEANS_MODULES = ("sklearn.cluster",)
SELECTION_MODULES = (
    "sklearn.cluster",
    "sklearn.mixture",
    "sklearn.metrics",
    "scipy.cluster.hierarchy",
    "scipy.spatial.distance",
)
SILHOUETTE_MODULES = ("scipy.spatial.distance",)


# dbt runs Python models side by side: two of its threads importing scikit-learn for the
# first time at once can see it half-initialised ("cannot import name 'clone' from partially
# initialized module 'sklearn.base'", seen in a build of five customers). Every first import of
# the fitting libraries goes through `import_modules`, one thread at a time.
_IMPORT_LOCK = threading.RLock()


def import_modules(*modules: str) -> None:
    """Import `modules` while holding the package's import lock (see _IMPORT_LOCK)."""
    with _IMPORT_LOCK:
        for module in modules:
            importlib.import_module(module)


@contextmanager
def single_threaded(*modules: str) -> Iterator[None]:
    """One OpenMP/BLAS thread: scikit-learn's threaded KMeans reduction is order-dependent.

    threadpoolctl limits only the thread pools of libraries already loaded, so the modules the
    block will use are imported first (scikit-learn loads its OpenMP runtime, SciPy its own
    OpenBLAS). The limits are set on every entry and never restored. dbt runs Python models
    side by side in its worker threads; OpenBLAS's limit is process-wide and threadpoolctl 3.8
    lets only the first thread that set it set it again (the others' calls are silently
    ignored), OpenMP's is per thread. Restoring the limits when blocks ended gave OpenBLAS its
    threads back while another worker's block still ran: segment silhouettes that differed in
    the last bits from build to build. Nothing else in the dbt process uses BLAS or OpenMP.
    """
    import_modules(*modules)
    threadpool_limits(limits=1)
    yield


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side(
    tasks: Sequence[Callable[[], Any]], *modules: str, max_workers: int | None = None
) -> list[Any]:
    """Run independent calls on the usable cores, each in a thread with one BLAS/OpenMP
    thread (`single_threaded` entered in every worker): each call computes exactly what it
    computes alone, so the results, returned in the order of `tasks`, do not depend on the
    number of cores or on which call ends first. scikit-learn's KMeans and SciPy release the
    GIL in their compiled loops, so independent fits use the cores the one-thread limit idles.
    `max_workers` bounds the calls in flight (their memory adds up).
    """
    with single_threaded(*modules):
        workers = min(usable_cores(), len(tasks), max_workers or len(tasks))
        if workers <= 1:
            return [task() for task in tasks]

    def one_thread() -> None:
        with single_threaded(*modules):
            pass

    with ThreadPoolExecutor(max_workers=workers, initializer=one_thread) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [future.result() for future in futures]
