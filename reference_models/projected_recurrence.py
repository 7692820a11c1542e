"""ProjectedRecurrence: a simple recurrent unit (SRU) written out over a time-major
sequence ``[time, batch, features]``: every step's gates projected at once by one Linear,
then a helper function runs the light recurrence ``c = f * c + (1 - f) * u`` step by step,
``length = U.size(0) if U.dim() == 3 else 1`` and ``for t in range(length)``, as the sru
package's CPU path does.

Not a founding model: the counterpart of a false alarm on ``sru.SRU``. Only a loop handing a
layer one step of the input (``self.cell(x[t], h)``) said where the steps are; here the
loop steps through what the Linear made of the whole sequence, the input was drawn as
vectors (or, probed, batch-first), the loop walked the batch as time and
``batch_invariance`` failed the correct model. A loop carrying a state that steps through
what forward computes from the input now says so too (``dyncheck.infer.flow``:
``stepped_in_code``), through a conditional length and a range held in a name; so does the
model's own error on vectors when it names the layout, "(length, batch_size, input_size)".
``buggy/batch_mean_initial_state.py`` starts the cell from the batch's mean and fails.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProjectedRecurrence"]


def light_recurrence(U: torch.Tensor, c0: torch.Tensor) -> torch.Tensor:
    """Each step's state from its forget gate, candidate and the state before it."""
    length = U.size(0) if U.dim() == 3 else 1
    forget, candidate, highway = U.chunk(3, dim=-1)
    c = c0
    states = []
    time_seq = range(length)
    for t in time_seq:
        f = torch.sigmoid(forget[t])
        c = f * c + (1 - f) * candidate[t]
        states.append(torch.tanh(c) + highway[t])
    return torch.stack(states)


class ProjectedRecurrence(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.hidden = hidden
        self.proj = nn.Linear(features, 3 * hidden)
        self.head = nn.Linear(hidden, classes)

    def initial_state(self, U: torch.Tensor) -> torch.Tensor:
        return U.new_zeros(U.size(1), self.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        U = self.proj(x)
        states = light_recurrence(U, self.initial_state(U))
        return self.head(states)  # [time, batch, classes]
