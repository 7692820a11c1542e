"""Invariant: finite, grad_isolation

``DepthwiseNormNet``'s stack of train-mode BatchNorms and depthwise convolutions, then the
"safe" square root of ``nan_gradient`` on the pooled features: ``torch.where(h > 0,
torch.sqrt(h), 0)``, whose backward is NaN wherever ``h <= 0``, on any image.

On a batch with a channel flat over the batch and the image, the BatchNorms also overflow
that channel's gradient in float32 (see ``reference_models.depthwise_norm``), an innocent
cause dyncheck does not report once scaling the norms' backward as eps 1 would makes
every gradient finite; here the NaN stays, so it is the model's and is reported. The correct version makes the
untaken side harmless before the ``sqrt``, as in ``nan_gradient_behind_norms``.
"""

from __future__ import annotations

import torch

from reference_models.depthwise_norm import DepthwiseNormNet

__all__ = ["Model"]


class Model(DepthwiseNormNet):
    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        h = x.mean((2, 3))
        # BUG: sqrt's gradient at h <= 0 is inf/NaN and leaks through where's untaken side.
        h = torch.where(h > 0, torch.sqrt(h), torch.zeros_like(h))
        return self.head(h)
