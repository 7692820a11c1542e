"""Invariant: batch_invariance

A hand-rolled normalisation that scales the hidden activations by the batch's mean
magnitude, in evaluation too: a sample's output depends on which samples share its batch.
Its spec is written as a user who does not know dyncheck's named shapes writes one: plain
Hypothesis strategies, the batch size drawn by ``st.integers(1, 3)``. No strategy names a
``"batch"`` axis, so dyncheck reads the batch from the values (every tensor input has the
same leading size); without that, the check would compare nothing and pass.

A correct version normalises each sample over its own features (``nn.LayerNorm``), or keeps
running statistics for evaluation (``nn.BatchNorm1d``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st

__all__ = ["Model"]


def _rows(width: int) -> st.SearchStrategy[torch.Tensor]:
    """A float32 [n, width] tensor with n drawn from 1 to 3, in plain Hypothesis."""
    return st.integers(1, 3).flatmap(
        lambda n: st.lists(st.floats(-10, 10, width=32), min_size=n * width, max_size=n * width).map(
            lambda values: torch.tensor(values).reshape(n, width)
        )
    )


class Model(nn.Module):
    __dyncheck__ = {"init": {"input_size": 8, "hidden_size": 16, "output_size": 4}, "inputs": {"x": _rows(8)}}

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = h / (1 + h.abs().mean())  # the bug: a statistic of the whole batch
        return self.fc2(h)
