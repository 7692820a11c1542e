"""A Fourier neural operator block, as neural-operator code writes it: the input's Fourier
modes up to ``modes`` are multiplied by complex weights (``nn.Parameter(..., dtype=cfloat)``)
and transformed back (``torch.fft.rfft``/``irfft``), beside a pointwise convolution.

What it proves: a model with complex parameters is compared as itself. ``Module.to(float64)``
turns a complex parameter into a real one (dropping its imaginary part, torch warns); the
float64 copies dtype_agreement, grad_isolation and batch_invariance compare against are cast
with complex weights kept complex (complex128). Before, dtype_agreement reported the model's
crash ("expected m1 and m2 to have the same dtype") on a copy dyncheck had broken.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SpectralConvNet"]


class SpectralConv1d(nn.Module):
    def __init__(self, channels, modes):
        super().__init__()
        self.modes = modes
        scale = 1 / (channels * channels)
        self.weights = nn.Parameter(scale * torch.rand(channels, channels, modes, dtype=torch.cfloat))

    def forward(self, x):
        x_ft = torch.fft.rfft(x)
        out_ft = torch.zeros(x.shape[0], x.shape[1], x.shape[-1] // 2 + 1, dtype=torch.cfloat, device=x.device)
        modes = min(self.modes, x_ft.shape[-1])
        out_ft[:, :, :modes] = torch.einsum("bix,iox->box", x_ft[:, :, :modes], self.weights[:, :, :modes])
        return torch.fft.irfft(out_ft, n=x.shape[-1])


class SpectralConvNet(nn.Module):
    def __init__(self, in_channels=2, width=8, modes=4):
        super().__init__()
        self.lift = nn.Conv1d(in_channels, width, 1)
        self.spectral = SpectralConv1d(width, modes)
        self.pointwise = nn.Conv1d(width, width, 1)
        self.project = nn.Conv1d(width, 1, 1)

    def forward(self, x):
        h = self.lift(x)
        h = F.gelu(self.spectral(h) + self.pointwise(h))
        return self.project(h).squeeze(1)
