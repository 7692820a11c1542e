"""Invariant: dtype_agreement

The naive variance of ``naive_variance.py`` (``E[h²] - E[h]²`` on activations near 1000)
inside a normalisation pinned to float32, as models pin a step for half-precision
training: ``h.float()`` first, ``.to(x.dtype)`` after. The float32 model normalises by
rounding noise. A float64 copy that rounded to float32 at the same cast would compute the
same kind of noise, and comparing the two would show nothing; dyncheck's float64 reference
keeps float64 through such casts (in the float32 model they change nothing), so it is exact
and the outputs disagree.

A correct version subtracts the mean first (``((h - mean) ** 2).mean()``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = (self.fc1(x) + 1000.0).float()  # pinned to float32
        mean = h.mean(dim=-1, keepdim=True)
        variance = (h * h).mean(dim=-1, keepdim=True) - mean * mean  # the bug: cancellation
        normalised = (h - mean) / torch.sqrt(variance.clamp_min(0) + 1e-5)
        return self.fc2(normalised.to(x.dtype))
