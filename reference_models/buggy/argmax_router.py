"""Invariant: grad_isolation

A mixture of experts whose router chooses by ``argmax`` and whose chosen expert's output
is used as is: the router runs on every call but nothing connects it to the output, so
it never learns. dyncheck reports "router ran, but router.weight, router.bias are not
connected to the output through autograd".

A correct version weights each sample's expert output by the router's probability for
it (the gate), as ``reference_models.routing.TopOneMoE`` does.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=3):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList(nn.Linear(input_size, hidden_size) for _ in range(num_experts))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        choice = self.router(x).argmax(dim=-1)  # the bug: no gate weights the experts
        hidden = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            chosen = choice == index
            if chosen.any():
                hidden[chosen] = F.relu(expert(x[chosen]))
        return self.head(hidden)
