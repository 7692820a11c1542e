"""Invariant: grad_isolation, finite, tied_weights, dtype_agreement

An in-place operation that breaks backward only on the taken branch: ``sigmoid`` saves
its output for the backward pass, and the branch then scales that output in place.
Forward works on every path, and backward works whenever the branch is skipped, so a
test that happens to use a small control never sees it. dyncheck reports the crash in
backward with the example (``control > 0.5``) and the model's traceback -- in every check
that runs backward (``finite``, ``grad_isolation``, the training steps of
``tied_weights``, the float64 reference of ``dtype_agreement``).

A correct version scales out of place (``h = torch.sigmoid(self.fc2(x)) * 2``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        if control > 0.5:
            h = torch.sigmoid(self.fc2(x))
            h.mul_(2)  # the bug: overwrites what sigmoid's backward needs
            x = h
        return self.fc3(x)
