"""Invariant: padding_invariance

Mean pooling over the padded time axis: the RNN itself is packed correctly, but the model
averages its output over all padded steps, ``output.mean(dim=1)``. The padded steps hold
zeros, so a sequence's summary is shrunk by ``length / padded_length``, and it changes when
the batch holds a longer sequence or more padding is added.

A correct version averages over valid steps only: ``output.sum(dim=1) / lengths[:, None]``
(the padded steps are zero after ``pad_packed_sequence``), or a mask built from the lengths.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.size(1))
        return self.fc(output.mean(dim=1))  # BUG: the padded steps count in the mean
