"""Invariant: batch_invariance, causality

``WordTransformerLM`` that centres its embeddings over ``dim=1``, meant as the time axis; in
its time-major layout ``[time, batch, size]`` that axis is the batch, so every sequence's
scores depend on the other sequences in its batch. Inference then finds the ids read
time-major making samples depend on each other and draws them ``[batch, time]``, the layout
in which the model runs as a batch-invariant one; there the centring runs over every step,
so the causal model (``WordTransformerLM`` is declared causal) reads later steps too.
"""

from __future__ import annotations

import torch

from reference_models.word_lm import WordTransformerLM

__all__ = ["Model"]


class Model(WordTransformerLM):
    def center(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(1, keepdim=True)  # BUG: dim 1 is the batch when time-major
