"""Invariant: batch_invariance

Greedy decoding that stops the whole batch when the first sample ends.
``reference_models.greedy_decoder`` decodes until every sample has emitted the end token;
this one stops when any has (``ended.any()`` for ``ended.all()``), so a sample's tokens are
cut short by another sample in its batch: alone it decodes further than its row of it.
"""

from __future__ import annotations

from reference_models.greedy_decoder import GreedyDecoder

__all__ = ["Model"]


class Model(GreedyDecoder):
    @staticmethod
    def finished(ended):
        return bool(ended.any())  # the bug: any, not all
