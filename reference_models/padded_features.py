"""FeatureSequenceEncoder: x-transformers' ``ContinuousTransformerWrapper`` calling
convention, ``forward(x, lens=None)`` on float features ``[batch, time, dim_in]``.

Not a founding model: the counterpart of a check that never ran on a library people use.
``ContinuousTransformerWrapper`` projects float features per step, attends, and projects
out per step; an optional ``lens`` (or ``mask``) says which steps are padding. dyncheck drew
``x`` as a padded sequence, because forward takes ``lens``, but left ``lens`` itself at its
default, so ``padding_invariance`` skipped the model for want of lengths. An optional
argument named like lengths beside a batch-first sequence is now drawn as its lengths when
a call with every sequence at the full padded length gives the output of a call without
them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FeatureSequenceEncoder"]


class FeatureSequenceEncoder(nn.Module):
    def __init__(self, dim_in=6, dim=8, dim_out=3):
        super().__init__()
        self.project_in = nn.Linear(dim_in, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.project_out = nn.Linear(dim, dim_out)

    def valid(self, x, lens):
        """True at each sequence's first ``lens`` steps."""
        return torch.arange(x.shape[1], device=x.device) < lens[:, None]

    def forward(self, x, lens=None):
        mask = None if lens is None else self.valid(x, lens)
        h = self.project_in(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], -torch.finfo(scores.dtype).max)
        h = h + self.out(F.softmax(scores, dim=-1) @ v)
        return self.project_out(h)  # one output per step: padding_invariance compares the valid ones
