"""Invariant: finite, grad_isolation

The model uses a "safe" square-root activation,
``torch.where(h > 0, torch.sqrt(h), torch.zeros_like(h))``. The forward pass is finite:
``where`` picks 0 wherever ``h <= 0``. The backward pass is not: ``where`` sends a zero
gradient into ``sqrt`` at the positions it did not take, and ``sqrt``'s backward
multiplies that zero by ``1 / (2 * sqrt(h))``, which is ``inf`` at ``h == 0`` and NaN for
``h < 0``, so ``0 * inf`` or ``0 * NaN`` is NaN and it flows on into ``fc1.weight.grad``
(and ``x.grad``). ``fc1`` has no bias, so an all-zero input row gives ``h == 0`` and
triggers it; so does any negative pre-activation.

A correct version makes the untaken side harmless before the ``sqrt`` (the "double
where"): ``safe = torch.where(h > 0, h, torch.ones_like(h))`` then
``torch.where(h > 0, torch.sqrt(safe), torch.zeros_like(h))``. Clamping alone,
``torch.sqrt(h.clamp_min(0))``, still has an infinite derivative at exactly 0.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        # No bias, so a zero input row gives h == 0 exactly.
        self.fc1 = nn.Linear(input_size, hidden_size, bias=False)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = self.fc1(x)
        # BUG: sqrt's gradient at h <= 0 is inf/NaN and leaks through where's untaken side.
        h = torch.where(h > 0, torch.sqrt(h), torch.zeros_like(h))
        if control > 0.5:
            h = F.relu(self.fc2(h))
        return self.fc3(h)
