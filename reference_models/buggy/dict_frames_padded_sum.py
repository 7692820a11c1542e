"""Invariant: padding_invariance

``DictFramesClassifier`` (float frames in ``batch["frames"]``, their count in
``batch["n_valid"]``, declared with ``lengths="batch['n_valid']"``) averaging the projected
frames as ``h.sum(1) / n_valid``: the sum runs over every step, padding included, so a
sequence shorter than its batch's padded length gets whatever its padding frames hold added
in. Run alone (a batch of one, trimmed to its length) it gets another result.

A correct version averages the valid frames only: ``(h * mask).sum(1) / n_valid`` with
``mask = torch.arange(T) < n_valid[:, None]``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    __dyncheck__ = {"lengths": "batch['n_valid']"}

    def __init__(self, features=8, hidden=6, classes=3):
        super().__init__()
        self.proj = nn.Linear(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, batch):
        h = torch.tanh(self.proj(batch["frames"]))
        # BUG: the sum runs over the padded steps too; only the divisor knows the count
        return self.head(h.sum(1) / batch["n_valid"][:, None].to(h.dtype))
