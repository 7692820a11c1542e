"""Top-2 mixture of experts: each sample goes to its two best experts, weighted by their
softmax gates, and every expert runs only on the samples routed to it.

Not a founding model: the correct counterpart of the dense, masked mixture
(``buggy/dense_moe.py``), and the one whose gates saturate. At inputs in the hundreds the
router's softmax puts almost all weight on one expert, and in float32 the second gate
underflows to exactly 0.0 — so the second expert's output moves nothing, and float32 and
float64 may even pick different second experts among equal zero gates. Neither is a bug:
``grad_isolation`` tells a saturated gate (its gradient is not zero in float64, or at a
smaller scale) from a mask, and ``dtype_agreement`` accepts a path divergence whose outputs
and gradients agree all the same.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TopTwoMoE"]


class TopTwoMoE(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=4):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList([nn.Linear(input_size, hidden_size) for _ in range(num_experts)])
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        gates = F.softmax(self.router(x), dim=-1)
        weights, chosen = gates.topk(2, dim=-1)
        h = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            rows, slot = (chosen == index).nonzero(as_tuple=True)
            if rows.numel():
                h = h.index_add(0, rows, weights[rows, slot, None] * torch.tanh(expert(x[rows])))
        return self.head(h)
