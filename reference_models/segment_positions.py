"""SegmentLM: a language model over one segment of at most ``seq_len`` tokens, with a table of
learned positions and ``assert n <= self.seq_len``, an optional padding mask (True at
tokens) and a summary of the segment (a masked mean) added back to every position, as
recurrent-memory-transformer-pytorch's ``RecurrentMemoryTransformer`` builds its memories.

Not a founding model: the counterpart of a false alarm on that library's model. Built for
4 steps while sequences were drawn up to 8, it failed every check on its own assert; and
its padding mask, probed only at 5 steps and more, was left at None in silence, so
``padding_invariance`` was skipped as if forward took none. An inferred sequence is now
called at its longest too and drawn up to the longest that runs; the mask probe tries 4 and
3 steps after the longer lengths.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SegmentLM"]


class SegmentLM(nn.Module):
    def __init__(self, num_tokens: int = 20, dim: int = 8, seq_len: int = 4) -> None:
        super().__init__()
        self.seq_len = seq_len
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.pos_emb = nn.Embedding(seq_len, dim)
        self.mix = nn.Linear(dim, dim)
        self.to_logits = nn.Linear(dim, num_tokens)

    def pool(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return h.mean(1)
        return h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[1]
        assert n <= self.seq_len, f"sequence length {n} must be at most {self.seq_len}"
        h = self.token_emb(x) + self.pos_emb(torch.arange(n, device=x.device))
        if mask is not None:
            h = h * mask[..., None]
        return self.to_logits(torch.tanh(self.mix(h) + self.pool(h, mask)[:, None]))
