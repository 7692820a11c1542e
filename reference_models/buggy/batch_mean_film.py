"""Invariant: batch_invariance

A FiLM layer whose scale and shift are averaged over the batch, as a refactor that meant to
pool over the condition's tokens did: each sample is modulated by every sample's condition.
dyncheck reports the sample whose output changed when run alone.

A correct version modulates each sample by its own condition
(``reference_models/film.py``).
"""

from __future__ import annotations

from reference_models.film import FiLMConditioned

__all__ = ["Model"]


class Model(FiLMConditioned):
    def modulation(self, condition):
        scale, shift = self.film(condition).chunk(2, dim=-1)
        return scale.mean(0), shift.mean(0)  # the bug: over the batch
