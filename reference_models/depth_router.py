"""MixtureOfDepths: each sequence sends its top half of tokens, by a router's score, through
a block; the rest skip it (Raposo et al.'s mixture-of-depths, per-sample top-k as its
reference implementations route at inference).

Not a founding model: the counterpart of a false alarm on a hand-written mixture-of-depths.
Hypothesis draws token ids that repeat in a row (``[[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]``); equal
tokens then score equally, up to rounding: the router's matrix product rounds a row in a
batch otherwise than the same row alone, one ulp apart, and ``topk`` picks another of the
equal tokens. ``batch_invariance`` reported that as a dependence on the batch. It now runs
such a difference again with scores equal but for their last 8 ulps picked alike, by
position, and does not count that output for that row where that explains it (the summary
counts such examples).
``buggy/batch_topk_depth.py`` picks the top tokens over the whole batch instead.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MixtureOfDepths"]


class MixtureOfDepths(nn.Module):
    """Token ids ``[batch, time]`` -> embeddings -> one routed block -> logits per token."""

    def __init__(self, vocab: int = 50, dim: int = 16, capacity: float = 0.5) -> None:
        super().__init__()
        self.capacity = capacity
        self.emb = nn.Embedding(vocab, dim)
        self.router = nn.Linear(dim, 1)
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens)
        k = max(1, int(self.capacity * x.shape[1]))
        scores = self.router(x).squeeze(-1)  # [batch, time]
        top = scores.topk(k, dim=1).indices  # each sequence its own k tokens
        index = top.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        update = self.block(x.gather(1, index)) * torch.sigmoid(scores.gather(1, top)).unsqueeze(-1)
        return self.head(x.scatter_add(1, index, update))
