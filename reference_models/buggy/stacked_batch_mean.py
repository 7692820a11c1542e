"""Invariant: batch_invariance

A list of sequences of one length, stacked into a batch and centred on the batch's mean
before the GRU: each sample's tags then depend on the other samples in its list. Alone,
a sequence is centred on itself. dyncheck reports the sample whose output changed.

A correct version stacks and runs the list as it is
(``reference_models/sequence_list.py``'s ``StackedSequenceTagger``).
"""

from __future__ import annotations

import torch

from reference_models.sequence_list import StackedSequenceTagger

__all__ = ["Model"]


class Model(StackedSequenceTagger):
    def forward(self, seqs: list[torch.Tensor]):
        x = torch.stack(seqs)
        x = x - x.mean(0, keepdim=True)  # the bug: statistics over the batch
        steps, _ = self.gru(x)
        return self.head(steps)
