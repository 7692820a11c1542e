"""A classifier that computes its own label-smoothed loss when forward is handed the targets,
as training loops that call ``logits, loss = model(x, targets)`` do: the smoothed target
distribution is built by scattering ``1 - smoothing`` into the true class of each sample
(``true.scatter_(1, targets.unsqueeze(1), ...)``), and forward returns the logits and the
loss.

What it proves: an argument named like targets that no layer takes is one class index per
sample, below the number of classes, found by calling the model (5: index 4 runs, 5
raises). Before, the scatter read it as indices into another input, and dyncheck refused it
with a Spec that drew 0 to 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LabelSmoothedClassifier"]


class LabelSmoothedClassifier(nn.Module):
    def __init__(self, features=12, hidden=32, classes=5, smoothing=0.1):
        super().__init__()
        self.classes, self.smoothing = classes, smoothing
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x, targets):
        logits = self.net(x)
        log_probs = F.log_softmax(logits, -1)
        with torch.no_grad():
            true = torch.full_like(log_probs, self.smoothing / (self.classes - 1))
            true.scatter_(1, targets.unsqueeze(1), 1.0 - self.smoothing)
        return logits, -(true * log_probs).sum(-1).mean()
