"""Thread counts: resolving ``n_jobs`` and setting (then restoring) the libraries' pools."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._validation import check_int

__all__ = ["MAX_THREADS", "available_cpus", "resolve_n_jobs", "thread_limits"]

#: The largest thread count ``n_jobs`` may ask for.
MAX_THREADS = 1 << 14


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: Any) -> int:
    """Turn an ``n_jobs`` argument into a thread count.

    ``None`` or ``-1`` means every available CPU; ``-2`` all but one, and so on (joblib's
    convention); a positive integer is used as given. 0 is an error.
    """
    cpus = available_cpus()
    if n_jobs is None:
        return cpus
    n = check_int(n_jobs, "n_jobs")
    if n == 0:
        raise ValueError("n_jobs=0 is not a thread count; use None or -1 for all CPUs, or n >= 1.")
    if n < 0:
        return max(1, cpus + 1 + n)
    if n > MAX_THREADS:
        raise ValueError(
            f"n_jobs={n} threads is more than datagauge runs ({MAX_THREADS} at most); use "
            "None or -1 for all CPUs, or a smaller count."
        )
    return n


@contextmanager
def thread_limits(n_threads: int, *, torch: bool = False) -> Iterator[int]:
    """Set FAISS's OpenMP and Numba's thread counts for the block, then restore them.

    With ``torch=True`` torch's intra-op thread count is set too (small models train faster
    on one thread than on several that wait for each other). Only libraries already imported
    are touched, so entering the context never imports FAISS, Numba or torch. The previous
    values are restored even when the block raises. A library that another thread is still
    importing (in ``sys.modules`` but not yet initialised) is left alone.
    """
    restore: list[tuple[Any, int]] = []
    try:
        torch_module = _imported("torch", "set_num_threads", "get_num_threads") if torch else None
        if torch_module is not None:
            restore.append((torch_module.set_num_threads, torch_module.get_num_threads()))
            torch_module.set_num_threads(n_threads)
        faiss = _imported("faiss", "omp_set_num_threads", "omp_get_max_threads")
        if faiss is not None:
            restore.append((faiss.omp_set_num_threads, faiss.omp_get_max_threads()))
            faiss.omp_set_num_threads(n_threads)
        numba = _imported("numba", "set_num_threads", "get_num_threads", "config")
        if numba is not None:
            restore.append((numba.set_num_threads, numba.get_num_threads()))
            numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
        yield n_threads
    finally:
        for setter, previous in reversed(restore):
            setter(previous)


def _imported(name: str, *attributes: str) -> Any:
    """The module if it is imported and has the attributes used here (fully initialised)."""
    module = sys.modules.get(name)
    if module is None or not all(hasattr(module, a) for a in attributes):
        return None
    return module
