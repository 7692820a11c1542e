"""Invariant: padding_invariance

``SegmentLM`` whose segment summary divides the masked sum by the padded length
(``h.size(1)``) instead of the tokens the mask marks: every position's logits move as its
batch is padded further. The correct version divides by the mask's sum
(``reference_models/segment_positions.py``).
"""

from __future__ import annotations

import torch

from reference_models.segment_positions import SegmentLM

__all__ = ["Model"]


class Model(SegmentLM):
    def pool(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return h.sum(1) / h.size(1)  # BUG: the padded length, not the tokens
