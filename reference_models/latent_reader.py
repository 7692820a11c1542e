"""LatentReader: learned latents cross-attend to the input (a Perceiver's encoder), which
reaches its block as a keyword, ``self.block(latents, context=data)``.

Not a founding model: the counterpart of a false alarm on perceiver-pytorch. The input's
first layer, a ``LayerNorm(6)``, takes any rank, and vectors ``[batch, 6]`` ran: the keys
made of them were ``[batch, 16]``, so every latent attended to every sample, and
``batch_invariance`` failed a correct model. On vectors of a number of rows no size of the
model has, the attention scores ``[batch, 4, batch]`` have that number twice: the rows are
used as a sequence's steps, and on sequences ``[batch, time, 6]`` each sample's outputs are
its own, so it is drawn as sequences (``dyncheck.target._batch_axis_twice``). Rows coupled
by a mean or a norm over them stay rows for ``batch_invariance`` to report.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LatentReader"]


class CrossBlock(nn.Module):
    def __init__(self, dim: int = 16, context_dim: int = 6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(context_dim, 2 * dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q = self.to_q(self.norm(x))
        k, v = self.to_kv(self.norm_context(context)).chunk(2, dim=-1)
        attention = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1)
        return x + attention @ v


class LatentReader(nn.Module):
    def __init__(self, num_latents: int = 4, dim: int = 16, context_dim: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.block = CrossBlock(dim, context_dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        latents = self.latents.expand(data.shape[0], -1, -1)
        return self.head(self.block(latents, context=data).mean(1))
