"""Invariant: padding_invariance

``FeatureChain`` whose pooling module weighs every position alike, the padding included,
while still dividing by the tokens the mask counts: a sentence's embedding moves with the
padding after it. The correct version weighs the tokens by the attention mask
(``reference_models/feature_chain.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from reference_models.feature_chain import FeatureChain, MeanPooling

__all__ = ["Model"]


class _UnmaskedPooling(MeanPooling):
    def weights(self, features: dict[str, Any]) -> torch.Tensor:
        return torch.ones_like(features["token_embeddings"][..., :1])  # BUG: the padding weighs in


class Model(FeatureChain):
    def __init__(self, vocab: int = 20, dim: int = 8) -> None:
        super().__init__(vocab, dim, pooling=_UnmaskedPooling)
