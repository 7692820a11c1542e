"""A net that applies its hidden layer a random number of times on every call.

Source: founding document 001, a Chinese article on PyTorch's dynamic graphs and weight
sharing. Its example of a dynamic network adds "0 to 3 hidden layers at random" inside
``forward``: one ``hidden_layer`` is applied ``random.randint(0, 3)`` times.

What is dynamic: the depth (0, 1, 2 or 3 applications of ``hidden_layer``) is drawn on
every call, so the same input takes different paths from call to call.

Notable:

* The depth comes from Python's ``random`` module, not from torch's RNG, so
  ``torch.manual_seed`` alone does not make the model repeatable; ``random.seed`` must be
  set too. A checker that seeds every global RNG (Python, NumPy, torch) sees a
  deterministic model.
* The repeated layer is one module, so its weight is reused (shared) across the depth:
  with depth 2 or 3 its gradient is the sum over all the applications.
* With depth 0 ``hidden_layer`` does not run and must receive no gradient.
"""

from __future__ import annotations

import random

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DynamicNet"]


class DynamicNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.input_layer = nn.Linear(input_size, hidden_size)
        self.hidden_layer = nn.Linear(hidden_size, hidden_size)
        self.output_layer = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = F.relu(self.input_layer(x))
        for _ in range(random.randint(0, 3)):  # add 0 to 3 hidden layers at random
            x = F.relu(self.hidden_layer(x))
        x = self.output_layer(x)
        return x
