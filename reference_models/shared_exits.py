"""Early exits whose classifiers share one weight, each with its own bias (anytime
prediction, as in multi-exit networks that tie their exit heads): a control input picks the
exit.

What it proves: a Parameter shared between a head that ran and one that did not rightly
moves on an optimizer step. grad_isolation's step check compares only the parameters every
owner of which was skipped (the skipped head's bias); before, it reported "SGD moved
exits.0.weight although exits.0 did not run", the weight the head that ran had trained.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

__all__ = ["SharedExitNet"]


class SharedExitNet(nn.Module):
    def __init__(self, input_size=8, hidden_size=16, output_size=4):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(2)])
        self.exits = nn.ModuleList([nn.Linear(hidden_size, output_size) for _ in range(2)])
        self.exits[1].weight = self.exits[0].weight  # one classifier, a bias per exit

    def forward(self, x, control):
        h = F.relu(self.blocks[0](F.relu(self.inp(x))))
        if control > 0.5:
            return self.exits[0](h)  # the early exit
        return self.exits[1](F.relu(self.blocks[1](h)))
