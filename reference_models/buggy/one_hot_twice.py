"""Invariant: coverage

A gated mixture of experts whose dispatch one-hot encodes the router's choice twice, as
``transformers`` 5.x's NLLB-MoE does: its router returns the top-1 choice as a one-hot
mask, and its experts one-hot that mask again, reading its 0/1 entries as expert indices.
Expert 0 gets every token (weighted by the probabilities of the experts not chosen),
expert 1 every token (weighted by the chosen one's), and experts 2 and 3 never run, on any
input. Nothing else is wrong: each call is a smooth, deterministic, per-sample function,
so every other check passes; only ``coverage``, which counts what never ran, sees it:
"experts.2 ... never ran".

A correct version dispatches on the index (``probs.argmax(-1)``), or reads the mask's
column per expert (``mask[:, index]``), as :mod:`reference_models.routing` does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_experts=4):
        super().__init__()
        self.router = nn.Linear(input_size, num_experts)
        self.experts = nn.ModuleList(nn.Linear(input_size, hidden_size) for _ in range(num_experts))
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        probs = self.router(x).softmax(dim=-1)
        chosen = F.one_hot(probs.argmax(dim=-1), len(self.experts))  # [batch, experts], one-hot
        # BUG: one-hot of a one-hot mask: its entries (0 or 1) are taken for expert indices.
        dispatch = F.one_hot(chosen, len(self.experts)).permute(2, 1, 0)  # [expert, slot, batch]
        hidden = x.new_zeros(x.shape[0], self.head.in_features)
        for index, expert in enumerate(self.experts):
            slot, rows = torch.where(dispatch[index])
            if rows.numel():
                hidden = hidden.index_add(0, rows, F.relu(expert(x[rows])) * probs[rows, slot, None])
        return self.head(hidden)
