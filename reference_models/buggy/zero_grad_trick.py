"""Invariant: grad_isolation

The gated net with the "unused parameter" trick: when fc2 is skipped, the forward adds
``0 * fc2.weight.sum()`` so that every parameter gets a gradient (a common way to quiet
DistributedDataParallel's unused-parameter error). fc2 then gets an all-zero gradient
instead of none, and SGD with momentum and AdamW's weight decay move it on steps where
it did not run. dyncheck reports the zero gradient on a skipped module, and the
optimizer step that moved it.

A correct version leaves skipped parameters out of the graph (and, under DDP, uses
``find_unused_parameters=True`` or static-graph settings instead).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        else:
            x = x + 0 * (self.fc2.weight.sum() + self.fc2.bias.sum())  # the bug
        return self.fc3(x)
