"""A residual MLP whose blocks run under gradient checkpointing in training, as
``model.gradient_checkpointing_enable()`` makes Hugging Face models do: each block's
activations are dropped after forward and the block runs again during backward.

What it proves: with the reentrant variant (``use_reentrant=True``, Hugging Face's default
for years and that of reversible layers), the blocks' parameters are not in the output's
autograd graph at all (the checkpoint's backward runs the block again and its own backward
inside), yet they get their gradients. grad_isolation reads a parameter as cut off only
when backward gave it none: it called every block's parameters "not connected to the output
through autograd" before.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["CheckpointedMLP"]


class CheckpointedMLP(nn.Module):
    def __init__(self, input_size=8, hidden_size=12, output_size=4, blocks=2, use_reentrant=True):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, hidden_size))
            for _ in range(blocks)
        )
        self.out = nn.Linear(hidden_size, output_size)
        self.use_reentrant = use_reentrant

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for block in self.blocks:
            if self.training and torch.is_grad_enabled():  # nothing to recompute without autograd
                h = h + checkpoint(block, h, use_reentrant=self.use_reentrant)
            else:
                h = h + block(h)
        return self.out(h)
