"""Invariant: state_roundtrip, dtype_agreement

Residual blocks kept in a plain Python list, ``self.blocks = [nn.Linear(...), ...]``, not
an ``nn.ModuleList``: they are no submodules, so ``state_dict()``, ``parameters()`` and
``.to()`` do not reach them. A checkpoint does not hold them (a model built in another
process and loaded computes something else), an optimizer never trains them, and a cast to
float64 leaves them in float32. dyncheck reports "blocks: 2 modules (Linear) in a plain
list, not registered as submodules" (state_roundtrip) and "model.to(torch.float64) did not
reach blocks[0].weight, ... a module kept in a plain list" (dtype_agreement).

A correct version holds them in ``nn.ModuleList``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size=8, hidden_size=12, output_size=4, depth=2):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.blocks = [nn.Linear(hidden_size, hidden_size) for _ in range(depth)]  # the bug: a plain list
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.out(h)
