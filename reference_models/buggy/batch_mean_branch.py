"""Invariant: batch_invariance

The gated net deciding its branch from a batch statistic: fc2 runs when the batch's mean
activation is positive. A sample's output then depends on which other samples share its
batch — in evaluation, on how requests happened to be batched. dyncheck reports "sample N
differs from the same sample run alone".

A correct version decides per sample (a per-sample gate), or from an input that belongs
to the sample.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        if h.mean() > 0.5:  # the bug: a statistic of the whole batch
            h = F.relu(self.fc2(h))
        return self.fc3(h)
