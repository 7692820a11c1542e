"""Invariant: tied_weights

The tied language model with the tie made by cloning:
``self.decoder.weight = nn.Parameter(self.encoder.weight.clone())``. The two matrices start
equal, so every test of the untrained model passes, but they are two Parameters with two
gradients and two optimizer states, and drift apart at the first step. dyncheck reports
"encoder.weight and decoder.weight hold identical values but are two Parameters".

A correct version ties the Parameter itself: ``self.decoder.weight = self.encoder.weight``,
as ``reference_models.tied_lm.TiedLanguageModel`` does.
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
        self.decoder.weight = nn.Parameter(self.encoder.weight.clone())  # the bug: a copy, not a tie

    def forward(self, tokens):
        hidden, _ = self.rnn(self.encoder(tokens))
        return self.decoder(hidden)
