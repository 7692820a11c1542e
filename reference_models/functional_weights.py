"""Layers written as functions of the weights the model holds, as research code writes them:
a Bayesian MLP (Bayes by backprop, as blitz-bayesian-pytorch and torchbnn build one) whose
weights are drawn anew on every call in training (``mu + softplus(rho) * eps``) and are the
means in eval, and a learned filterbank over a waveform (asteroid's free encoder:
``F.conv1d`` over a Parameter of filters).

What it proves: zero-config inputs for layers no ``nn.Linear`` or ``nn.Conv1d`` announces.
``F.linear(x, w)``, ``x @ W``, ``F.conv1d(x, W)`` and ``F.embedding(ids, W)`` are read as the
torch layer each stands for, by the shape of the model's weight they are handed (or of a
weight drawn per call from it). Before, the MLP's input was read from the first
``nn.Linear`` after the sampled layer, ``[batch, 6]``, which failed, and was drawn as
images of 6 channels that happened to run (``[batch, 6, 5, 5]``: its last axis was the
weight's 5); the waveform was drawn as vectors of the filters' first size, 8, with no
length axis to vary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BayesianMLP", "FilterbankSeparator"]


class BayesianMLP(nn.Module):
    """5 features -> a hidden layer of 6 whose weight is a Gaussian (sampled in training, its
    mean in eval) -> a plain readout of 3 classes."""

    def __init__(self, in_features: int = 5, hidden: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.w_mu = nn.Parameter(torch.empty(hidden, in_features).uniform_(-0.4, 0.4))
        self.w_rho = nn.Parameter(torch.full((hidden, in_features), -4.0))
        self.b = nn.Parameter(torch.zeros(hidden))
        self.out = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            w = self.w_mu + F.softplus(self.w_rho) * torch.randn_like(self.w_mu)
        else:
            w = self.w_mu
        return self.out(torch.relu(F.linear(x, w, self.b)))


class FilterbankSeparator(nn.Module):
    """A waveform ``[batch, samples]`` -> 8 learned filters (stride 2) -> a mask from two
    convolutions -> the masked filterbank back to a waveform by the same filters."""

    def __init__(self, filters: int = 8, kernel: int = 4) -> None:
        super().__init__()
        self.filters = nn.Parameter(torch.randn(filters, 1, kernel) / kernel)
        self.masker = nn.Sequential(nn.Conv1d(filters, filters, 3, padding=1), nn.ReLU(), nn.Conv1d(filters, filters, 1))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        tf = F.conv1d(wav.unsqueeze(1), self.filters, stride=2)
        masked = tf * torch.sigmoid(self.masker(tf))
        return F.conv_transpose1d(masked, self.filters, stride=2).squeeze(1)
