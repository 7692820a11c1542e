"""LearnedPositionLM: a language model with a table of learned positions, built as
``LearnedPositionLM(num_tokens, max_seq_len, dim)`` and refusing longer sequences, as
local-attention's ``LocalTransformer`` and hourglass-transformer-pytorch's
``HourglassTransformerLM`` are.

Not a founding model: the counterpart of a false alarm on those libraries' models.
``max_seq_len`` was given a small distinct size (6) like any size-named argument, while
sequences were drawn up to 8 steps: every check failed on the model's own length limit. An
argument named like a longest length now gets twice the longest ``"time"`` the run draws
(``dyncheck.infer.constructor``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LearnedPositionLM"]


class LearnedPositionLM(nn.Module):
    def __init__(self, num_tokens: int, max_seq_len: int, dim: int) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(max_seq_len, dim)
        self.mix = nn.GRU(dim, dim, batch_first=True)
        self.to_logits = nn.Linear(dim, num_tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        assert n <= self.max_seq_len, f"sequence length {n} must be at most the max sequence length {self.max_seq_len}"
        h = self.token_emb(x) + self.pos_emb(torch.arange(n, device=x.device))
        h, _ = self.mix(h)
        return self.to_logits(h)
