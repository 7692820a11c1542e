"""EinsumMoE: a mixture of experts whose gate and experts are raw parameters used through
``einsum``, on sequences of tokens.

Not a founding model: the counterpart of a wrong inference met on mixture-of-experts layers
from a library people use (lucidrains' ``mixture_of_experts.MoE``: ``b, n, d = x.shape``,
``einsum('bnd,de->bne', x, self.w_gating)``, experts as one ``[experts, dim, hidden]``
parameter). No layer there says what it takes, so inference gave up and its error
suggested a shape of its own making. The input is now probed: the model is called on
vectors and on sequences of each size its first consumers' parameters have, and the first
that runs is drawn (``("batch", "time", 8)`` here). Each token goes to its top expert,
weighted by the gate's probability; every expert runs on every token as one batched
product, which is one module, so nothing is dropped.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["EinsumMoE"]


class _Gate(nn.Module):
    def __init__(self, dim, num_experts):
        super().__init__()
        self.w_gating = nn.Parameter(torch.randn(dim, num_experts) * dim**-0.5)

    def forward(self, x):
        return F.softmax(torch.einsum("bnd,de->bne", x, self.w_gating), dim=-1)


class _Experts(nn.Module):
    def __init__(self, dim, hidden, num_experts):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(num_experts, dim, hidden) * dim**-0.5)
        self.w2 = nn.Parameter(torch.randn(num_experts, hidden, dim) * hidden**-0.5)

    def forward(self, x):
        hidden = F.gelu(torch.einsum("bnd,edh->bneh", x, self.w1))
        return torch.einsum("bneh,ehd->bned", hidden, self.w2)


class EinsumMoE(nn.Module):
    def __init__(self, dim=8, hidden=16, num_experts=4):
        super().__init__()
        self.gate = _Gate(dim, num_experts)
        self.experts = _Experts(dim, hidden, num_experts)

    def forward(self, x):
        b, n, d = x.shape
        probabilities = self.gate(x)
        top, choice = probabilities.max(dim=-1)
        routed = self.experts(x).gather(2, choice[..., None, None].expand(b, n, 1, d)).squeeze(2)
        return x + top[..., None] * routed
