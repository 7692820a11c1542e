"""Invariant: tied_weights, state_roundtrip

The tied language model with the tie made lazily, on the first forward call. Until then
the model has two matrices: an optimizer built before the first batch holds the old
decoder weight (which then never reaches the output), and ``load_state_dict`` into a fresh
instance loads two separate matrices. dyncheck reports "forward changed which Parameter
decoder.weight is". A fresh copy loaded from the state_dict is untied until its own first
call, so ``state_roundtrip`` notices as well.

A correct version ties in ``__init__``.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        if self.decoder.weight is not self.encoder.weight:
            self.decoder.weight = self.encoder.weight  # the bug: tied in forward, not in __init__
        hidden, _ = self.rnn(self.encoder(tokens))
        return self.decoder(hidden)
