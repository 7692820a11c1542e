"""Invariant: causality

A causal self-attention block (``reference_models/causal_attention.py``) whose mask hides
the future from one step later than it should: ``triu(2)`` instead of ``triu(1)``, so each
query also attends to the next key, an off-by-one that a language model trained with it
learns to exploit (its training loss falls, and generation, which has no next token, is
worse). The output keeps its shape and every other check passes; dyncheck reports that
step ``t`` of the output changes when only step ``t + 1`` of the input does.
"""

from __future__ import annotations

import torch

from reference_models.causal_attention import CausalSelfAttention

__all__ = ["Model"]


class Model(CausalSelfAttention):
    @staticmethod
    def future(time: int, device: torch.device) -> torch.Tensor:
        return torch.ones(time, time, dtype=torch.bool, device=device).triu(2)  # the bug: triu(1)
