"""Invariant: tied_weights

An embedding and an output projection "tied" by a transposed copy: the encoder is
``nn.Embedding(vocab, hidden)`` (weight ``[vocab, hidden]``) and the output projection,
applied as ``h @ self.output_weight``, is made as
``nn.Parameter(self.encoder.weight.t().clone())`` (``[hidden, vocab]``). The values match
at the start, but they are two Parameters that train apart. dyncheck reports
"output_weight is a transposed copy of encoder.weight".

A correct version uses the embedding's Parameter itself, transposed in forward:
``h @ self.encoder.weight.t()`` (or ``F.linear(h, self.encoder.weight)``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.hidden = nn.Linear(hidden_size, hidden_size)
        self.output_weight = nn.Parameter(self.encoder.weight.t().clone())  # the bug
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, tokens):
        h = torch.tanh(self.hidden(self.encoder(tokens)))
        return h @ self.output_weight + self.output_bias
