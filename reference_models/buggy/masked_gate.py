"""Invariant: grad_isolation

The gated net, with the gate applied as a mask instead of a branch: fc2 always runs and
its result is multiplied by 0 when ``control <= 0.5``. The output is the same as the
correct model's, but fc2's work is thrown away, it gets all-zero gradients, and an
optimizer with momentum or weight decay still moves it. dyncheck reports "fc2 ran but
did not influence the output".

A correct version skips fc2 (``if control > 0.5: x = F.relu(self.fc2(x))``), as
``reference_models.gated.DynamicNet`` does.
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
        gate = (control > 0.5).float()
        x = gate * F.relu(self.fc2(x)) + (1 - gate) * x  # the bug: masked, not skipped
        return self.fc3(x)
