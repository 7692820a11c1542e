"""A mixture of experts with top-1 routing, each sample weighted by its gate.

Not one of the founding documents: the correct counterpart of the routing bugs in
``buggy/`` (a router that gets no gradient, experts run densely and masked away).

What is dynamic: each sample is routed to one expert, so which experts run depends on
the batch. An expert no sample chose does not run and gets no gradient; each expert that
runs sees only its samples. The router is trained through the gate: the chosen expert's
output is multiplied by the router's probability for it, so the router's parameters are
connected to the output although the choice itself (an argmax) is not differentiable.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TopOneMoE"]


class TopOneMoE(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=3):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList(nn.Linear(input_size, hidden_size) for _ in range(num_experts))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        probabilities = F.softmax(self.router(x), dim=-1)
        gate, choice = probabilities.max(dim=-1)
        hidden = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            chosen = choice == index
            if chosen.any():  # an expert no sample chose does not run
                hidden[chosen] = gate[chosen, None] * F.relu(expert(x[chosen]))
        return self.head(hidden)
