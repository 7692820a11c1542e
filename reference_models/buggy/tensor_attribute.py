"""Invariant: dtype_agreement

A fixed centering matrix kept in a plain attribute, ``self.centering = torch.eye(n) - 1 / n``,
not registered as a buffer. ``model.to(torch.float64)`` (and ``.to("cuda")``, ``.half()``)
casts and moves parameters and buffers only, so the matrix stays float32 on the CPU and
the cast model fails where it meets it: ``expected m1 and m2 to have the same dtype``.
dyncheck reports that the cast did not reach ``centering``, a float32 tensor kept in a
plain attribute.

A correct version registers it: ``self.register_buffer("centering", torch.eye(n) - 1 / n)``
(``persistent=False`` keeps it out of the state_dict).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.centering = torch.eye(hidden_size) - 1.0 / hidden_size  # BUG: not a buffer

    def forward(self, x):
        h = torch.relu(self.fc1(x)) @ self.centering
        return self.fc2(h)
