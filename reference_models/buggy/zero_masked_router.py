"""Invariant: padding_invariance

``TopKTokenRouter`` with non-negative scores whose padding is masked to 0 rather than
``-inf``: a valid token scored 0 (a ReLU below zero) ties with the padding, and a padded
batch may send a padding step to the heavy branch in its place, which a sequence alone
never does (CoLT5-attention's router, whose scores underflow to 0). Broken ties are taken
both ways before a difference is called an order of a tie: the padding is picked under
one of them. The correct version masks padding to ``-inf``
(``reference_models/token_router.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, dim: int = 8, k: int = 2) -> None:
        super().__init__()
        self.k = k
        self.score = nn.Linear(dim, 1)
        self.light = nn.Linear(dim, dim)
        self.heavy = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = torch.relu(self.score(x).squeeze(-1))  # [batch, time], 0 for many tokens
        if mask is not None:
            scores = scores.masked_fill(~mask, 0.0)  # BUG: a valid token scored 0 ties with padding
        picked = scores.topk(min(self.k, x.shape[1]), dim=-1).indices
        chosen = torch.zeros_like(scores).scatter(1, picked, 1.0)
        # A row shorter than k picks padding too: its gate is sigmoid(-30), at padding steps.
        gate = torch.sigmoid(scores.clamp(min=-30)) * chosen
        return self.light(x) + self.heavy(x) * gate.unsqueeze(-1)
