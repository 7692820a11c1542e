"""Invariant: padding_invariance, determinism, state_roundtrip, batch_invariance

A "stateful" RNN: the final hidden state of each call is stored on ``self`` and used as
the initial state of the next call with the same batch size (a new zero state otherwise),
as truncated backpropagation through time does for one long stream. For independent
sequences it is a bug: a sequence's result depends on whatever batch ran before it, so two
calls with the same input differ, and a sequence run alone differs from the same sequence
in a batch. The stored state is a plain attribute, outside the ``state_dict``, so a copy
loaded from it behaves differently too (``state_roundtrip``), and a sample alone gets
another start state than in its batch (``batch_invariance``).

A correct version starts every call from a zero state (``self.rnn(packed)``), or takes the
initial state as an argument of ``forward`` that the caller passes explicitly.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)
        self.hidden = None

    def forward(self, x, lengths):
        batch = x.size(0)
        if self.hidden is None or self.hidden.size(1) != batch:
            self.hidden = x.new_zeros(1, batch, self.rnn.hidden_size)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.rnn(packed, self.hidden)  # BUG: the previous call's final state
        self.hidden = h_n.detach()
        return self.fc(h_n[-1])
