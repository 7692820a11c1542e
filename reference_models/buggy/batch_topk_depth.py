"""Invariant: batch_invariance

A mixture-of-depths whose routed tokens are the top ones of the whole batch, its tokens
flattened, instead of each sequence's own: which of a sequence's tokens go through the
block depends on the other sequences' scores. ``depth_router.py`` is the correct one
(per-sample ``topk``).
"""

from __future__ import annotations

import torch

from reference_models.depth_router import MixtureOfDepths

__all__ = ["Model"]


class Model(MixtureOfDepths):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens)
        batch, time, dim = x.shape
        flat = x.reshape(batch * time, dim)
        k = max(1, int(self.capacity * batch * time))
        scores = self.router(flat).squeeze(-1)
        top = scores.topk(k).indices  # BUG: over every sequence's tokens at once
        update = self.block(flat[top]) * torch.sigmoid(scores[top]).unsqueeze(-1)
        return self.head(flat.index_add(0, top, update).reshape(batch, time, dim))
