"""Invariant: padding_invariance

``PackedMeanPool`` whose mean divides the masked sum by the padded length instead of the
tokens the mask marks: a sentence's embedding shrinks as its batch is padded further. The
correct version divides by the mask's sum (``reference_models/mask_and_lengths.py``).
"""

from __future__ import annotations

import torch

from reference_models.mask_and_lengths import PackedMeanPool

__all__ = ["Model"]


class Model(PackedMeanPool):
    def pool(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (tokens * mask).sum(1) / tokens.size(1)  # BUG: the padded length, not the tokens
