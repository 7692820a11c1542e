"""Invariant: dtype_agreement

A recurrent cell run for a few refinement steps from a zero state made in forward with
torch's default dtype and device, ``torch.zeros(x.size(0), hidden_size)``: always float32
on the CPU, whatever the input. A model cast to float64 (or moved to a GPU) then fails in
the cell where the float64 input meets the float32 state. dyncheck reports the float32
tensor made in forward and names the line.

A correct version makes the state like its input: ``x.new_zeros(x.size(0), hidden_size)``
or ``torch.zeros(..., dtype=x.dtype, device=x.device)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden_size)  # BUG: float32 on the CPU, not x's dtype
        for _ in range(3):
            h = self.cell(x, h)
        return self.fc(h)
