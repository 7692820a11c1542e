"""Invariant: batch_invariance

``ParallelScanGRU`` whose one-step form normalises its gate with a softmax over dim 0, the
batch, instead of a sigmoid per entry: a sample's state on a one-step sequence moves with
the other samples in the batch. The parallel form is right, so the bug shows only where
sequences of one step are drawn: missed while the input was drawn as vectors (its axis 1,
the features, never 1). The correct version is ``reference_models/parallel_scan.py``.
"""

from __future__ import annotations

import torch

from reference_models.parallel_scan import ParallelScanGRU

__all__ = ["Model"]


class Model(ParallelScanGRU):
    def step_gate(self, gate: torch.Tensor) -> torch.Tensor:
        return gate.softmax(dim=0)  # over the batch: samples coupled
