"""Invariant: padding_invariance, batch_invariance

The classic mistake with padded batches: the model takes ``output[:, -1]``, the last
*padded* step, as each sequence's final output. ``pad_packed_sequence`` fills the steps
after a sequence's length with zeros, so every sequence shorter than the longest one in its
batch is classified from a zero vector (``fc`` gives its bias), whatever its content. Run
alone (a batch of one, trimmed to its length) the same sequence gets its real last step; alone but still padded, it
is the longest of its batch of one, so ``batch_invariance`` sees the difference too.

A correct version takes each sequence's last valid step, ``output[i, lengths[i] - 1]``
(as the founding ``DynamicRNN`` does), or the final state ``h_n`` of a packed run.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True)
        return self.fc(output[:, -1])  # BUG: the last padded step, not each sequence's last valid one
