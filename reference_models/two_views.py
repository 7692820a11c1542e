"""A contrastive model that scores each sample's views of itself against its first view.

SimCLR-style code hands the model a list of batches, one per augmented view of the same
samples (``forward(views: list[Tensor])``, each ``[batch, features]``), encodes each, L2-
normalises every embedding over its features and returns, per sample, the mean cosine
similarity of its other views to its first.

What it proves: a list of tensors is not always a batch of sequences. Zero-config, the
model runs on no list of sequences of their own lengths; it runs on lists of equal batches
and gives one row per sample, so the list is inferred as per-view batches
(``lists(tensors(shape=("batch", 6)), min_size=2, max_size=3)``), and ``batch_invariance``
cuts every view to the same samples. Read as a list of sequences before, every check
crashed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TwoViewContrast"]


class TwoViewContrast(nn.Module):
    def __init__(self, input_size=6, hidden_size=8, output_size=4):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, output_size))

    def embed(self, view: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(view), dim=-1)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        first, *others = [self.embed(view) for view in views]
        return torch.stack([(first * other).sum(-1) for other in others]).mean(0)
