"""Invariant: batch_invariance

A classifier over a ``PackedSequence`` that pads its GRU's output back and classifies the
last padded step, ``padded[:, -1]``, where it meant each sequence's last valid one: a
sequence shorter than the batch's longest is classified from the padding after it (the
GRU's output there is zeros), so a sample's class depends on the lengths of the others.
Alone, a sequence has no padding and its last step is its own. The correct model reads
``h_n`` (``reference_models/packed_input.py``) or gathers the step at ``lengths - 1``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, features=4, hidden=6, classes=3):
        super().__init__()
        self.rnn = nn.GRU(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, packed: PackedSequence):
        output, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(output, batch_first=True)
        return self.head(padded[:, -1])  # BUG: the last padded step, not the last valid one
