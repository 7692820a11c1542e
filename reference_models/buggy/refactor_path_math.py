"""Invariant: refactor_agreement

The fused self-attention (:mod:`reference_models.fused_attention`), with one path's math
changed in the refactor: the refinement block that runs when ``control > 0.5`` now uses
``tanh`` where the old one used ``relu``. The other path computes exactly what it did, so a
test that feeds the refactor one ordinary control value passes half the time;
``refactor_agreement`` reports the examples on the refined path, and names ``refine`` as
the first diverging module: its input and its inner ``refine.fc`` agree with the old
model's, its output does not.

A correct refactor keeps the block's math (``relu``).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reference_models.fused_attention import FusedAttention as _Fused

__all__ = ["Model"]


class TanhRefine(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.fc = nn.Linear(size, size)

    def forward(self, h):
        return torch.tanh(self.fc(h))  # the bug: the old block is relu(fc(h))


class Model(_Fused):
    def __init__(self, input_size=8, hidden_size=6, output_size=4):
        super().__init__(input_size, hidden_size, output_size)
        self.refine = TanhRefine(hidden_size)
