"""MaskedTokenEncoder: x-transformers' calling convention, ``forward(x, mask=None)``, its
mask True at tokens.

Not a founding model: the counterpart of a check that never ran on a library people use.
x-transformers' ``TransformerWrapper`` takes token ids and an optional boolean ``mask``
(True where a token is); dyncheck recognised only Hugging Face's ``attention_mask``, so
``padding_invariance`` skipped it for want of a mask. A ``mask=None`` beside batch-first
token ids is now drawn as a padding mask when a call with an all-True mask gives the output
of a call without one. ``nn.Transformer``'s ``mask`` (a ``[time, time]`` attention mask,
True where attention is forbidden) fails that test and stays at its default.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MaskedTokenEncoder"]


class MaskedTokenEncoder(nn.Module):
    def __init__(self, num_tokens=32, dim=8, classes=3):
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def encode(self, x, mask=None):
        """The token states, each attending to the tokens ``mask`` keeps."""
        h = self.token_emb(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], -torch.finfo(scores.dtype).max)
        return h + self.out(F.softmax(scores, dim=-1) @ v)

    def forward(self, x, mask=None):
        h = self.encode(x, mask)
        if mask is None:
            return self.head(h.mean(1))
        return self.head((h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
