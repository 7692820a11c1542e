"""Invariant: batch_invariance

Per-sample randomness drawn by position: ``torch.rand(batch_size)`` gives sample i the
i-th number of the stream, so the same sample gets a different draw alone than in a
batch, and a different one again when the batch is reordered — even with a fixed seed.
dyncheck reports "sample N differs from the same sample run alone".

A correct version draws per sample from something that belongs to the sample (a
per-sample seed, or noise passed in with the input), or documents the coupling with
``Spec(skip={"batch_invariance": ...})``.
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
        coin = (torch.rand(x.shape[0]) > 0.5).to(x.dtype)  # the bug: one draw per batch position
        return self.fc2(torch.relu(self.fc1(x)) * (1 + coin[:, None]))
