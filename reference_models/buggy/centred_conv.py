"""Invariant: causality

A TCN (``reference_models/causal_tcn.py``) whose ``Chomp1d`` cuts the padding off the
wrong end: ``x[:, :, size:]`` keeps the right padding, so each convolution is centred on
its step instead of ending there, and step ``t`` of the output reads steps up to ``t + 3``
of the input (two layers, dilations 1 and 2). Every other check passes: the model is
deterministic, batch-invariant and finite; only a comparison with the first steps run
alone sees the future leak in. dyncheck reports the earliest output step that changes and
the first later input step that alone changes it.
"""

from __future__ import annotations

import torch

from reference_models.causal_tcn import CausalTCN, Chomp1d

__all__ = ["Model"]


class _WrongEndChomp(Chomp1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, self.size:].contiguous()  # the bug: cuts the left padding, keeps the right


class Model(CausalTCN):
    def __init__(self) -> None:
        super().__init__()
        for block in self.network:
            for index, layer in enumerate(block.net):
                if isinstance(layer, Chomp1d):
                    block.net[index] = _WrongEndChomp(layer.size)
