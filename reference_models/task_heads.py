"""A multi-task model: a shared trunk and one head per task, the task given per call.

``forward(x, task: int)`` runs the trunk and the head of that task only
(``self.heads[task](h)``); the other heads do not run, and their parameters get no
gradient.

What it proves: an integer choice is a choice. Zero-config, ``task`` is inferred as an index
into ``heads`` (0 to 2). Every check passes; ``buggy/all_task_heads.py`` runs every head and
picks one result by ``task``, which grad_isolation reports: its redraws now draw the
choices again (ints, flags, integer codes), as they moved the floats, so a module a choice
masks away is told apart from one at a degenerate size.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TaskHeads"]


class TaskHeads(nn.Module):
    def __init__(self, input_size=8, hidden_size=6, output_size=4, num_tasks=3):
        super().__init__()
        self.trunk = nn.Linear(input_size, hidden_size)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, output_size) for _ in range(num_tasks))

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        return self.heads[task](torch.relu(self.trunk(x)))
