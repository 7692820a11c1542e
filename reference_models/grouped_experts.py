"""A mixture of experts run through a grouped matmul, with a switch to plain matmuls.

Hugging Face's MoE models (Mixtral, Qwen3-MoE, ...) run their experts by default through
``torch.nn.functional.grouped_mm``: every token's copy sorted by the expert it was routed
to, then one kernel call multiplies each group by its own expert's weights. The kernel takes
float32, bfloat16 and float16 only. Their config's ``_experts_implementation`` names the
kernel, and ``model.set_experts_implementation("eager")`` switches to a loop of plain matmuls
over the experts, which takes float64. A tiny faithful form: the same API, top-2 routing
per sample, each expert a two-layer MLP held as stacked weights.

What it proves: such a model is not buggy. ``dtype_agreement`` has no float64 reference on
the grouped kernel and skips, naming the kernel and the switch that gives it one; with the
switch set to ``"eager"`` it compares and passes; every other check passes either way.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GroupedExpertsMoE"]


class GroupedExpertsMoE(nn.Module):
    def __init__(self, input_size=8, hidden_size=16, output_size=4, num_experts=4, top_k=2):
        super().__init__()
        # grouped_mm needs each row's stride a multiple of 16 bytes: widths multiple of 4.
        self.config = SimpleNamespace(_experts_implementation="grouped_mm")
        self.top_k = top_k
        self.router = nn.Linear(input_size, num_experts, bias=False)
        self.up = nn.Parameter(torch.randn(num_experts, input_size, hidden_size) / math.sqrt(input_size))
        self.down = nn.Parameter(torch.randn(num_experts, hidden_size, input_size) / math.sqrt(hidden_size))
        self.head = nn.Linear(input_size, output_size)

    def get_experts_implementation(self) -> dict[str, str]:
        return {"": self.config._experts_implementation}

    def set_experts_implementation(self, implementation: str) -> None:
        if implementation not in ("grouped_mm", "eager"):
            raise ValueError(f"unknown experts implementation {implementation!r}")
        self.config._experts_implementation = implementation

    def forward(self, x):
        weights, experts = self.router(x).softmax(-1).topk(self.top_k, dim=-1)
        # Each sample's top_k copies, sorted by the expert they go to (stable: in sample order).
        routed = experts.reshape(-1)
        order = routed.argsort(stable=True)
        tokens = x.repeat_interleave(self.top_k, dim=0)[order]
        counts = torch.bincount(routed, minlength=self.up.shape[0])
        if self.config._experts_implementation == "grouped_mm":
            ends = counts.cumsum(0).to(torch.int32)
            hidden = F.gelu(F.grouped_mm(tokens, self.up, offs=ends))
            out = F.grouped_mm(hidden, self.down, offs=ends)
        else:
            pieces = []
            for expert, rows in enumerate(tokens.split(counts.tolist())):
                pieces.append(F.gelu(rows @ self.up[expert]) @ self.down[expert])
            out = torch.cat(pieces)
        # Back to sample order, each copy weighted by its gate.
        unsorted = torch.empty_like(out).index_copy(0, order, out)
        mixed = (unsorted.view(x.shape[0], self.top_k, -1) * weights.unsqueeze(-1)).sum(1)
        return self.head(x + mixed)
