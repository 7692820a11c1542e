"""A sequence-to-sequence model that decodes greedily inside ``forward``.

Not one of the founding documents' systems: the pattern of a translation or captioning
model's inference path (and of ``generate`` in model libraries). A GRU encodes the source
tokens; a GRU cell then emits one token per step, fed back as the next input, until every
sample in the batch has emitted the end token or ``max_steps`` is reached. A sample that
has ended emits the padding token, with zero scores, for the steps the others still take.

What is dynamic: the number of decoding steps is decided by the tokens the model emits, so
it differs per batch. A sample decoded alone stops at its own end; in a batch its row runs
on, padded past its end. batch_invariance compares the sample at its own steps and asks
that every step past them is padding (``buggy/any_ended_decoder.py`` stops the whole batch
at the first sample's end, and fails it).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GreedyDecoder", "PAD", "START", "END"]

PAD, START, END = 0, 1, 2


class GreedyDecoder(nn.Module):
    def __init__(self, vocab_size: int = 4, hidden_size: int = 12, max_steps: int = 6):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.encoder = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.cell = nn.GRUCell(hidden_size, hidden_size)
        self.scores = nn.Linear(hidden_size, vocab_size)
        self.max_steps = max_steps

    def forward(self, source):
        _, hidden = self.encoder(self.embedding(source))
        hidden = hidden[0]
        token = torch.full((source.size(0),), START, dtype=torch.long, device=source.device)
        ended = torch.zeros(source.size(0), dtype=torch.bool, device=source.device)
        tokens, scores = [], []
        while not self.finished(ended) and len(tokens) < self.max_steps:
            hidden = self.cell(self.embedding(token), hidden)
            step = self.scores(hidden)
            token = step.argmax(-1).masked_fill(ended, PAD)
            tokens.append(token)
            scores.append(step.masked_fill(ended[:, None], 0.0))
            ended = ended | (token == END)
        return torch.stack(tokens, 1), torch.stack(scores, 1)

    @staticmethod
    def finished(ended):
        """Whether decoding stops: when every sample has emitted its end token."""
        return bool(ended.all())
