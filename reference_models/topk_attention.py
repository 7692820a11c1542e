"""Sparse self-attention written out in forward, as research code writes it: queries, keys
and values from one Linear, scores ``q @ k.transpose(-2, -1)``, every score but each query's
top ``k`` set to ``-inf`` (``scatter`` of ``topk``), a softmax, an output projection.

What it proves: attention written out in forward is over the steps of a sequence. Its only
layer is a Linear, which says vectors: drawn as ``[batch, 8]``, the scores compared the
samples of the batch with each other, and ``batch_invariance`` reported them coupled. The
attention in the code puts a ``"time"`` axis in.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TopKAttention"]


class TopKAttention(nn.Module):
    def __init__(self, dim=8, k=3):
        super().__init__()
        self.k = k
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, keys, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ keys.transpose(-2, -1) / math.sqrt(q.size(-1))
        top, index = scores.topk(min(self.k, scores.size(-1)), dim=-1)
        sparse = torch.full_like(scores, float("-inf")).scatter(-1, index, top)
        return self.proj(sparse.softmax(-1) @ v)
