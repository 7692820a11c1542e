"""Invariant: grad_isolation

A residual block that runs under reentrant gradient checkpointing in training
(``checkpoint(block, h, use_reentrant=True)``, Hugging Face's ``gradient_checkpointing_enable``)
and is then masked by a per-sample gate: on a batch whose gates are all closed, the block
runs for nothing. dyncheck reports "block ran but did not influence the output". The
checkpoint runs the block without autograd in forward and again, with it, inside backward,
so the block's outputs are seen only there; a check that looked at them in forward missed it.

A correct version runs the block only on the samples whose gate is open (or checkpoints the
whole residual step, gate included, as ``reference_models.checkpointed.CheckpointedMLP`` does
with an ungated one).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size=8, hidden_size=12, output_size=4):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.block = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh())
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        if self.training and torch.is_grad_enabled():
            b = checkpoint(self.block, h, use_reentrant=True)
        else:
            b = self.block(h)
        gate = (x.sum(-1, keepdim=True) > 0).to(h.dtype)  # the bug: computed, then masked away
        return self.out(h + gate * b)
