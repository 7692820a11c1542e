"""Invariant: state_roundtrip

A hand-written batch norm whose running statistics are registered with
``persistent=False``: they are updated in training and read at inference, but a
checkpoint does not hold them. In train mode a fresh copy loaded from the state_dict
agrees with the original (both normalise by the batch); in eval mode the fresh copy
normalises by its initial statistics, and every prediction after a reload changes.
dyncheck reports the outputs that differ in eval mode and names the two buffers.

A correct version registers them as ordinary buffers
(``reference_models/running_norm.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.running_norm import FeatureNorm

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, features=6, hidden=8, classes=3):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.norm = FeatureNorm(hidden, persistent=False)  # the bug: not in the state_dict
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.norm(self.fc1(x))))
