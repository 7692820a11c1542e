"""FeedbackMemory: labml-nn's Feedback Transformer loop. A time-major input ``[time, batch,
features]`` is walked one step at a time (``torch.unbind(x, dim=0)``); each step attends
over the outputs of the steps before it, which the loop keeps in a list
(``memory.append(y)``, ``torch.stack(memory)``); the first step has none to attend to.

Not a founding model: the counterpart of a misreading of labml-nn's
``FeedbackTransformer``. A loop was read as carrying a state only through a name it
reassigns (``h = self.cell(x[t], h)``): with the state in a list, the input was drawn
batch-first, the loop walked the batch as time, and ``batch_invariance`` failed the correct
model. A list the loop grows and reads is now a carried state
(``dyncheck.infer.flow._grown_and_read``); one it only grows (its outputs) is not.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FeedbackMemory"]


class FeedbackMemory(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, memory = [], []
        for step in torch.unbind(x, dim=0):
            h = self.norm(step)
            if memory:
                k, v = self.key_value(torch.stack(memory)).chunk(2, dim=-1)  # [steps, batch, dim]
                attention = torch.einsum("bd,sbd->sb", self.query(h), k).softmax(dim=0)
                h = h + torch.einsum("sb,sbd->bd", attention, v)
            y = self.out(h)
            memory.append(y)
            outputs.append(y)
        return torch.stack(outputs, dim=1)  # [batch, time, dim]
