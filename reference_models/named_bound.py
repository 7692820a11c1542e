"""NamedBoundRNN: a tagger of each step's state of a recurrent cell unrolled over a
time-major sequence ``[time, batch, features]``, its loop bound held in a name, as labml's
HyperLSTM writes it: ``n_steps, batch_size = x.shape[:2]``, then ``for t in range(n_steps)``.

Not a founding model: the counterpart of a misreading of labml-nn's HyperLSTM. Only a
bound written in the loop (``range(x.shape[0])``) was read as counting steps of an axis;
through a name, the input was drawn batch-first ``[batch, time, 8]``, the loop walked the
batch as time, and ``batch_invariance`` failed the correct model. Names bound to sizes of
the input's axes now count (``dyncheck.infer.flow._sizes_bound``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NamedBoundRNN"]


class NamedBoundRNN(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell = nn.GRUCell(features, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n_steps, batch_size = x.shape[:2]
        h = x.new_zeros(batch_size, self.hidden)
        states = []
        for t in range(n_steps):
            h = self.cell(x[t], h)
            states.append(h)
        return self.head(torch.stack(states, dim=1))  # [batch, time, classes]
