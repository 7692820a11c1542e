"""Invariant: batch_invariance

The adapter mixture with a batch shortcut: every sample gets the first sample's adapter
(``self.A[adapter_ids[0]]``, as a server that assumed one tenant per batch), so a sample's
output depends on which sample leads the batch.
"""

from __future__ import annotations

import torch

from reference_models.adapter_mixture import AdapterMixture, _AdaptedLinear

__all__ = ["Model"]


class _FirstAdapterLinear(_AdaptedLinear):
    def forward(self, x, adapter_ids):
        A = self.A[adapter_ids[0]]  # BUG: the first sample's adapter for the whole batch
        B = self.B[adapter_ids[0]]
        return self.base(x) + self.scale * torch.einsum("or,ri,bi->bo", B, A, x)


class Model(AdapterMixture):
    def __init__(self):
        super().__init__()
        self.l1 = _FirstAdapterLinear(12, 16)
        self.l2 = _FirstAdapterLinear(16, 4)
