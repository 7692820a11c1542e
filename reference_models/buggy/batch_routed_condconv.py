"""Invariant: batch_invariance

CondConv (``reference_models/cond_conv.py``) whose routing reads the features pooled over
the batch as well as the image (``x.mean((0, 2, 3))``): one kernel mix for every sample, so a
sample's output depends on the others in its batch. dyncheck reports "sample 0 differs from
the same sample run alone".

The correct version pools each sample alone: ``F.adaptive_avg_pool2d(x, 1).flatten(1)``,
one routing vector per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_models.cond_conv import CondConv2d

__all__ = ["Model"]


class Model(CondConv2d):
    def forward(self, x):
        B, C, H, W = x.shape
        r = torch.sigmoid(self.routing(x.mean((0, 2, 3))))  # the bug: pooled over the batch too
        weight = torch.einsum("e,eoikl->oikl", r, self.weight)
        return F.conv2d(x, weight, r @ self.bias, padding=self.padding)
