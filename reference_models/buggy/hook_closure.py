"""Invariant: tied_weights

``StagedEMA`` whose backward hook is a closure over ``self`` made in ``__init__``
(routing-transformer's pattern): ``copy.deepcopy`` copies the function as it is, so a
copy's backward applies the original's staged centre, never its own, and a copy (an
nn.DataParallel replica) never moves its centre. The correct version registers a method,
which a copy rebinds to itself (``reference_models/staged_ema.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.register_buffer("center", torch.zeros(dim))
        self.staged: torch.Tensor | None = None
        owner = self

        def apply_staged(module: nn.Module, grad_output: object) -> None:
            owner.update()  # BUG: the model this closure was made on, whichever copy runs

        self.out.register_full_backward_pre_hook(apply_staged)

    @torch.no_grad()
    def update(self) -> None:
        if self.staged is None:
            return
        self.center.mul_(0.9).add_(0.1 * self.staged)
        self.staged = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.staged = x.detach().mean(0)
        return self.out(torch.relu(self.proj(x - self.center)))
