"""Invariant: batch_invariance

``ProjectedRecurrence`` whose cell state starts from the first step's candidates averaged
over the batch instead of zeros: every sample's states move with the other samples in the
batch. The correct version starts each sample from zeros
(``reference_models/projected_recurrence.py``).
"""

from __future__ import annotations

import torch

from reference_models.projected_recurrence import ProjectedRecurrence

__all__ = ["Model"]


class Model(ProjectedRecurrence):
    def initial_state(self, U: torch.Tensor) -> torch.Tensor:
        candidate = U[0].chunk(3, dim=-1)[1]
        return candidate.mean(0, keepdim=True).expand_as(candidate)  # over the batch: samples coupled
