"""Invariant: padding_invariance

``MaskedCRFTagger`` whose bidirectional LSTM runs over the padded batch as it is, not
packed: the backward direction starts at the last padding step, so every valid step's
emissions depend on the padding after it, although the CRF masks the padding out (a
BiLSTM-CRF tagger as it is often written with pytorch-crf). The correct version packs the
embeddings by the mask's lengths (``reference_models/masked_crf.py``).
"""

from __future__ import annotations

import torch

from reference_models.masked_crf import MaskedCRFTagger

__all__ = ["Model"]


class Model(MaskedCRFTagger):
    def forward(self, tokens: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embedding(tokens))  # over the padding too
        return -self.crf(self.emissions(h), tags, mask)
