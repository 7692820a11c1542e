"""A deep pre-norm stack on image patches, as timm builds PVT v2 and other pyramid
transformers: a patch embedding and every block's layers start with zero biases, and each
block is ``x + mlp(norm(x))`` with a LayerNorm of eps 1e-6.

What it proves: a float32 overflow that normalisation layers' constant inputs cause is
not a float32/float64 disagreement of the model's. On an all-zero image every patch
embeds to zeros and stays zero through the stack, so every LayerNorm normalises a constant
vector and its backward multiplies the gradient by up to ``1 / sqrt(eps)`` = 1000: after 20
blocks float32's gradients are inf and NaN while float64's are finite. LayerNorm does this
in eval mode too, where ``dtype_agreement`` runs, which reported it (timm's ``pvt_v2_b0``,
30 LayerNorms, on an all-zero 29x29 image); ``finite`` and ``grad_isolation`` already left
such an example's gradients alone. Now ``dtype_agreement`` does too, and compares the
outputs.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PreNormStack"]


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class PreNormStack(nn.Module):
    def __init__(self, patch: int = 4, dim: int = 8, depth: int = 20, classes: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.Sequential(*(_Block(dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.zeros_(module.bias)  # timm's init_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(1))
