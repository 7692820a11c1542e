"""A mixture of low-rank adapters chosen per sample, as multi-tenant LoRA serving runs them
(each request its own adapter in one batch): every layer is a base Linear plus the adapter
``adapter_ids`` picks, its two low-rank factors gathered from stacked weights by the ids
(``self.A[adapter_ids]``), inside a custom layer the ids are handed to beside the features.

What it proves: an argument that picks rows of the model's own weights is one index per
sample, below their number of rows. Before, the ids were read as features of the next
layer that took what the first made of them (``l2``'s 16), and every check reported
``IndexError: tensors used as indices must be long``; a layer's input is read only where
the argument reaches it as itself.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AdapterMixture"]


class _AdaptedLinear(nn.Module):
    def __init__(self, d_in, d_out, adapters=3, rank=2, scale=2.0):
        super().__init__()
        self.base = nn.Linear(d_in, d_out)
        self.A = nn.Parameter(torch.randn(adapters, rank, d_in) * 0.1)
        self.B = nn.Parameter(torch.randn(adapters, d_out, rank) * 0.1)
        self.scale = scale

    def forward(self, x, adapter_ids):
        A = self.A[adapter_ids]  # [batch, rank, in]
        B = self.B[adapter_ids]  # [batch, out, rank]
        return self.base(x) + self.scale * torch.einsum("bor,bri,bi->bo", B, A, x)


class AdapterMixture(nn.Module):
    def __init__(self, features=12, hidden=16, classes=4, adapters=3):
        super().__init__()
        self.l1 = _AdaptedLinear(features, hidden, adapters)
        self.l2 = _AdaptedLinear(hidden, classes, adapters)

    def forward(self, x, adapter_ids):
        return self.l2(torch.relu(self.l1(x, adapter_ids)), adapter_ids)
