"""FeatureTransformer: a time-series forecaster in the layout of the "transformer for time
series" tutorials: float features ``[batch, time, features]`` projected by an ``nn.Linear``,
learned positions added, a ``batch_first=True`` ``nn.TransformerEncoder``, and a prediction
for every step. Not a founding model.

The first layer to read ``x`` is the Linear, which takes vectors as well as sequences: drawn
as vectors ``[batch, features]`` (which run: the positions are counted on axis -2), the
encoder read the batch as one unbatched sequence, its samples attended to each other, and
``batch_invariance`` reported a correct model. The
encoder after the Linear now says ``x`` is a sequence (in its layout: ``batch_first=False``
makes it ``[time, batch, features]``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FeatureTransformer"]


class FeatureTransformer(nn.Module):
    def __init__(self, features: int = 5, size: int = 8, heads: int = 2, targets: int = 3, max_len: int = 16) -> None:
        super().__init__()
        self.proj = nn.Linear(features, size)
        self.positions = nn.Embedding(max_len, size)
        layer = nn.TransformerEncoderLayer(size, heads, 2 * size, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(size, targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(x.shape[-2], device=x.device)  # [..., time, features]
        h = self.proj(x) + self.positions(steps)
        return self.head(self.encoder(h))  # [batch, time, targets]
