"""Invariant: state_roundtrip

A single-path one-shot supernet (``reference_models/supernet.py``) that samples its path in
training, but holds each sample for two calls in plain attributes (``self._arch``,
``self._calls``), as code that reuses a path for a forward and a second pass does. The held
path is outside the state_dict: a checkpoint resumed on an odd call samples a new path
where the original would have kept the old one. dyncheck runs the original's calls before
the compared one under another seed, so the held path differs from the one a fresh copy
draws, and reports "a fresh copy loaded from the state_dict takes a different path", naming
``_arch`` and ``_calls``.

A correct version samples on every call (``random.randrange`` under the seed), or keeps the
path in a buffer.
"""

from __future__ import annotations

import random

from reference_models.supernet import Supernet

__all__ = ["Model"]


class Model(Supernet):
    def __init__(self):
        super().__init__()
        self._calls = 0
        self._arch = [0] * len(self.cells)

    def forward(self, x):
        if self.training:
            if self._calls % 2 == 0:  # the bug: a path held for the next call, outside the state_dict
                self._arch = [random.randrange(len(cell.ops)) for cell in self.cells]
            self._calls += 1
            return super().forward(x, self._arch)
        return super().forward(x, [0] * len(self.cells))
