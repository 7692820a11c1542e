"""Invariant: batch_invariance

``IntegratorStack`` whose integrators start from the first step's inputs averaged over the
batch instead of zeros: every sample's states move with the other samples in the batch.
The correct version starts each sample from zeros (``reference_models/integrator_stack.py``).
"""

from __future__ import annotations

import torch

from reference_models.integrator_stack import IntegratorStack, LeakyIntegrators

__all__ = ["Model"]


class _BatchMeanStart(LeakyIntegrators):
    def initial(self, first: torch.Tensor) -> torch.Tensor:
        return torch.tanh(first).mean(0, keepdim=True).expand_as(first)  # BUG: over the batch


class Model(IntegratorStack):
    def __init__(self, features: int = 8, hidden: int = 16, outputs: int = 4) -> None:
        super().__init__(features, hidden, outputs, layer=_BatchMeanStart)
