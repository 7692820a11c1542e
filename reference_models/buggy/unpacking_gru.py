"""Invariant: packed_rnn

A GRU subclass with variational ("locked") input dropout, one mask per sequence shared by
all its steps. To apply the mask, its ``forward`` pads the packed input, and then runs the
GRU on the *padded* tensor before packing the output again. The outputs at valid steps are
right (a forward GRU never looks ahead), but ``h_n`` is the state after the last padded
step, not after each sequence's last valid step: every caller that uses ``h_n`` of a
shorter sequence gets the padding folded in. This model itself reads the output at the last
valid step, so its own results are right; the module is wrong, and ``packed_rnn`` finds it
by running the module against the naive loop.

A correct version applies the mask to the packed data (``PackedSequence.data`` has one row
per valid step; index the per-sequence mask with ``batch_sizes``) or runs
``super().forward`` on a re-packed input.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["LockedDropoutGRU", "Model"]


class LockedDropoutGRU(nn.GRU):
    def __init__(self, *args, input_dropout=0.25, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_dropout = input_dropout

    def forward(self, input, hx=None):
        padded, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
        if self.training and self.input_dropout > 0:
            shape = (padded.size(0), 1, padded.size(2)) if self.batch_first else (1, padded.size(1), padded.size(2))
            keep = 1 - self.input_dropout
            padded = padded * torch.bernoulli(padded.new_full(shape, keep)) / keep
        output, h_n = super().forward(padded, hx)  # BUG: runs over the padding; h_n is past each length
        return pack_padded_sequence(output, lengths, batch_first=self.batch_first, enforce_sorted=False), h_n


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = LockedDropoutGRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True)
        last = output[torch.arange(x.size(0)), lengths - 1]
        return self.fc(last)
