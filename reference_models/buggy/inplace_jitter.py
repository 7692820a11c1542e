"""Invariant: purity

The gated net with multiplicative input jitter in training (the Switch Transformer's
router jitter: each input value scaled by a factor drawn from ``[1 - eps, 1 + eps]``),
written in place: ``x.mul_(noise)``. That scales the caller's tensor, so after a training
step the batch the data loader handed over (and any other model, metric or retry that
reads it) holds jittered values, and a second call on "the same" batch jitters it again.
dyncheck compares every input before and after the call and reports
``forward modified its input x in place (in train mode)`` with the numbers.

A correct version jitters a copy: ``x = x * noise``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, jitter=0.01):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)
        self.jitter = jitter

    def forward(self, x, control):
        if self.training:
            noise = torch.empty_like(x).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
            x.mul_(noise)  # BUG: scales the caller's tensor
        x = F.relu(self.fc1(x))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        return self.fc3(x)
