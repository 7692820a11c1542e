"""An MLP as PyTorch Geometric's ``MLP`` builds one: each layer a linear layer of its own
(``F.linear`` over the weight it holds, which nn.Linear's type does not announce), then a
BatchNorm, an activation and dropout, in a loop over two ModuleLists; the last layer plain.

What it proves: zero-config inputs for a model whose first layer says nothing of its input's
width. ``x = lin(x)`` rebinds the argument's name to the layer's output, so the BatchNorm
after it (16 features) takes what the layer made of ``x``, not ``x``; the input is found
by calling the model at the sizes of its parameters (8 runs). Before, ``x`` was read as
the BatchNorm's input, ``[batch, 16]``, and every check reported the layer's shape error
(PyG's ``MLP([8, 16, 16, 4])``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FunctionalLinearMLP"]


class _Linear(nn.Module):
    """A linear layer over its own weight and bias, initialised as nn.Linear's."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(in_channels)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class FunctionalLinearMLP(nn.Module):
    def __init__(self, channels=(8, 16, 16, 4), dropout=0.1):
        super().__init__()
        self.dropout = dropout
        self.lins = nn.ModuleList(_Linear(a, b) for a, b in zip(channels[:-1], channels[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(size) for size in channels[1:-1])

    def forward(self, x):
        for lin, norm in zip(self.lins[:-1], self.norms):
            x = lin(x)
            x = norm(x)
            x = F.relu(x)
            x = F.dropout(x, p=self.dropout, training=self.training)
        return self.lins[-1](x)
