"""Invariant: padding_invariance

:class:`reference_models.padded_features.FeatureSequenceEncoder` (x-transformers'
``forward(x, lens=None)`` on float features) with its validity mask off by one,
``arange(time) <= lens``: each sequence's first padding step counts as valid, so every step
attends to it, and what the padding holds changes the outputs.

The correct version keeps the first ``lens`` steps only: ``arange(time) < lens``.
"""

from __future__ import annotations

import torch

from reference_models.padded_features import FeatureSequenceEncoder

__all__ = ["Model"]


class Model(FeatureSequenceEncoder):
    def valid(self, x, lens):
        return torch.arange(x.shape[1], device=x.device) <= lens[:, None]  # BUG: one padding step too many
