"""Invariant: padding_invariance

DeepSets over padded sets (``reference_models/deep_sets.py``) whose pooling zeroes the
padded elements but divides by the padded size (``h.mean(1)``): a set's output shrinks
with the padding its batch adds. dyncheck draws the required ``mask`` as the sets' padding
mask and reports "appending padding steps changes the output of row 0".

The correct version divides by the real elements: ``h.sum(1) / mask.sum(1, keepdim=True)``.
"""

from __future__ import annotations

from reference_models.deep_sets import DeepSets

__all__ = ["Model"]


class Model(DeepSets):
    def forward(self, x, mask):
        h = self.phi(x) * mask.unsqueeze(-1)
        return self.rho(h.mean(1))  # the bug: the mean counts the padding
