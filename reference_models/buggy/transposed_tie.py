"""Invariant: tied_weights

An input projection and an output projection "tied" by a transposed copy: the encoder is
``nn.Linear(vocab, hidden)`` (weight ``[hidden, vocab]``) and the decoder gets
``nn.Parameter(self.encoder.weight.t().clone())`` (``[vocab, hidden]``). The values match
at the start, but they are two Parameters that train apart. dyncheck reports
"decoder.weight is a transposed copy of encoder.weight".

A correct version uses the encoder's Parameter itself, transposed in forward:
``F.linear(h, self.encoder.weight.t(), self.decoder_bias)``.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden_size)
        self.decoder = nn.Linear(hidden_size, input_size)
        self.decoder.weight = nn.Parameter(self.encoder.weight.t().clone())  # the bug

    def forward(self, x):
        return self.decoder(self.encoder(x).tanh())
