"""Seeding every global generator a model may draw from, and restoring it afterwards."""

from __future__ import annotations

import contextlib
import contextvars
import random
import sys
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["held", "seeded"]

#: The seed a CUDA generator starts from when nobody seeded it (c10's default_rng_seed_val).
_CUDA_DEFAULT_SEED = 67280421310721


def _cuda_snapshot() -> tuple[str, Any]:
    """What restoring CUDA's generators needs. Before CUDA is initialised torch only queues
    seeding (``torch.cuda._lazy_seed_tracker`` keeps the latest call of each kind), so the
    queue is what the caller has: ``torch.manual_seed`` inside the block replaces it."""
    if torch.cuda.is_initialized():
        return "states", torch.cuda.get_rng_state_all()
    tracker = getattr(torch.cuda, "_lazy_seed_tracker", None)
    if tracker is None or not hasattr(tracker, "call_order"):
        return "unknown", None
    return "queued", (tracker.manual_seed_all_cb, tracker.manual_seed_cb, list(tracker.call_order))


def _cuda_restore(snapshot: tuple[str, Any]) -> None:
    kind, saved = snapshot
    if kind == "states":
        torch.cuda.set_rng_state_all(saved)
        return
    if kind != "queued":
        return
    seed_all, seed_one, order = saved
    if torch.cuda.is_initialized():
        # CUDA came up inside the block (the model went to a GPU) and ran our seeding: put the
        # generators where the caller's own seeding (or none: torch's default) would have.
        torch.cuda.manual_seed_all(_CUDA_DEFAULT_SEED)
        for queued in order:
            if queued is not None:
                queued[0]()
        return
    tracker = torch.cuda._lazy_seed_tracker
    tracker.manual_seed_all_cb, tracker.manual_seed_cb, tracker.call_order = seed_all, seed_one, order


def _seed_torch(seed: int) -> None:
    """What ``torch.manual_seed(seed)`` does, without its cost where a backend is absent.

    ``torch.manual_seed`` queues a seeding call for CUDA, XPU and MTIA even when the build
    has none of them, and each queued call captures the caller's stack as text: a few
    milliseconds under pytest and Hypothesis, on every seeded call. A backend that is not
    available can never run, so its seeding is left out; an available one is seeded exactly
    as ``torch.manual_seed`` does (lazily, if it is not initialised yet)."""
    seed = int(seed)
    for name in ("cuda", "xpu", "mtia"):  # the ones torch.manual_seed seeds (as this torch has them)
        backend = getattr(torch, name, None)
        if backend is None or not hasattr(backend, "manual_seed_all") or not backend.is_available():
            continue
        in_bad_fork = getattr(backend, "_is_in_bad_fork", None)
        if in_bad_fork is None or not in_bad_fork():
            backend.manual_seed_all(seed)
    torch.mps.manual_seed(seed)  # a no-op on a build without MPS
    seed_custom = getattr(torch.random, "_seed_custom_device", None)
    if seed_custom is not None:  # a privateuse1 backend (torch.manual_seed seeds it too)
        seed_custom(seed)
    torch.default_generator.manual_seed(seed)


#: Inside held(): [numpy or None as it was at the block's start, seeded() blocks open]; None outside.
_HELD: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("dyncheck_rng_held", default=None)


@contextlib.contextmanager
def held(*, restored_by_caller: bool = False) -> Iterator[None]:
    """Save python ``random``, numpy's global generator and torch's CPU generator once
    around a block of many :func:`seeded` calls, and restore them when it ends.

    Saving and restoring numpy's global state costs about 0.1 ms (it copies its whole
    Mersenne Twister state), and a check seeds several calls on each example. Inside the
    block each :func:`seeded` call still seeds every generator, so each call is as
    reproducible as on its own; between two calls the python and numpy streams continue
    from where the model left them (dyncheck's own code draws from neither). A seeded()
    block inside another still restores the outer one's streams, and torch's generators,
    cheap to save, are still saved and restored by every call.

    ``restored_by_caller``: the block runs inside a Hypothesis test case, which seeds python's
    and numpy's global generators before each case and restores them after it (as its
    ``register_random`` documents), so only torch's is saved here."""
    if _HELD.get() is not None:
        yield
        return
    numpy = sys.modules.get("numpy")
    python_state = None if restored_by_caller else random.getstate()
    numpy_state = numpy.random.get_state() if numpy is not None and not restored_by_caller else None
    torch_state = torch.random.get_rng_state()
    token = _HELD.set([numpy, 0])
    try:
        yield
    finally:
        _HELD.reset(token)
        if python_state is not None:
            random.setstate(python_state)
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python ``random``, numpy's global generator (if numpy is imported) and torch
    (CPU and every available accelerator) from ``seed``; restore all of their states on exit
    (python's and numpy's at the end of the enclosing :func:`held` block, if any).

    Models that draw their structure from any of these (``random.randint`` depth,
    ``torch.rand(1) > 0.5`` branches, dropout) become reproducible inside the block,
    and the caller's own random streams are left exactly as they were.
    """
    outer = _HELD.get()
    saves = outer is None or outer[1] > 0  # outside held(), or nested in another seeded()
    if saves:
        numpy = sys.modules.get("numpy") if outer is None else outer[0]
        python_state = random.getstate()
        numpy_state = numpy.random.get_state() if numpy is not None else None
    else:
        numpy = outer[0]
    if outer is not None:
        outer[1] += 1
    torch_state = torch.random.get_rng_state()
    cuda = _cuda_snapshot()
    random.seed(seed)
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    _seed_torch(seed)
    try:
        yield
    finally:
        if outer is not None:
            outer[1] -= 1
        if saves:
            random.setstate(python_state)
            if numpy_state is not None:
                numpy.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        _cuda_restore(cuda)
