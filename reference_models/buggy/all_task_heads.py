"""Invariant: grad_isolation

The multi-task model with every task's head run on every call and one result picked by the
task id (``torch.stack([head(h) for head in self.heads])[task]``): the other heads are
computed and thrown away, and their parameters take part in a graph that gives them zero
gradients. ``reference_models.task_heads`` runs the chosen head only.
"""

from __future__ import annotations

import torch

from reference_models.task_heads import TaskHeads

__all__ = ["Model"]


class Model(TaskHeads):
    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        h = torch.relu(self.trunk(x))
        return torch.stack([head(h) for head in self.heads])[task]  # the bug: every head runs
