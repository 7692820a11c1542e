"""Invariant: finite, grad_isolation

After ``relu(fc1(x))`` the model scales each hidden row to unit length with
``h / h.norm(dim=-1, keepdim=True)``, with no epsilon. When a hidden row is all zeros the
division is 0 / 0 and the whole output row is NaN. ``fc1`` has no bias, so an all-zero
input row always gives an all-zero hidden row; with random inputs a row whose
pre-activations are all negative (every ReLU dead, likely with a small ``hidden_size``)
does the same. The NaN flows on into the gradients, so grad_isolation's finite-gradient
rule reports it too.

A correct version keeps the denominator away from zero:
``torch.nn.functional.normalize(h, dim=-1)`` (which divides by
``max(norm, eps)``), or ``h / h.norm(dim=-1, keepdim=True).clamp_min(eps)``.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        # No bias, so a zero input row gives a zero hidden row.
        self.fc1 = nn.Linear(input_size, hidden_size, bias=False)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = F.relu(self.fc1(x))
        h = h / h.norm(dim=-1, keepdim=True)  # BUG: no epsilon, 0 / 0 for a zero row
        if control > 0.5:
            h = F.relu(self.fc2(h))
        return self.fc3(h)
