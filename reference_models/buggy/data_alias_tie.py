"""Invariant: tied_weights

The tied language model with the tie made through ``.data``:
``self.decoder.weight.data = self.encoder.weight.data``. The two Parameters share one
storage, so their values are always equal and every check of the values passes, but each
has its own gradient and optimizer state: every step updates the shared storage twice
(and Adam's statistics for one matrix are split across two). dyncheck reports
"encoder.weight and decoder.weight are two Parameters sharing one storage".

A correct version ties the Parameter: ``self.decoder.weight = self.encoder.weight``.
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
        self.decoder.weight.data = self.encoder.weight.data  # the bug: shares storage, not the Parameter

    def forward(self, tokens):
        hidden, _ = self.rnn(self.encoder(tokens))
        return self.decoder(hidden)
