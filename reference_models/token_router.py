"""TopKTokenRouter: each sequence's two highest-scoring tokens also go through a heavy
branch (CoLT5's conditional computation), scores through a ReLU, padding scored ``-inf``.

Not a founding model: the counterpart of a false alarm on CoLT5-attention's routed
feed-forward. On an input whose scores tie (an all-zero input, which Hypothesis shrinks
to), ``topk`` picks among the equal scores in an order torch leaves to its kernel, and
that order changes with the length: three equal scores alone give positions 0 and 1, the
same three followed by two ``-inf`` padding scores give 1 and 2. ``padding_invariance``
reported that as reading past the lengths; it now compares such an example again with
ties broken alike (:mod:`dyncheck.ties`). ``buggy/zero_masked_router.py`` masks the
padding to 0 instead, where a valid token scored 0 ties with it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TopKTokenRouter"]


class TopKTokenRouter(nn.Module):
    #: the score a padding step gets: below every valid token's
    padding_score = float("-inf")

    def __init__(self, dim: int = 8, k: int = 2) -> None:
        super().__init__()
        self.k = k
        self.score = nn.Linear(dim, 1)
        self.light = nn.Linear(dim, dim)
        self.heavy = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = torch.relu(self.score(x).squeeze(-1))  # [batch, time], 0 for many tokens
        if mask is not None:
            scores = scores.masked_fill(~mask, self.padding_score)
        picked = scores.topk(min(self.k, x.shape[1]), dim=-1).indices
        chosen = torch.zeros_like(scores).scatter(1, picked, 1.0)
        # A row shorter than k picks padding too: its gate is sigmoid(-30), at padding steps.
        gate = torch.sigmoid(scores.clamp(min=-30)) * chosen
        return self.light(x) + self.heavy(x) * gate.unsqueeze(-1)
