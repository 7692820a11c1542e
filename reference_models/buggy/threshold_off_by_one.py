"""Invariant: grad_isolation

The gated net, written with ``>=`` where the design says ``>``: the spec declares
"fc2 runs exactly when control > 0.5", but the code also runs it at exactly 0.5. Every
example but one value agrees, which is why such a bug survives ordinary tests; dyncheck
tries each declared threshold's exact value and reports "fc2 ran although its branch
predicate `control > 0.5` does not hold for control=tensor([0.5])".

A correct version compares the way the spec says (``control > 0.5``).
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    __dyncheck__ = {"branches": {"fc2": lambda control: control > 0.5}}

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        if control >= 0.5:  # the bug: the spec says > 0.5
            x = F.relu(self.fc2(x))
        return self.fc3(x)
