"""Invariant: padding_invariance

An encoder in x-transformers' calling convention (``forward(x, mask=None)``, the mask True
at tokens) whose attention reads the mask but whose mean pool does not,
``h.mean(1)``: the padding's states count in each sequence's summary, which changes with
more padding.

A correct version (:mod:`reference_models.padding_mask`) averages over the tokens the mask
keeps: ``(h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, num_tokens=32, dim=8, classes=3):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x, mask=None):
        h = self.token_emb(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], -torch.finfo(scores.dtype).max)
        h = h + self.out(F.softmax(scores, dim=-1) @ v)
        return self.head(h.mean(1))  # BUG: the padding's states count in the mean
