"""A once-for-all style MLP whose width is chosen per call: ``forward(x, active: int)`` runs
the first ``active`` hidden channels, slicing the weights themselves (``self.w1[:active]``,
``self.w2[:, :active]``), as elastic and slimmable supernets do.

What it proves: an int argument that ends a slice of the model's own weights is drawn up to
the size it slices (0 to 12 channels here), so every width runs; before, it was drawn as a
count from 0 to 4, and most widths never ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ElasticMLP"]


class ElasticMLP(nn.Module):
    def __init__(self, features=8, channels=12, classes=3):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(channels, features) * features ** -0.5)
        self.b1 = nn.Parameter(torch.zeros(channels))
        self.w2 = nn.Parameter(torch.randn(classes, channels) * channels ** -0.5)
        self.b2 = nn.Parameter(torch.zeros(classes))

    def forward(self, x, active: int):
        h = F.relu(F.linear(x, self.w1[:active], self.b1[:active]))
        return F.linear(h, self.w2[:, :active], self.b2)
