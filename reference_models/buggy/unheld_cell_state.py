"""Invariant: padding_invariance

A hand-unrolled GRU cell that keeps stepping over the padding. ``reference_models.unrolled_cell`` holds each row's state once
its sequence has ended; this one updates every row at every step, so the state it returns
as each sequence's last has read the padded steps after it.
"""

from __future__ import annotations

import torch

from reference_models.unrolled_cell import UnrolledGRU

__all__ = ["Model"]


class Model(UnrolledGRU):
    def forward(self, x, lengths):
        batch, steps, _ = x.shape
        state = x.new_zeros(batch, self.cell.hidden_size)
        outputs = []
        for t in range(steps):
            valid = (t < lengths.to(x.device))[:, None]
            state = self.cell(x[:, t], state)  # the bug: not held where the sequence has ended
            outputs.append(torch.where(valid, self.head(state), torch.zeros((), dtype=x.dtype, device=x.device)))
        return torch.stack(outputs, 1), state
