"""Invariant: grad_isolation

A mixture of experts that runs every expert on every sample and masks the results with
the one-hot choice: the output equals top-1 routing, but the experts no sample chose did
their work for nothing (and get zero gradients that optimizers still act on). dyncheck
reports "experts.N ran but did not influence the output"; the smallest example is a
batch of one, where only one expert matters.

A correct version runs each expert only on the samples routed to it, as
``reference_models.routing.TopOneMoE`` does.
"""

from __future__ import annotations

import torch
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
        probabilities = F.softmax(self.router(x), dim=-1)
        mask = F.one_hot(probabilities.argmax(dim=-1), probabilities.shape[-1]).to(x.dtype)
        outputs = torch.stack([F.relu(expert(x)) for expert in self.experts], dim=1)  # the bug
        weights = (mask * probabilities)[..., None]
        return self.head((outputs * weights).sum(dim=1))
