"""Invariant: determinism, batch_invariance

A self-attention layer for incremental decoding that, in eval mode, keeps the number of
steps it has seen on the module and numbers each call's steps from there (its positions
continue the previous call's), never reset: the same input twice gives two outputs, and a
sample alone, run after the batch, is numbered after the batch's steps. In train mode every
call is numbered from 0, which is all that determinism compared before (its eval-mode calls
are compared too where the model's own code reads ``self.training``). A correct version
takes the number of past steps as an argument (``past_key_values``' length) and returns the
new one, or resets it at the start of every sequence.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size=6, hidden_size=8, output_size=4, max_positions=256):
        super().__init__()
        self.embed = nn.Linear(input_size, hidden_size)
        self.positions = nn.Embedding(max_positions, hidden_size)
        self.attention = nn.MultiheadAttention(hidden_size, 2, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.seen = 0

    def forward(self, x):
        start = 0 if self.training else self.seen
        steps = torch.arange(start, start + x.shape[1]) % self.positions.num_embeddings
        if not self.training:
            self.seen += x.shape[1]  # the bug: never reset
        h = self.embed(x) + self.positions(steps)
        return self.out(self.attention(h, h, h, need_weights=False)[0])
