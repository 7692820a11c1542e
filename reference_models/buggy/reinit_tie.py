"""Invariant: tied_weights

The tied language model whose ``init_weights()``, called after the tie, assigns a fresh
Parameter to the decoder (``self.decoder.weight = nn.Parameter(...)``) instead of filling
the shared one in place. The tie is gone before training starts and nothing fails. The
model declares the tie it means (``__dyncheck__ = {"ties": [...]}``), and dyncheck
reports "decoder.weight broke away from encoder.weight".

A correct version initialises in place (``nn.init.uniform_(self.encoder.weight, ...)``),
or ties after initialising.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    __dyncheck__ = {"ties": [("decoder.weight", "encoder.weight")]}

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self.decoder.weight = self.encoder.weight
        self.init_weights()

    def init_weights(self):
        self.encoder.weight.data.uniform_(-0.1, 0.1)
        # the bug: a new Parameter replaces the shared one under one of its names
        self.decoder.weight = nn.Parameter(torch.empty_like(self.decoder.weight).uniform_(-0.1, 0.1))

    def forward(self, tokens):
        hidden, _ = self.rnn(self.encoder(tokens))
        return self.decoder(hidden)
