"""Invariant: batch_invariance

``OptionalGateNet`` whose gated layer centres its input on the batch's mean (``h.mean(0)``)
instead of each sample's own features: behind ``if control > 0.5``, every sample's output
moves with the others in the batch. While an optional control stayed at its default 0.0,
the gate never opened and the bug was missed. The correct version is
``reference_models/optional_gate.py``.
"""

from __future__ import annotations

import torch

from reference_models.optional_gate import OptionalGateNet

__all__ = ["Model"]


class Model(OptionalGateNet):
    def gated(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc2(h - h.mean(0, keepdim=True)))  # over the batch: samples coupled
