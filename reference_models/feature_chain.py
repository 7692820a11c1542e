"""FeatureChain: a sentence encoder built as sentence-transformers builds one, an
``nn.Sequential`` of modules that each take a dict of features, add what they compute and
hand it on: ``WordEmbeddings`` reads ``features["input_ids"]`` and adds the token
embeddings, ``MeanPooling`` reads them with ``features["attention_mask"]`` and adds the
sentence embedding. forward loops ``for name, module in self.named_children(): features =
module(features)``.

Not a founding model: the counterpart of sentence-transformers' ``SentenceTransformer``
refused (no layer in its forward reads the dict) and, as a plain ``nn.Sequential``, inferred
from its first leaf layer as a tensor of ids: every check crashed. The argument of a chain
of modules is what its first module reads it as, a dict here, with the entries later
modules read that none before them wrote (the mask). ``buggy/unmasked_chain_pooling.py``
pools over the padding and fails ``padding_invariance``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["FeatureChain"]


class WordEmbeddings(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        features.update({"token_embeddings": self.emb(features["input_ids"])})
        return features


class MeanPooling(nn.Module):
    def weights(self, features: dict[str, Any]) -> torch.Tensor:
        return features["attention_mask"].unsqueeze(-1).to(features["token_embeddings"].dtype)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        mask = features["attention_mask"].unsqueeze(-1).to(features["token_embeddings"].dtype)
        weights = self.weights(features)
        summed = (features["token_embeddings"] * weights).sum(1)
        features["sentence_embedding"] = summed / mask.sum(1).clamp(min=1)
        return features


class FeatureChain(nn.Sequential):
    def __init__(self, vocab: int = 20, dim: int = 8, pooling: type[nn.Module] = MeanPooling) -> None:
        super().__init__(WordEmbeddings(vocab, dim), pooling())

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        for _, module in self.named_children():
            features = module(features)
        return features
