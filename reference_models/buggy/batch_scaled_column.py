"""Invariant: batch_invariance

``PickedColumnsTabular`` whose continuous column is scaled by its maximum over the batch
instead of normalised within each row: every sample's output moves with the other samples.
Before dyncheck read a table of columns picked by number, every check crashed on this model
and its correct twin (``reference_models/picked_columns.py``) alike.
"""

from __future__ import annotations

import torch

from reference_models.picked_columns import PickedColumnsTabular

__all__ = ["Model"]


class Model(PickedColumnsTabular):
    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.scale(x / (x.abs().max() + 1.0)))  # over the batch: samples coupled
