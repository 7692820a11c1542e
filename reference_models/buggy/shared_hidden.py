"""Invariant: batch_invariance

``HiddenStateLM`` that starts every sequence from the batch's mean hidden state (meant as a
"warm start", it mixes the samples' states): a sequence's scores depend on the other
sequences' states in its batch.
"""

from __future__ import annotations

import torch

from reference_models.hidden_state import HiddenStateLM

__all__ = ["Model"]


class Model(HiddenStateLM):
    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = hidden.mean(1, keepdim=True).expand_as(hidden).contiguous()  # BUG: across the batch
        return super().forward(tokens, hidden)
