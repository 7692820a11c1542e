"""Invariant: padding_invariance

DeepSets over padded sets (``reference_models/deep_sets.py``) whose pooling zeroes the
padded elements but divides by the padded size (``h.mean(1)``): a set's output shrinks
with the padding its batch adds. Resolution cannot tell this mask from one with another
meaning (under neither polarity is padding ignored), so the model declares what its mask
is, as the Spec the note names; dyncheck then reports "appending padding steps changes the
output of row 0".

The correct version divides by the real elements: ``h.sum(1) / mask.sum(1, keepdim=True)``.
"""

from __future__ import annotations

import torch

from dyncheck.strategies import attention_masks, tensors
from reference_models.deep_sets import DeepSets

__all__ = ["Model"]


class Model(DeepSets):
    __dyncheck__ = {
        "inputs": {"x": tensors(shape=("batch", "time", 4)), "mask": attention_masks(dtype=torch.bool)},
    }

    def forward(self, x, mask):
        h = self.phi(x) * mask.unsqueeze(-1)
        return self.rho(h.mean(1))  # the bug: the mean counts the padding
