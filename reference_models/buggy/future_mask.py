"""Invariant: causality

A causal self-attention block (``reference_models/causal_attention.py``) whose mask hides
the future from one step later than it should: ``triu(2)`` instead of ``triu(1)``, so each
query also attends to the next key, an off-by-one that a language model trained with it
learns to exploit (its training loss falls, and generation, which has no next token, is
worse). The output keeps its shape and every other check passes; dyncheck reports that
step ``t`` of the output changes when only step ``t + 1`` of the input does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reference_models.causal_attention import CausalSelfAttention

__all__ = ["Model"]


class Model(CausalSelfAttention):
    def forward(self, x):
        batch, time, width = x.shape

        def heads(t):
            return t.view(batch, time, self.num_heads, width // self.num_heads).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(width // self.num_heads)
        future = torch.ones(time, time, dtype=torch.bool, device=x.device).triu(2)  # the bug: triu(1)
        weights = F.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, time, width)
        return x + self.out_proj(attended)
