"""Invariant: episode_reset

``EpisodeLSTMAgent`` whose reset is missing: the LSTM's state is handed on as it is where a
``done`` flag says a new episode starts, so one episode's memory leaks into the next. The
model stays deterministic, its environments apart and its gradients finite: only a check
that flags every step and changes the state passed in sees it. The correct version zeroes
each environment's state by its own flag (``reference_models/episode_lstm.py``).
"""

from __future__ import annotations

import torch

from reference_models.episode_lstm import EpisodeLSTMAgent

__all__ = ["Model"]


class Model(EpisodeLSTMAgent):
    def reset(self, d: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return state  # BUG: the state is not zeroed where an episode starts
