"""Invariant: tied_weights, state_roundtrip

``PerHeadWeights`` that registers the per-head expansion of the layer's weight as a
Parameter of its own, as titans-pytorch's NeuralMemory does: the two share one storage,
the expanded one at stride 0, so each gets its own gradient and an optimizer step cannot
update the view in place (tied_weights); a fresh instance cannot load the state dict, whose
expanded entry it cannot copy into (state_roundtrip). The correct version expands in forward
(``reference_models/per_head_weights.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from reference_models.per_head_weights import PerHeadWeights

__all__ = ["Model"]


class Model(PerHeadWeights):
    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__(dim, heads)
        self.expanded = nn.Parameter(self.layer.weight.expand(heads, dim, dim))  # an alias, not a tie

    def per_head(self) -> torch.Tensor:
        return self.expanded
