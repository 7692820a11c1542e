"""Invariant: padding_invariance, batch_invariance

A time-major GRU tagger (the correct ``time_major_gru.GRUTagger`` with one argument
changed) that unpacks with ``total_length=lengths.max()``: the output is cut to the
longest sequence of the batch instead of keeping one step per padded input step. Its
shape then depends on the other rows (a sequence's tags have as many steps as the longest
sequence it was batched with), and a caller that lines the tags up with the input's
padded steps, or with a target of the padded length, is off or crashes. ``batch_invariance``
sees it too: a sample alone has fewer steps than in its batch.

A correct version gives ``total_length=x.size(0)``, the padded length (PyTorch's advice
for exactly this, e.g. under ``DataParallel``).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)  # batch_first=False: [time, batch, features]
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        output, _ = self.gru(packed)
        output, _ = pad_packed_sequence(output, total_length=int(lengths.max()))  # BUG: not x.size(0)
        return self.fc(output.transpose(0, 1))  # [batch, longest length, output_size]
