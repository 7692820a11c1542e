"""Invariant: finite, grad_isolation

``DeepNormNet``'s stack of train-mode BatchNorms, then the "safe" square root of
``nan_gradient`` on the pooled features: ``torch.where(h > 0, torch.sqrt(h), 0)``. Its
backward is NaN wherever ``h <= 0`` (``where`` sends a zero into ``sqrt``'s backward,
``1 / (2 * sqrt(h))`` is inf or NaN there, and ``0 * inf`` is NaN), on any image.

On a batch of all-zero images the BatchNorms also overflow the gradient (see
``reference_models.deep_norm``), an innocent cause dyncheck does not report; here the NaN
stays when their eps is raised to 1, so it is the model's and is reported. The correct
version makes the untaken side harmless before the ``sqrt``: ``torch.where(h > 0,
torch.sqrt(torch.where(h > 0, h, torch.ones_like(h))), torch.zeros_like(h))``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, depth=24, width=4, classes=5):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(width), nn.SiLU(), nn.Conv2d(width, width, 1, bias=False))
            for _ in range(depth)
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        h = x.mean((2, 3))
        # BUG: sqrt's gradient at h <= 0 is inf/NaN and leaks through where's untaken side.
        h = torch.where(h > 0, torch.sqrt(h), torch.zeros_like(h))
        return self.head(h)
