"""Invariant: padding_invariance

``LastItemGRU`` with a bidirectional GRU over the padded sessions, not packed: the backward
direction reaches each session's last valid step from the padding after it, so the next
item's scores move with how far a session is padded. The correct version reads each session
one way (``reference_models/last_item.py``), or packs the sessions by their lengths.
"""

from __future__ import annotations

from reference_models.last_item import LastItemGRU

__all__ = ["Model"]


class Model(LastItemGRU):
    def __init__(self, n_items: int = 30, dim: int = 8) -> None:
        super().__init__(n_items, dim, bidirectional=True)  # BUG: the backward pass reads the padding
