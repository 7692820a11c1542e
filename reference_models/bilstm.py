"""A two-layer bidirectional LSTM classifier over a padded batch, packed without sorting.

Not one of the founding documents' systems: the correct counterpart of the padding bugs in
``buggy/``, written the way PyTorch's own documentation suggests. The batch is packed with
``enforce_sorted=False`` (PyTorch sorts, and puts ``h_n`` back in the batch's order), and
the class comes from the final states of the last layer: the forward direction's state after
each sequence's last valid step, and the reverse direction's state after its first step.

What is dynamic: the number of recurrent steps differs per sequence, set by ``lengths``.
A sequence's class must not depend on the padding after it or on the other sequences.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["BiLSTMClassifier"]


class BiLSTMClassifier(nn.Module):
    def __init__(self, input_size, hidden_size, num_classes):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, x, lengths):
        # x: [batch, time, input_size]; lengths: one per sequence, unsorted, on the CPU for packing
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        # h_n: [num_layers * 2, batch, hidden_size], in the batch's order; the last layer's
        # forward and reverse final states are its last two entries.
        final = torch.cat([h_n[-2], h_n[-1]], dim=1)
        return self.fc(final)
