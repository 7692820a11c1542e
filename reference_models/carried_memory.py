"""A gated memory the caller carries between calls, as recurrent agents and streaming models
keep their state outside the module: forward takes the features and the memory, returns
the readout and the new memory, and ``reset=True`` starts a new episode from zeros. The
features and the memory are concatenated into the write and gate layers, and the gate
multiplies the memory itself.

What it proves: two arguments concatenated into one layer are split as the model takes
them. The layer sees only their sum (24), and they were given an even share each (12 and
12), on which ``g * memory`` raised and every check reported it. Where the even split
raises, the splits are tried by calling the model: 8 and 16.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CarriedMemory"]


class CarriedMemory(nn.Module):
    def __init__(self, features=8, memory=16, outputs=4):
        super().__init__()
        self.memory_size = memory
        self.write = nn.Linear(features + memory, memory)
        self.gate = nn.Linear(features + memory, memory)
        self.read = nn.Linear(memory, outputs)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, reset: bool):
        if reset:
            memory = x.new_zeros(x.size(0), self.memory_size)
        z = torch.cat([x, memory], -1)
        g = torch.sigmoid(self.gate(z))
        memory = g * memory + (1 - g) * torch.tanh(self.write(z))
        return self.read(memory), memory
