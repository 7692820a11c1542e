"""Invariant: determinism, state_roundtrip, batch_invariance

The model keeps a temperature schedule as a plain Python ``int`` on ``self``: every call
to ``forward`` increments ``self.calls`` and the output is divided by
``1 + 0.1 * self.calls``. The counter is hidden state that the seed does not reset, so
two calls with the same seed and the same input give different outputs (and a model
that has been called during a check behaves differently afterwards). It is not a buffer
either, so it is not saved in ``state_dict`` and a reloaded model restarts the schedule:
``state_roundtrip`` reports e.g. ``calls: 4 on the original, 0 on the fresh copy``.
``batch_invariance`` sees it as well: the sample run alone comes one call later than the
batch, with another temperature.

A correct version passes the step or the temperature to ``forward`` as an argument, or
keeps it in a registered buffer that the training loop advances explicitly -- never as a
side effect of calling the model.
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
        self.fc3 = nn.Linear(hidden_size, output_size)
        self.calls = 0

    def forward(self, x, control):
        self.calls += 1  # BUG: state that changes with every call
        x = F.relu(self.fc1(x))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        x = self.fc3(x)
        temperature = 1.0 + 0.1 * self.calls
        return x / temperature
