"""Invariant: grad_isolation

The gated net with ``detach()`` in the wrong place: the branch's input is detached, so
whenever fc2 runs, fc1 is cut off from the output and learns nothing on that path. The
forward values are right; only the gradients are wrong, and only on one path. dyncheck
reports "fc1 ran, but fc1.weight, fc1.bias are not connected to the output".

A correct version does not detach (``x = F.relu(self.fc2(x))``).
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
            x = F.relu(self.fc2(x.detach()))  # the bug: cuts fc1 off on this path
        return self.fc3(x)
