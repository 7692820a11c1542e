"""Invariant: batch_invariance

``BagConcat`` that centres each bag on the mean over the whole batch (``x.mean(0)``) instead
of the bag's own items (``x.mean(1)``): every sample's output moves with the other samples
in the batch. Before dyncheck told a running concatenation from a state, the bags were drawn
time-major, this mean was taken over what was read as time, and the bug was missed. The
correct version is ``reference_models/bag_concat.py``.
"""

from __future__ import annotations

import torch

from reference_models.bag_concat import BagConcat

__all__ = ["Model"]


class Model(BagConcat):
    def centre(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(0, keepdim=True)  # over the batch: samples coupled
