"""The decoder of a sequence-to-sequence model with additive (Bahdanau) attention, in the
layout of the well-known translation tutorials: ``forward(encoder_outputs, encoder_hidden)``
takes the encoder's outputs ``[batch, time, hidden]`` and its last hidden state
``[1, batch, hidden]``, and decodes greedily for a fixed number of steps, each step's query
being the GRU's hidden state turned batch first (``hidden.permute(1, 0, 2)``).

Not a founding model: before, dyncheck read ``encoder_hidden`` as the attention's input
(the first layer it reaches, through the permute) and drew it ``[batch, time, hidden]``,
which runs only when batch and time are both 1; every check reported the GRU's "Expected
hidden size" or the attention's size mismatch. Now an argument handed to a recurrent layer
as its ``hx`` is drawn as that layer's initial state, ``[num_layers, batch, hidden_size]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["AttentionDecoder"]

START = 0


class _Additive(nn.Module):
    """score(q, k) = v . tanh(W q + U k), softmax over the encoder's steps."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        weights = self.score(torch.tanh(self.query(query) + self.key(keys))).squeeze(-1).softmax(-1)
        return torch.bmm(weights.unsqueeze(1), keys)


class AttentionDecoder(nn.Module):
    def __init__(self, hidden: int = 12, vocab: int = 20, steps: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        self.steps = steps
        self.embedding = nn.Embedding(vocab, hidden)
        self.attention = _Additive(hidden)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)
        self.dropout = nn.Dropout(dropout)

    def forward(self, encoder_outputs: torch.Tensor, encoder_hidden: torch.Tensor) -> torch.Tensor:
        token = torch.full((encoder_outputs.size(0), 1), START, dtype=torch.long, device=encoder_outputs.device)
        hidden = encoder_hidden
        scores = []
        for _ in range(self.steps):
            step, hidden = self._step(token, hidden, encoder_outputs)
            scores.append(step)
            token = step.argmax(-1).detach()
        return F.log_softmax(torch.cat(scores, 1), -1)

    def _step(self, token: torch.Tensor, hidden: torch.Tensor, encoder_outputs: torch.Tensor):
        embedded = self.dropout(self.embedding(token))
        context = self.attention(hidden.permute(1, 0, 2), encoder_outputs)
        output, hidden = self.gru(torch.cat((embedded, context), -1), hidden)
        return self.out(output), hidden
