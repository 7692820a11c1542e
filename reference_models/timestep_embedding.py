"""A diffusion denoiser with the sinusoidal timestep embedding of DDPM-style code: the
frequencies made with ``torch.arange(half, dtype=torch.float32)``, the timesteps cast with
``t.float()``, both pinned to float32 so that half-precision training keeps the embedding
in float32; in training the class condition is dropped for some samples (classifier-free
guidance), in eval never.

What it proves: ``dtype_agreement`` compares such a model. Its float64 copy raised where
``t.float()`` (a no-op in the float32 model) handed float32 values to a float64 Linear,
and the check reported "cannot be cast to float64" on a model that every DDPM codebase
runs; the copy now keeps that cast in float64, as it does for casts that only change the
numbers, and the summary's note names the line. A float32 tensor made in forward with no
input (``torch.zeros(n, h)``) is still reported (``buggy/default_dtype_state.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GuidedDenoiser"]


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class GuidedDenoiser(nn.Module):
    def __init__(self, features=6, hidden=16, t_dim=8, classes=4, drop_condition=0.2):
        super().__init__()
        self.t_dim, self.classes, self.drop_condition = t_dim, classes, drop_condition
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(classes + 1, hidden)  # the last row: no condition
        self.inp = nn.Linear(features, hidden)
        self.out = nn.Linear(hidden, features)

    def forward(self, x, t, y):
        if self.training and self.drop_condition > 0:
            dropped = torch.rand(y.shape[0], device=y.device) < self.drop_condition
            y = torch.where(dropped, torch.full_like(y, self.classes), y)
        h = self.inp(x) + self.t_mlp(timestep_embedding(t, self.t_dim)) + self.label(y)
        return self.out(torch.nn.functional.silu(h))
