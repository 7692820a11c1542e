"""Invariant: state_roundtrip

The gated net with an ActNorm layer (Glow's activation normalisation) after fc1: on its
first call ActNorm sets its shift and scale from the batch (data-dependent
initialisation), then trains them as ordinary parameters. The "already initialised" flag
is a plain Python attribute, ``self.initialized = True``, not a buffer, so it is not in the
state_dict: a fresh instance loaded from a trained model's state_dict still believes it is
uninitialised, and its first call overwrites the loaded shift and scale with the
statistics of whatever batch comes first. Calling one model twice cannot show this
(``determinism`` passes); a round trip through the state_dict does. dyncheck reports
``norm.initialized: True on the original, False on the fresh copy``.

A correct version keeps the flag in a buffer
(``self.register_buffer("initialized", torch.tensor(False))``), so it is saved and loaded
with the parameters it guards.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class ActNorm(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features))
        self.scale = nn.Parameter(torch.ones(features))
        self.initialized = False  # BUG: a plain attribute, not in the state_dict

    def forward(self, x):
        if not self.initialized:
            with torch.no_grad():
                self.shift.copy_(-x.mean(0))
                self.scale.copy_(1.0 / (x.std(0, unbiased=False) + 1.0))
            self.initialized = True
        return (x + self.shift) * self.scale


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.norm = ActNorm(hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = torch.tanh(self.norm(self.fc1(x)))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        return self.fc3(x)
