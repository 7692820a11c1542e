"""Invariant: determinism, purity, batch_invariance

The gated net with a hand-written batch-norm-like layer after fc1: it normalises by the
statistics of the batch in training and by running statistics (two buffers) at
inference, like ``nn.BatchNorm``. But it updates the running statistics on every call,
``self.training`` or not, so every inference batch moves them: the model's predictions
drift while it serves, and evaluating a checkpoint changes it. ``purity`` runs the model
in eval mode and reports ``In eval mode forward changed the model's buffers
norm.running_mean, norm.running_var`` with the numbers. ``batch_invariance`` notices the
drift too: it runs a batch and then each of its samples alone on one model in eval
mode, and the later calls see the statistics the earlier ones moved; so does
``determinism``, which calls it twice in eval mode as well (its code reads
``self.training``) and gets two outputs for one input.

A correct version updates the running statistics only ``if self.training:``, as
``nn.BatchNorm`` does.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class RunningNorm(nn.Module):
    """Normalises by the mean and variance over all elements of the batch."""

    def __init__(self, momentum=0.1, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(()))
        self.register_buffer("running_var", torch.ones(()))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(), x.var(unbiased=False)
        else:
            mean, var = self.running_mean, self.running_var
        out = (x - mean) / torch.sqrt(var + self.eps)
        with torch.no_grad():  # BUG: also at inference, not only if self.training
            self.running_mean.lerp_(x.mean(), self.momentum)
            self.running_var.lerp_(x.var(unbiased=False), self.momentum)
        return out


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.norm = RunningNorm()
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.norm(self.fc1(x)))
        if control > 0.5:
            x = F.relu(self.fc2(x))
        return self.fc3(x)
