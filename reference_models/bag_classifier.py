"""A text classifier over an ``nn.EmbeddingBag``, in the layout of the well-known text
classification tutorials: ``forward(text, offsets)`` averages each bag's token embeddings
(the bags begin at ``offsets`` in ``text``) and classifies the mean.

Not a founding model: before, dyncheck drew ``offsets`` as a second batch of tokens beside
a ``[batch, time]`` input, which the layer refuses ("if input is 2D, then offsets has to be
None"), and every check reported that crash. An argument handed to an EmbeddingBag as its
offsets is now drawn as None, the layer's other convention: each row of the input is a bag.
Ragged bags (a flat input and its offsets, drawn together) need a Spec.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BagClassifier"]


class BagClassifier(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.fc = nn.Linear(dim, classes)
        with torch.no_grad():
            self.embedding.weight.uniform_(-0.5, 0.5)
            self.fc.weight.uniform_(-0.5, 0.5)
            self.fc.bias.zero_()

    def forward(self, text: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(text, offsets))
