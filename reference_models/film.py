"""Feature-wise linear modulation (FiLM): a conditioning vector per sample, ``condition``,
is turned by a Linear into a scale and a shift for each hidden unit of the main branch.
The argument is named like a control value, and forward compares it with nothing.

What it proves: an argument named like a control (``cond``, ``condition``, ``gate``, ``mode``)
that a layer is handed as it is, and that forward compares with nothing, is inferred from
that layer: ``condition`` is drawn ``[batch, 4]`` for the FiLM Linear (before, a scalar
control was drawn and every check crashed on the Linear). The buggy counterpart averages
the modulation over the batch (``buggy/batch_mean_film.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FiLMConditioned"]


class FiLMConditioned(nn.Module):
    def __init__(self, features=8, conditions=4, hidden=16, classes=3):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.film = nn.Linear(conditions, 2 * hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def modulation(self, condition):
        return self.film(condition).chunk(2, dim=-1)

    def forward(self, x, condition):
        scale, shift = self.modulation(condition)
        return self.fc2(torch.relu(scale * self.fc1(x) + shift))
