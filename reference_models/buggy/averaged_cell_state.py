"""Invariant: batch_invariance

``WordLanguageModel`` that starts every sequence from the batch's mean cell state (meant as
a shared "warm start", it mixes the samples' states): a sequence's scores and state depend
on the other sequences in its batch. The state is the tuple ``(h_0, c_0)``; only ``c_0`` is
mixed.
"""

from __future__ import annotations

import torch

from reference_models.word_lm import WordLanguageModel

__all__ = ["Model"]


class Model(WordLanguageModel):
    def forward(self, input: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]):
        h, c = hidden
        c = c.mean(1, keepdim=True).expand_as(c).contiguous()  # BUG: across the batch
        return super().forward(input, (h, c))
