"""Invariant: coverage

``SVDAdapterLinear`` whose forward looks its adapter up under another name than the one it
was built with, so the low-rank update is never added: the adapter's trainable weights
(``lora_A``, ``lora_E``, ``lora_B``) never reach the output, and training them changes
nothing. The correct version adds the adapter it built (``reference_models/svd_adapter.py``).
"""

from __future__ import annotations

from reference_models.svd_adapter import SVDAdapterLinear

__all__ = ["Model"]


class Model(SVDAdapterLinear):
    def __init__(self, features: int = 8, rank: int = 2, outputs: int = 4) -> None:
        super().__init__(features, rank, outputs)
        self.active_adapter = "adapter"  # BUG: built as "default"; forward never finds it
