"""Invariant: state_roundtrip, determinism, tied_weights

The gated net with its output layer created on the first call, once the width of the
hidden activation is known: ``if self.head is None: self.head = nn.Linear(...)`` in
``forward``. A freshly built model has no ``head``, so the state_dict of a model that has
run (``head.weight``, ``head.bias``) does not load into it: ``load_state_dict`` fails with
unexpected keys, and an optimizer built before the first call never sees the head.
``state_roundtrip`` reports the unexpected keys by name. The model changes between its
first and second call, so two more invariants notice: ``determinism`` (the second call
runs a module the first did not have: the paths differ) and ``tied_weights`` (forward
changed which Parameter a name refers to).

A correct version creates every layer in ``__init__``, or uses ``nn.LazyLinear``, whose
parameters exist (uninitialised) from the start, so its state_dict loads into a fresh
instance.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.output_size = output_size
        self.head = None

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        if self.head is None:  # BUG: a layer created in forward
            self.head = nn.Linear(x.shape[-1], self.output_size).to(x.device, x.dtype)
        return self.head(x)
