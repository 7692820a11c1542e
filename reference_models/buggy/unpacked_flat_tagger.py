"""Invariant: padding_invariance

``FlatTagger`` whose bidirectional LSTM runs over the padded batch, not packed: the
backward direction starts in the padding, so every valid step's tag scores depend on the
padding after it, though the output keeps only the valid steps. The correct version packs
by the lengths (``reference_models/flat_tagger.py``).
"""

from __future__ import annotations

import torch

from reference_models.flat_tagger import FlatTagger

__all__ = ["Model"]


class Model(FlatTagger):
    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # over the padding too
        return out
