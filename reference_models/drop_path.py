"""Residual blocks with a squeeze-excite gate and stochastic depth as timm builds them
(MobileNetV3, EfficientNet, ConvNeXt): in training, each block's branch is multiplied per
sample by a random keep mask (``DropPath``), so a batch whose every sample drew "drop"
computes the branch and throws it away.

What it proves: a module a random draw masked away on one example is not called a
masking bug because another example of the same sizes showed it used. A batch of
identical rows makes each block's train-mode BatchNorm output zero, so the gate it
multiplies cannot move the output: ``grad_isolation`` looks for another example of the
same sizes where it does, finds one (other rows), and kept that answer for the later
examples of those sizes. On a later example whose seed drops every sample of a block, the
gate was then reported as "masked away" — timm's ``mobilenetv3_small_050`` with
``drop_path_rate=0.2`` drew that false alarm on a batch of two all-zero 1x1 images. The
answer is now kept per seed for a model that draws random numbers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPathNet"]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """timm's ``drop_path``: each sample's branch kept with probability ``1 - p`` (and
    scaled by its inverse), or zeroed."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


class _Block(nn.Module):
    def __init__(self, dim: int, drop: float) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.BatchNorm1d(2 * dim)
        self.gate = nn.Linear(2 * dim, 2 * dim)  # squeeze-excite: a sigmoid gate on the features
        self.project = nn.Linear(2 * dim, dim, bias=False)
        self.drop = drop

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.expand(h)))
        y = y * torch.sigmoid(self.gate(y))
        return h + drop_path(self.project(y), self.drop, self.training)


class DropPathNet(nn.Module):
    def __init__(self, dim: int = 4, depth: int = 2, drop: float = 0.5, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Linear(dim, dim, bias=False)
        self.blocks = nn.ModuleList(_Block(dim, drop) for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)
