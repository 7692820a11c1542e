"""Invariant: purity, determinism, state_roundtrip, batch_invariance

``spiking.LeakyLayerSNN`` whose neurons start each call from the membrane the last call
left in their scratch buffer, as snntorch's ``init_hidden=True`` neurons do when nothing
resets them between batches: a batch's spikes depend on the batch before it. The buffer is
outside the state_dict and rewritten in eval mode, and the next call reads it, so inference
changes the model (purity), two calls with the same input differ (determinism), a copy
loaded from the state_dict starts from another membrane (state_roundtrip), and a sample
alone starts from another than in its batch (batch_invariance).

A correct version starts each call from ``init_leaky()`` (``spiking.LeakyLayerSNN``), or
resets the neurons' state before each batch.
"""

from __future__ import annotations

import torch

from reference_models.spiking import LeakyLayer, LeakyLayerSNN

__all__ = ["Model"]


class _CarriedLeaky(LeakyLayer):
    def start(self, current: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        if mem.numel() == 0 and self.mem.shape == current.shape:
            return self.mem  # BUG: the last call's membrane, not a fresh one
        return mem


class Model(LeakyLayerSNN):
    def __init__(self, inputs=8, hidden=16, outputs=4, beta=0.9):
        super().__init__(inputs, hidden, outputs, beta, layer=_CarriedLeaky)
