"""Invariant: dtype_agreement, finite, grad_isolation

Log-softmax written out without the max shift: ``logits - logits.exp().sum().log()``.
In float32, ``exp`` overflows to inf once a logit passes about 88, and the output becomes
-inf/NaN; in float64 the same model is fine up to about 709. dyncheck reports the float32
model disagreeing with its float64 copy (and, as the NaN flows on, non-finite outputs and
gradients).

A correct version subtracts the row's maximum first, or calls ``torch.log_softmax``.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x):
        logits = self.fc(x)
        return logits - logits.exp().sum(dim=-1, keepdim=True).log()  # the bug: no max shift
