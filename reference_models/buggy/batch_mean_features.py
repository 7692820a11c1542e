"""Invariant: batch_invariance, padding_invariance

``CaptionDecoder`` that centres each image's features on the batch's mean before the first
step (a normalisation meant for the whole dataset, computed on whatever batch came): a
caption's scores depend on the other images of its batch, in the batch as a whole and row by
row against each caption alone.
"""

from __future__ import annotations

import torch

from reference_models.caption_decoder import CaptionDecoder

__all__ = ["Model"]


class Model(CaptionDecoder):
    def image(self, features: torch.Tensor) -> torch.Tensor:
        return features - features.mean(0, keepdim=True)  # BUG: the batch's mean
