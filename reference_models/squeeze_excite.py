"""Residual blocks with a squeeze-excite gate whose reduction is followed by an in-place
ReLU, as timm builds MobileNetV3's, GhostNet's and EfficientNet's (``nn.ReLU(inplace=True)``
after ``conv_reduce``), behind a train-mode BatchNorm.

What it proves: a module whose output an in-place activation overwrites still counts as
reached by the output's gradient. ``grad_isolation`` follows gradients to module outputs;
it used to ask autograd for the gradient of the tensor the module returned, which after
``relu_`` stands for the activation's output: the engine stopped there and the reduction
was never reached. On a batch of identical rows (the BatchNorm gives zeros, and the gate
multiplies zeros) ``reduce`` was then called "masked away" — timm's ``ghostnet_050`` drew
that false alarm on two all-zero 1x1 images. The gradient is now asked where the module's
output entered the graph.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SqueezeExciteNet"]


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Linear(channels, reduced)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Linear(reduced, channels)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(x))))


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.BatchNorm1d(2 * dim)
        self.se = _SqueezeExcite(2 * dim, dim)
        self.project = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.project(self.se(torch.relu(self.norm(self.expand(h)))))


class SqueezeExciteNet(nn.Module):
    def __init__(self, dim: int = 4, depth: int = 2, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Linear(dim, dim, bias=False)
        self.blocks = nn.Sequential(*(_Block(dim) for _ in range(depth)))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
