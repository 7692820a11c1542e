"""Invariant: batch_invariance

Top-1 routing with a per-expert capacity of one sample per batch, as capacity-limited
mixtures of experts do: a sample whose expert is already full is dropped (its hidden
state stays zero). Alone, every sample gets its expert; in a batch, whether it does
depends on its neighbours. dyncheck reports "sample N differs from the same sample run
alone".

A correct version has no capacity limit at inference
(``reference_models.routing.TopOneMoE``), or sizes the capacity to the batch.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=2):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList(nn.Linear(input_size, hidden_size) for _ in range(num_experts))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        probabilities = F.softmax(self.router(x), dim=-1)
        gate, choice = probabilities.max(dim=-1)
        hidden = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            chosen = (choice == index).nonzero().flatten()[:1]  # the bug: capacity 1
            if len(chosen):
                hidden[chosen] = gate[chosen, None] * F.relu(expert(x[chosen]))
        return self.head(hidden)
