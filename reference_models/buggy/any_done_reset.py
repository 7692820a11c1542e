"""Invariant: batch_invariance

``EpisodeLSTMAgent`` whose reset zeroes every environment's state when any environment's
episode ends (``1.0 - d.max()``): an environment's actions depend on the others batched
with it. The correct version zeroes each environment's own state by its own flag
(``reference_models/episode_lstm.py``).
"""

from __future__ import annotations

import torch

from reference_models.episode_lstm import EpisodeLSTMAgent

__all__ = ["Model"]


class Model(EpisodeLSTMAgent):
    def reset(self, d: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return (1.0 - d.max()) * state  # BUG: any environment's flag resets them all
