"""Invariant: batch_invariance

DINO's multi-crop wrapper with the teacher's centring moved into forward and taken from the
batch at hand: every crop's output minus the mean over all crops of all samples. Each
sample's outputs then move with the other samples in the batch. DINO centres in its loss,
with a running centre (an average over past batches), and ``two_views.MultiCropWrapper``
returns the backbone's outputs as they are.
"""

from __future__ import annotations

import torch

from reference_models.two_views import MultiCropWrapper

__all__ = ["Model"]


class Model(MultiCropWrapper):
    def centre(self, output: torch.Tensor) -> torch.Tensor:
        return output - output.mean(0)  # the bug: the mean over every sample's crops
