"""A classifier with a hand-written batch norm: in training it normalises each feature by
the batch's statistics and moves two running statistics (registered buffers), at
inference it normalises by those. ``nn.BatchNorm1d`` does the same; many models carry their
own (a norm over the last axis of a sequence, a momentum schedule of their own).

What it proves: ``state_roundtrip`` compares a fresh copy loaded from the state_dict in
eval mode too where the model's own code reads ``self.training``, and the running
statistics, in the state_dict, agree there. The buggy counterpart registers them with
``persistent=False`` (``buggy/unsaved_running_stats.py``): in train mode the two copies
agree, in eval mode the fresh one normalises by its initial statistics.

``UnbiasedNormClassifier`` takes the batch's unbiased variance, as nflows' ``BatchNorm``
does: a batch of one sample gives NaN in train mode. What it proves: resolution finds that
(NaN at a batch of 1, finite at 2) and draws batches of 2 or more, as it does for torch's
BatchNorm, which refuses a batch of 1 outright; before, ``finite`` and ``grad_isolation``
reported the NaN of one sample's variance.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RunningNormClassifier", "UnbiasedNormClassifier"]


class FeatureNorm(nn.Module):
    def __init__(self, features, momentum=0.1, eps=1e-5, persistent=True, unbiased=False):
        super().__init__()
        self.momentum, self.eps, self.unbiased = momentum, eps, unbiased
        self.register_buffer("running_mean", torch.zeros(features), persistent=persistent)
        self.register_buffer("running_var", torch.ones(features), persistent=persistent)

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=self.unbiased)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)


class RunningNormClassifier(nn.Module):
    def __init__(self, features=6, hidden=8, classes=3, unbiased=False):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.norm = FeatureNorm(hidden, unbiased=unbiased)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.norm(self.fc1(x))))


class UnbiasedNormClassifier(RunningNormClassifier):
    def __init__(self, features=6, hidden=8, classes=3):
        super().__init__(features, hidden, classes, unbiased=True)
