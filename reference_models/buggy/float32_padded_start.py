"""Invariant: padding_invariance

``Float32Recurrence`` whose layers start their state from the candidates averaged over every
step, padding included: the padding's values reach every valid step. The model runs in
float32 only, where rounding is told from a finding by two paddings of other values: here
they give other gradients. The correct version starts from zeros
(``reference_models/float32_recurrence.py``).
"""

from __future__ import annotations

import torch

from reference_models.float32_recurrence import Float32Recurrence, MaskedLayer

__all__ = ["Model"]


class PaddedStart(MaskedLayer):
    def initial_state(self, U: torch.Tensor) -> torch.Tensor:
        return U.mean(0).chunk(3, -1)[0]  # over the padded steps too


class Model(Float32Recurrence):
    def __init__(self, features: int = 8, hidden: int = 6) -> None:
        super().__init__(features, hidden)
        self.first = PaddedStart(features, hidden)
        self.second = PaddedStart(hidden, hidden)
