"""A small language model whose output layer shares the embedding's weight.

Not one of the founding documents' systems: the classic tied embedding/decoder language
model (embedding -> GRU -> linear, ``decoder.weight = encoder.weight``), the correct
counterpart of the tying bugs in ``buggy/``. The shared matrix is one Parameter: it gets
one gradient (the sum of both uses), one optimizer state, and one entry's worth of
updates per step. The tie needs ``hidden_size`` to equal the embedding size, so both come
from one argument.

What is dynamic: nothing in the control flow; the check that matters here is that the tie
survives training, copies, dtype round trips and state_dict loading.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["TiedLanguageModel"]


class TiedLanguageModel(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.rnn = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        self.decoder.weight = self.encoder.weight  # the tie: one Parameter, two names

    def forward(self, tokens):
        hidden, _ = self.rnn(self.encoder(tokens))
        return self.decoder(hidden)
