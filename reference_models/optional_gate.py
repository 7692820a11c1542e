"""OptionalGateNet: the founding gated net with its control made optional,
``forward(x, control: float = 0.0)``, ``if control > 0.5`` running a second layer, as
callers who mostly take one path write it.

Not a founding model: the counterpart of a misreading of such signatures. Only required
arguments were inferred, so the control stayed at its default in every example: the gated
layer never ran, ``coverage`` failed the correct model with its parameters "dead", and every
bug behind the gate (``buggy/optional_gate_batch_mean.py``) was missed. An optional argument
named like a control, with a plain default, that forward branches on is now drawn as the
control it is (``dyncheck.infer.forward.optional_control``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OptionalGateNet"]


class OptionalGateNet(nn.Module):
    def __init__(self, input_size: int = 6, hidden_size: int = 8, output_size: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def gated(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc2(h))

    def forward(self, x: torch.Tensor, control: float = 0.0) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        if control > 0.5:
            h = self.gated(h)
        return self.out(h)
