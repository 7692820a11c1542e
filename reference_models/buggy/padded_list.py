"""Invariant: batch_invariance

A list of variable-length sequences padded into one batch (``pad_sequence``) and run
through the LSTM unpacked: the final hidden state of a short sequence has also run over
the zeros that pad it to the longest in the batch. Alone, the same sequence has no
padding, so its output depends on the rest of the batch. dyncheck reports the sample
whose output changed, with the list's lengths.

A correct version packs the list (``pack_sequence(seqs, enforce_sorted=False)``), as
``reference_models/sequence_list.py`` does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, features=3, hidden=5, classes=2):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, seqs: list[torch.Tensor]):
        padded = pad_sequence(seqs)  # [longest, batch, features], zeros past each length
        _, (h, _) = self.lstm(padded)  # the bug: every sequence runs to the longest
        return self.head(h[-1])
