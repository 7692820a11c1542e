"""Invariant: dtype_agreement

A normalisation that computes the variance as ``E[h²] - E[h]²``. The hidden activations sit
near 1000 (a large offset, as after an un-normalised sum), so in float32 the two terms agree
in every digit the variance has: ``E[h²]`` is about 1e6, float32 keeps it to about 0.06, and
a row's true variance is often smaller than that. The float32 model normalises by rounding
noise while the float64 copy is exact, and the outputs disagree.

A correct version subtracts the mean first (``((h - mean) ** 2).mean()``, as
``torch.var`` and ``nn.LayerNorm`` do).
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
        h = self.fc1(x) + 1000.0
        mean = h.mean(dim=-1, keepdim=True)
        variance = (h * h).mean(dim=-1, keepdim=True) - mean * mean  # the bug: cancellation
        return self.fc2((h - mean) / torch.sqrt(variance.clamp_min(0) + 1e-5))
