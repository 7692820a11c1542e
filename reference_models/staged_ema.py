"""StagedEMA: a running centre that the forward stages in training and a backward hook
applies (routing-transformer's k-means, whose centroids move after each backward).

Not a founding model: the counterpart of a false alarm on routing-transformer's
``RoutingTransformerLM``, whose ``__init__`` registers the update as a closure over the
model. ``copy.deepcopy`` copies a function as it is, so every copy's backward updated the
original, which had nothing staged: every check that differentiated a copy reported the
library's "new kmeans has not been supplied" as the model's crash. dyncheck now reads the
copy's hooks for closures over the original (``dyncheck.copies``); where it finds one it
builds every model anew, and ``tied_weights`` names the hook
(``buggy/hook_closure.py``). This one registers a method, which a copy rebinds to itself.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["StagedEMA"]


class StagedEMA(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.register_buffer("center", torch.zeros(dim))
        self.staged: torch.Tensor | None = None
        self._register_update()

    def _register_update(self) -> None:
        """The backward hook that applies the staged centre: a method, which a copy rebinds."""
        self.out.register_full_backward_pre_hook(self._apply_staged)

    def _apply_staged(self, module: nn.Module, grad_output: object) -> None:
        self.update()

    @torch.no_grad()
    def update(self) -> None:
        if self.staged is None:  # a backward in eval mode: nothing staged
            return
        self.center.mul_(0.9).add_(0.1 * self.staged)
        self.staged = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.staged = x.detach().mean(0)
        return self.out(torch.relu(self.proj(x - self.center)))
