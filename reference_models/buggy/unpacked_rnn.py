"""Invariant: padding_invariance

No packing at all: the GRU runs over the whole padded tensor and the model classifies from
``h_n``, the state after the last *padded* step. For every sequence shorter than the padded
length, the GRU keeps stepping through the padding after the sequence has ended, so the
result depends on how much padding there is and what it holds: the same sequence run alone,
trimmed to its length, gets another result.

A correct version packs the batch (``pack_padded_sequence(x, lengths, batch_first=True,
enforce_sorted=False)``) so each sequence stops at its length, or reads the output at each
sequence's last valid step.
"""

from __future__ import annotations

from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        _, h_n = self.rnn(x)  # BUG: lengths unused; the GRU runs over the padding
        return self.fc(h_n[-1])
