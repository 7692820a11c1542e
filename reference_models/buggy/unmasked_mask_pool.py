"""Invariant: padding_invariance

:class:`reference_models.padding_mask.MaskedTokenEncoder` (x-transformers' calling
convention, ``forward(x, mask=None)``, the mask True at tokens), its attention reading the
mask and its mean pool not, ``h.mean(1)``: the padding's states count in each sequence's
summary, which changes with more padding.

The correct version averages over the tokens the mask keeps:
``(h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)``.
"""

from __future__ import annotations

from reference_models.padding_mask import MaskedTokenEncoder

__all__ = ["Model"]


class Model(MaskedTokenEncoder):
    def forward(self, x, mask=None):
        return self.head(self.encode(x, mask).mean(1))  # BUG: the padding's states count in the mean
