"""A mixture of experts that loops over its experts and calls each on its slice.

Not a founding model: the form real mixture-of-experts layers often take. Each sample goes
to its best expert, weighted by the router's probability for it; every expert is called on
``x[idx]``, the rows routed to it, even when no row was (an empty slice). An expert called
on an empty slice did no work: it is neither a branch that ran and was masked away nor one
that was skipped, and ``grad_isolation`` must report nothing about it.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LoopMoE"]


class LoopMoE(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=4):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList([nn.Linear(input_size, hidden_size) for _ in range(num_experts)])
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        probabilities = F.softmax(self.router(x), dim=-1)
        gate, choice = probabilities.max(dim=-1)
        h = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            idx = (choice == index).nonzero(as_tuple=True)[0]  # may be empty
            h = h.index_add(0, idx, gate[idx, None] * F.relu(expert(x[idx])))
        return self.head(h)
