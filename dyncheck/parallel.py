"""Sharing the machine's cores between pytest-xdist workers.

Each worker process runs torch's intra-op thread pool, which by default takes every core:
with ``-n 2`` on two cores, four busy threads fight over two cores and the run is barely
faster than one process. Like PyTorch's own test suite, each worker gets its share of the
cores instead, unless the user chose a thread count (``OMP_NUM_THREADS`` or
``MKL_NUM_THREADS``), which is then left alone. A single process keeps torch's default.

This module imports torch only inside :func:`share_cores`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["available_cores", "share_cores", "threads_per_worker", "user_thread_setting"]

#: Environment variables through which a user chooses torch's thread count.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (the affinity mask, as a container sees it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def user_thread_setting(environ: Mapping[str, str] | None = None) -> str | None:
    """``OMP_NUM_THREADS=4`` when the user chose a thread count, else None."""
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        if environ.get(name, "").strip():
            return f"{name}={environ[name].strip()}"
    return None


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Each worker's share of the cores: at least one thread."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def share_cores(workers: int) -> int | None:
    """On an xdist worker, give torch this worker's share of the cores; returns the thread
    count set, or None when the user chose one (or there is one worker)."""
    if workers <= 1 or user_thread_setting() is not None:
        return None
    import torch

    threads = threads_per_worker(workers)
    torch.set_num_threads(threads)
    return threads


def header(numprocesses: object) -> str | None:
    """The header line saying how the cores are shared under ``-n N``, or None."""
    if not isinstance(numprocesses, int) or numprocesses <= 1:
        return None
    chosen = user_thread_setting()
    if chosen is not None:
        return f"dyncheck: {numprocesses} workers, torch threads as set by {chosen}"
    threads = threads_per_worker(numprocesses)
    return (
        f"dyncheck: {numprocesses} workers, {threads} torch thread{'s' if threads != 1 else ''} each "
        f"({available_cores()} cores; set OMP_NUM_THREADS to choose)"
    )
