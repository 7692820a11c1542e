"""Invariant: padding_invariance

``TopKTokenRouter`` with non-negative scores whose padding is masked to 0 rather than
``-inf``: a valid token scored 0 (a ReLU below zero) ties with the padding, and a padded
batch may send a padding step to the heavy branch in its place, which a sequence alone
never does (CoLT5-attention's router, whose scores underflow to 0). Broken ties are taken
both ways before a difference is called an order of a tie: the padding is picked under
one of them. The correct version masks padding to ``-inf``
(``reference_models/token_router.py``).
"""

from __future__ import annotations

from reference_models.token_router import TopKTokenRouter

__all__ = ["Model"]


class Model(TopKTokenRouter):
    padding_score = 0.0  # BUG: a valid token scored 0 ties with padding
