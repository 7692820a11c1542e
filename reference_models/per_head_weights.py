"""PerHeadWeights: one layer's weight used by every head, expanded per head in forward
(``self.layer.weight.expand(heads, ...)``), as titans-pytorch's NeuralMemory means its
per-head memory weights.

Not a founding model: the counterpart of a missed bug. NeuralMemory registers the expanded
view as a Parameter of its own, which shares the layer's storage at stride 0: an optimizer
step raises, and each of the two gets its own gradient. ``tied_weights`` compared storages
only between Parameters of the same size and passed it (``buggy/expanded_alias_tie.py``);
any two Parameters over the same memory are now an alias. This model expands in forward,
one Parameter, and passes.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PerHeadWeights"]


class PerHeadWeights(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.layer = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, 4)

    def per_head(self) -> torch.Tensor:
        return self.layer.weight.expand(self.heads, *self.layer.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("bi,hoi->bho", x, self.per_head()).mean(1) + self.layer(x)
        return self.out(torch.relu(h))
