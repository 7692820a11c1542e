"""A classifier over a list of variable-length sequences, as ``pack_sequence`` takes them:
``forward(self, seqs: list[torch.Tensor])``, one ``[length, features]`` tensor per sample,
packed unsorted, run through an LSTM, its last layer's final hidden state classified.

What it proves: zero-config inputs for an argument annotated as a list of tensors. It is
drawn as a list of sequences of their own lengths (``sequence_lists``), not as a tensor
(which ``pack_sequence`` would also have taken, as a list of its time steps, and run), and
``batch_invariance`` compares each sequence in the list with itself alone. The buggy
counterpart pads the list instead of packing it (``buggy/padded_list.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

__all__ = ["SequenceListClassifier"]


class SequenceListClassifier(nn.Module):
    def __init__(self, features=3, hidden=5, classes=2):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, seqs: list[torch.Tensor]):
        packed = pack_sequence(seqs, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])
