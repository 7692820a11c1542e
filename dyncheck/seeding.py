"""Seeding every global generator a model may draw from, and restoring it afterwards."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator

import torch

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python ``random``, numpy's global generator (if numpy is imported) and torch
    (CPU and every CUDA device) from ``seed``; restore all of their states on exit.

    Models that draw their structure from any of these (``random.randint`` depth,
    ``torch.rand(1) > 0.5`` branches, dropout) become reproducible inside the block,
    and the caller's own random streams are left exactly as they were.
    """
    numpy = sys.modules.get("numpy")
    python_state = random.getstate()
    numpy_state = numpy.random.get_state() if numpy is not None else None
    torch_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    random.seed(seed)
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device, lazily if CUDA is not up yet
    try:
        yield
    finally:
        random.setstate(python_state)
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
