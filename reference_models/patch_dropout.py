"""A vision transformer with timm's patch dropout (EVA, ViT with ``patch_drop_rate``): in
training, each image keeps a random subset of its patches, and a helper picks the rows of
the positional table that the kept patches had with ``gather``.

What it proves: an argument is read as indices only when it is itself the index. In EVA's
``_pos_embed``, ``x, keep_indices = self.patch_drop(x)`` gives a name computed from the
image, and a helper then gathers the rotary table by it; the input was read as "indices
into another input" and timm's ``Eva`` refused with a Spec for an ``edge_index``. What a
submodule returns is now not taken for the argument, nor what a slot the configuration
left empty (``self.patch_drop = None`` at rate 0) would return; index arithmetic on the
argument itself (``torch.cat([edge_index, edge_index.flip(0)], 1)``) still is.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PatchDropViT"]


def keep_rows(x: torch.Tensor, table: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """timm's ``apply_keep_indices_nlc``: the rows of ``table`` (one per patch) that the
    patches ``keep`` kept, for each sample of ``x``."""
    table = table.unsqueeze(0).expand(x.shape[0], -1, -1)
    keep = keep.unsqueeze(-1).expand(-1, -1, table.shape[-1])
    return table.gather(1, keep)


class _PatchDropout(nn.Module):
    """Keeps a random ``1 - prob`` of each sample's patches in training (timm's
    ``PatchDropout``); returns the kept patches and their indices (None in eval)."""

    def __init__(self, prob: float) -> None:
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.training or self.prob == 0.0:
            return x, None
        count = max(1, int(x.shape[1] * (1.0 - self.prob)))
        keep = torch.argsort(torch.randn(x.shape[0], x.shape[1], device=x.device), dim=-1)[:, :count]
        keep = keep.sort(dim=-1).values
        return x.gather(1, keep.unsqueeze(-1).expand(-1, -1, x.shape[-1])), keep


class PatchDropViT(nn.Module):
    def __init__(self, image: int = 8, patch: int = 4, dim: int = 8, classes: int = 3, patch_drop: float = 0.5) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        patches = (image // patch) ** 2
        position = torch.arange(patches, dtype=torch.float32)[:, None]
        frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(100.0) / dim))
        table = torch.cat([torch.sin(position * frequency), torch.cos(position * frequency)], dim=-1)
        self.register_buffer("pos_table", table, persistent=False)
        # timm leaves the slot empty when the rate is 0
        self.patch_drop = _PatchDropout(patch_drop) if patch_drop > 0 else None
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.pos_table
        if self.patch_drop is not None:
            x, keep_indices = self.patch_drop(x)
            if keep_indices is not None:
                pos = keep_rows(x, pos, keep_indices)
        return x + pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = self._pos_embed(x)
        x = x + self.mlp(self.norm(x))
        return self.head(x.mean(1))
