"""Invariant: grad_isolation

A mixture of experts that takes the router's top-1 logit first and applies the softmax
after, over that single value: the gate is ``softmax([z]) = 1`` whatever ``z`` is. The
router still decides every routing (moving its weights sends samples to other experts), but
its gradient is exactly zero on every example: a router that never learns. Nothing else
looks wrong: the experts run only on their rows, and the output is finite and
deterministic. dyncheck reports "router.weight, router.bias change the output when moved
but received an exactly-zero gradient on all N examples".

A correct version takes the softmax over all experts first and top-1 of the
probabilities, as ``reference_models.loop_moe.LoopMoE`` does.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=4):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList([nn.Linear(input_size, hidden_size) for _ in range(num_experts)])
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        top, choice = self.router(x).topk(1, dim=-1)
        gate = F.softmax(top, dim=-1)[:, 0]  # the bug: a softmax over one value is always 1
        choice = choice[:, 0]
        h = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            idx = (choice == index).nonzero(as_tuple=True)[0]
            h = h.index_add(0, idx, gate[idx, None] * F.relu(expert(x[idx])))
        return self.head(h)
