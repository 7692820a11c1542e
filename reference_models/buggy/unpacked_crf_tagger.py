"""Invariant: padding_invariance

``MaskedCRFTagger`` whose bidirectional LSTM runs over the padded batch as it is, not
packed: the backward direction starts at the last padding step, so every valid step's
emissions depend on the padding after it, although the CRF masks the padding out (a
BiLSTM-CRF tagger as it is often written with pytorch-crf). The correct version packs the
embeddings by the mask's lengths (``reference_models/masked_crf.py``).

No call tells this model's mask from a mask that is not padding (three steps padded to
five change the output under either polarity): inference draws it as any pattern, not
taken for padding (for pytorch-crf's ``CRF``, which refuses other patterns, the error
gives the Spec line). The class declares it, as a user pastes that line.
"""

from __future__ import annotations

import torch

from dyncheck.strategies import attention_masks
from reference_models.masked_crf import MaskedCRFTagger

__all__ = ["Model"]


class Model(MaskedCRFTagger):
    __dyncheck__ = {"inputs": {"mask": attention_masks(dtype=torch.bool)}}

    def forward(self, tokens: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.embedding(tokens))  # over the padding too
        return -self.crf(self.emissions(h), tags, mask)
