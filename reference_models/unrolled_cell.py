"""A GRU cell unrolled by hand over padded sequences, held at each sequence's end.

Not one of the founding documents' systems: the way a recurrent model is written when each
step needs code of its own (attention, a stack, a custom gate). ``forward(x, lengths)``
takes ``x`` as ``[batch, time, input_size]``; at step ``t`` the rows whose sequence has
ended keep their state (``torch.where`` on ``t < lengths``), and their per-step output is
zero. It returns the per-step outputs and the last valid state of each row.

Inference: the cell reads one step ``x[:, t]`` in a loop over ``range(steps)``, ``steps``
read from ``x.shape``, so ``x`` is a sequence whose axis 1 the loop steps through (before
names bound to sizes counted, the lengths beside it, whose padded length no input had, made
it one: tried as vectors and as sequences). Declared causal: no step reads a later one.
``buggy/unheld_cell_state.py`` steps the cell over the padding too, and fails
padding_invariance.

``SteppedGRU`` unrolls the cell for ``num_steps`` steps of ``x`` (at most its length), a
count forward takes beside the sequence. Inference: the count is a control value, and the
probe that tries vectors and sequences calls the model with the count's most steps (before,
a control beside the vectors stopped the probe, ``x`` stayed ``[batch, input_size]`` and
every check crashed on ``x[:, t]``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SteppedGRU", "UnrolledGRU"]


class UnrolledGRU(nn.Module):
    __dyncheck__ = {"causal": True}

    def __init__(self, input_size: int = 6, hidden_size: int = 10, outputs: int = 4):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x, lengths):
        batch, steps, _ = x.shape
        state = x.new_zeros(batch, self.cell.hidden_size)
        outputs = []
        for t in range(steps):
            valid = (t < lengths.to(x.device))[:, None]
            state = self.held(valid, self.cell(x[:, t], state), state)
            outputs.append(torch.where(valid, self.head(state), torch.zeros((), dtype=x.dtype, device=x.device)))
        return torch.stack(outputs, 1), state

    @staticmethod
    def held(valid, stepped, state):
        """Each row's state: stepped where its sequence goes on, kept once it has ended."""
        return torch.where(valid, stepped, state)


class SteppedGRU(nn.Module):
    def __init__(self, input_size=6, hidden_size=8, output_size=3):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x, num_steps):
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        for t in range(min(num_steps, x.shape[1])):
            h = self.cell(x[:, t], h)
        return self.out(h)
