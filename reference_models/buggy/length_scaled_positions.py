"""Invariant: causality

A causal self-attention block (``reference_models/causal_attention.py``, its mask right)
that adds a position signal scaled by the sequence's length, ``t / time``, as code that
normalises positions to ``[0, 1)`` does. No step reads a later value, yet every step's
output depends on how many steps follow it: generating one token at a time (or streaming)
computes step ``t`` with another ``time`` than the whole sequence does, and gets another
result. dyncheck reports that the first steps differ between the whole sequence and the
first steps run alone while other values in the later steps change nothing: a dependence
on the length. A correct version scales positions by a fixed maximum length.
"""

from __future__ import annotations

import torch

from reference_models.causal_attention import CausalSelfAttention

__all__ = ["Model"]


class Model(CausalSelfAttention):
    def forward(self, x):
        time = x.shape[1]
        positions = torch.arange(time, dtype=x.dtype, device=x.device) / time  # the bug: / a fixed maximum
        return super().forward(x + positions[:, None])
