"""Invariant: compile_agreement

Code that asks whether it is being compiled and takes another path when it is:
``if torch.compiler.is_compiling(): ...``. Here the compiled graph skips a scaling the
eager model applies, as an "optimisation" written for the compiler. Eager and compiled
give different outputs; dyncheck reports "output differs on torch.compile from eager".
(Not in ``BUGGY_TARGETS``: compile_agreement is opt-in, so the generic buggy-model test
does not collect it; ``tests/test_agreement.py`` checks this model.)

A correct version computes the same thing either way.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x):
        out = self.fc(x)
        if not torch.compiler.is_compiling():  # the bug: eager and compiled differ
            out = out * 1.5
        return out
