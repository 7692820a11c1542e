"""Invariant: padding_invariance

A hand-unrolled GRU cell that keeps stepping over the padding.
``reference_models.unrolled_cell`` holds each row's state once its sequence has ended; this
one steps every row at every step, so the state it returns as each sequence's last has read
the padded steps after it.
"""

from __future__ import annotations

from reference_models.unrolled_cell import UnrolledGRU

__all__ = ["Model"]


class Model(UnrolledGRU):
    @staticmethod
    def held(valid, stepped, state):
        return stepped  # the bug: not held where the sequence has ended
