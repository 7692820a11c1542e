"""AdaptiveODEClassifier: a neural ODE block integrated from t=0 to 1 by an adaptive solver
(a Heun-Euler pair) that picks one step size for the whole batch from the batch's error
norm, as torchdiffeq's ``dopri5`` does; a readout after it.

Not a founding model: the counterpart of torchdiffeq's ODE blocks. Each sample is right to
the solver's tolerance (``rtol`` 1e-2), and its result moves with its batch-mates by up to
about that much, since they change the steps: a true coupling, which ``batch_invariance``
reports at its default tolerances. Such a model declares the tolerance it is built for,
for itself alone (``Spec(tolerances=...)``, here in ``__dyncheck__``); before, only the
project's ``[tool.dyncheck.batch_invariance]`` could, for every model at once.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AdaptiveODEClassifier"]


class AdaptiveODEClassifier(nn.Module):
    """Features ``[batch, 8]`` -> ODE block (adaptive steps, one size for the batch) -> 4 logits."""

    __dyncheck__ = {"tolerances": {"batch_invariance": {"rtol": 1e-2, "atol": 1e-3}}}

    def __init__(self, dim: int = 8, classes: int = 4, tol: float = 1e-2) -> None:
        super().__init__()
        self.tol = tol
        self.inp = nn.Linear(dim, dim)
        self.f = nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, dim))
        self.out = nn.Linear(dim, classes)

    def rhs(self, y: torch.Tensor) -> torch.Tensor:
        return self.f(y) - y * y.pow(2).mean(-1, keepdim=True).clamp(max=1.0)  # stiffer where |y| is larger

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, t, h = self.inp(x), 0.0, 0.1
        while t < 1.0 - 1e-9:
            h = min(h, 1.0 - t)
            k1 = self.rhs(y)
            k2 = self.rhs(y + h * k1)
            scale = self.tol + self.tol * y.abs()
            error = ((0.5 * h * (k2 - k1)) / scale).pow(2).mean().sqrt().item()  # one norm for the batch
            if error <= 1.0:
                y, t = y + 0.5 * h * (k1 + k2), t + h
            h = h * min(5.0, max(0.2, 0.9 * (1.0 / max(error, 1e-10)) ** 0.5))
        return self.out(y)
