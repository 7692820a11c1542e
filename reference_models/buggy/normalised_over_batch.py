"""Invariant: batch_invariance

A contrastive model that L2-normalises its embeddings over the batch instead of over their
features (``F.normalize(z, dim=0)``), a slip that still trains: each sample's embedding is
divided by a norm taken across every sample in the batch, so its similarity to its own
views changes with the other samples. ``reference_models.two_views`` normalises over the
features (``dim=-1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference_models.two_views import TwoViewContrast

__all__ = ["Model"]


class Model(TwoViewContrast):
    def embed(self, view: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(view), dim=0)  # the bug: over the batch
