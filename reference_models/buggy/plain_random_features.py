"""Invariant: state_roundtrip

Random Fourier features (as in NeRF-style positional encodings and Gaussian-kernel
approximations) with the random projection kept as a plain attribute,
``self.B = torch.randn(...)``, not a buffer. It is drawn when the model is built and is not
in the state_dict: a model built in another process and loaded from a checkpoint has
another ``B`` and computes something else. dyncheck builds its fresh copy under another
seed, as another process would, and reports "attributes that differ ... B (a float32[8, 8]
tensor)".

A correct version registers it, ``self.register_buffer("B", torch.randn(...))``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size=8, hidden_size=8, output_size=4):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.B = torch.randn(hidden_size, hidden_size) * 3.0  # the bug: lost on save and load
        self.fc = nn.Linear(2 * hidden_size, output_size)

    def forward(self, x):
        z = self.fc1(x) @ self.B.to(x)
        return self.fc(torch.cat([z.sin(), z.cos()], dim=-1))
