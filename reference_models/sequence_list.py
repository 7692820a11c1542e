"""A classifier over a list of variable-length sequences, as ``pack_sequence`` takes them:
``forward(self, seqs: list[torch.Tensor])``, one ``[length, features]`` tensor per sample,
packed unsorted, run through an LSTM, its last layer's final hidden state classified.

What it proves: zero-config inputs for an argument annotated as a list of tensors. It is
drawn as a list of sequences of their own lengths (``sequence_lists``), not as a tensor
(which ``pack_sequence`` would also have taken, as a list of its time steps, and run), and
``batch_invariance`` compares each sequence in the list with itself alone. The buggy
counterpart pads the list instead of packing it (``buggy/padded_list.py``).

``StackedSequenceTagger`` takes a list its collate function made of sequences of one
length and stacks it (``torch.stack(seqs)``): a ragged list raises. What it proves: that
is found at resolution (two sequences of lengths 3 and 2 raise, two of length 3 run), and
the list is drawn with ``equal_lengths=True`` instead of every check reporting the crash.
The buggy counterpart centres the stacked batch on its mean
(``buggy/stacked_batch_mean.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

__all__ = ["SequenceListClassifier", "StackedSequenceTagger"]


class SequenceListClassifier(nn.Module):
    def __init__(self, features=3, hidden=5, classes=2):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, seqs: list[torch.Tensor]):
        packed = pack_sequence(seqs, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])


class StackedSequenceTagger(nn.Module):
    def __init__(self, features=3, hidden=5, tags=4):
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, tags)

    def forward(self, seqs: list[torch.Tensor]):
        x = torch.stack(seqs)  # [batch, length, features]: one length for every sequence
        steps, _ = self.gru(x)
        return self.head(steps)
