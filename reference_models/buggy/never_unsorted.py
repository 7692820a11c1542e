"""Invariant: padding_invariance, batch_invariance

The founding ``DynamicRNN`` with one line left out: the batch is sorted by length for
``pack_padded_sequence`` (whose default ``enforce_sorted=True`` demands it), and the results
are never put back in the batch's order. Row ``i`` of the output belongs to the ``i``-th
longest sequence, so whenever the lengths are not already sorted, sequences get each
other's results; a sequence run alone always gets its own (``padding_invariance`` and
``batch_invariance`` both compare with that).

A correct version unsorts (``output[indices.argsort()]``, as ``DynamicRNN`` does), or packs
with ``enforce_sorted=False`` and lets PyTorch do both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, seq_lengths):
        sorted_lengths, indices = torch.sort(seq_lengths, descending=True)
        packed = pack_padded_sequence(x[indices], sorted_lengths.cpu(), batch_first=True)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True)
        last = output[torch.arange(len(sorted_lengths)), sorted_lengths - 1]
        return self.fc(last)  # BUG: still in sorted order; the rows are never put back
