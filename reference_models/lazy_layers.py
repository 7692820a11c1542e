"""Lazy layers, as people write them to skip the input sizes: ``nn.LazyConv1d``,
``nn.LazyBatchNorm1d`` and ``nn.LazyLinear`` take their sizes from their first call, and one
lazy layer sits on a gated branch (``if control > 0.5``).

What it proves, zero-config:

* inference gives a lazy layer's input a fixed size (any works, but the first call fixes it
  for good), its rank from the layer: ``[batch, 3, length]`` into the convolution;
* every check works on the model as a dry run materialised it (PyTorch's own advice before
  an optimizer is made): a copy called once on the check's first example, under the build
  seed (before, coverage, tied_weights and dtype_agreement raised inside dyncheck on
  uninitialised parameters, and a lazy BatchNorm could not even be copied);
* a lazy layer the dry run did not reach (the branch) gets its weights in each copy's own
  call: dtype_agreement and device_agreement leave such an example uncompared, with the
  reason, instead of comparing two sets of weights.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

__all__ = ["LazyConvNet"]


class LazyConvNet(nn.Module):
    def __init__(self, channels=8, output_size=4):
        super().__init__()
        self.conv = nn.LazyConv1d(channels, 3, padding=1)
        self.norm = nn.LazyBatchNorm1d()
        self.fc1 = nn.LazyLinear(channels)
        self.fc2 = nn.LazyLinear(channels)
        self.out = nn.Linear(channels, output_size)

    def forward(self, x, control):
        h = F.relu(self.norm(self.conv(x))).mean(-1)
        h = F.relu(self.fc1(h))
        if control > 0.5:
            h = F.relu(self.fc2(h))
        return self.out(h)
