"""Invariant: padding_invariance

A classifier that returns class probabilities (a softmax is its last layer) and pools its
GRU's outputs with a straight-through max: the forward value is the max over each
sequence's valid steps, and gradients flow through a soft surrogate,
``hard + (soft - soft.detach())``. The surrogate is the mean over *all* padded steps: the
values are right, the gradients read the padding. dyncheck reports that the gradients of
the batch differ from the sum of each row's gradients alone, and that extra padding
changes them.

Only a loss under which every output element matters shows it: the probabilities sum to
1, so under a plain sum loss every gradient is rounding noise, in the batch and alone
alike. dyncheck's default loss is a fixed random projection of the outputs.

A correct version takes the surrogate over valid steps only
(``output.sum(dim=1) / lengths[:, None]``; the padded steps are zero after
``pad_packed_sequence``).
"""

from __future__ import annotations

import torch
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
        output, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))
        steps = torch.arange(x.size(1), device=x.device)
        valid = steps[None, :] < lengths.to(x.device)[:, None]
        hard = output.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)
        soft = output.mean(dim=1)  # BUG: the surrogate averages over the padded steps too
        pooled = hard + (soft - soft.detach())
        return torch.softmax(self.fc(pooled), dim=-1)
