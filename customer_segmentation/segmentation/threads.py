"""One BLAS/OpenMP thread for every fit, so the same input gives the identical table."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import OpenBLASController, threadpool_limits

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


_THREAD_LIMIT_LOCK = threading.Lock()
_thread_limiters: list = []  # of the blocks now running, restored when the last one ends
_thread_limit_users = 0


@contextmanager
def single_threaded(*modules: str) -> Iterator[None]:
    """One OpenMP/BLAS thread: scikit-learn's threaded KMeans reduction is order-dependent.

    threadpoolctl limits only the thread pools of libraries already loaded when the block
    starts, so the modules the block will use are imported first: scikit-learn loads its
    OpenMP runtime, SciPy its own OpenBLAS. (Imported lazily inside the block, KMeans ran on
    every core the first time and gave a table that differed in the last bits from the
    second run's.) The limits are process-wide and dbt runs Python models side by side in
    threads, so they are counted: they are restored only when the last block ends. (Each
    block restoring its own let customer_value_tiers, ending first, give the selection's
    remaining BLAS calls their threads back: silhouettes differing in the last bits.)
    OpenBLAS's limit is process-wide, and threadpoolctl lets only the first thread that set it
    set it again; the others' limits were silently ignored, so a block in another dbt thread
    ran BLAS on every core. Under the lock, the thread that sets or restores takes control.
    """
    global _thread_limit_users
    for module in modules:
        importlib.import_module(module)
    with _THREAD_LIMIT_LOCK:
        # limits too the libraries loaded since an earlier block began
        _take_openblas_control()
        _thread_limiters.append(threadpool_limits(limits=1))
        _thread_limit_users += 1
    try:
        yield
    finally:
        with _THREAD_LIMIT_LOCK:
            _thread_limit_users -= 1
            if _thread_limit_users == 0:
                _take_openblas_control()
                while _thread_limiters:
                    _thread_limiters.pop().restore_original_limits()
                _take_openblas_control()


def _take_openblas_control() -> None:
    """Let the calling thread set OpenBLAS's process-wide limit (threadpoolctl 3.8 ignores
    the limits of every thread but the first one that set it); called under the lock."""
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
