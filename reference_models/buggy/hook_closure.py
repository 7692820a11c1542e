"""Invariant: tied_weights

``StagedEMA`` whose backward hook is a closure over ``self`` made in ``__init__``
(routing-transformer's pattern): ``copy.deepcopy`` copies the function as it is, so a
copy's backward applies the original's staged centre, never its own, and a copy (an
nn.DataParallel replica) never moves its centre. The correct version registers a method,
which a copy rebinds to itself (``reference_models/staged_ema.py``).
"""

from __future__ import annotations

from torch import nn

from reference_models.staged_ema import StagedEMA

__all__ = ["Model"]


class Model(StagedEMA):
    def _register_update(self) -> None:
        owner = self

        def apply_staged(module: nn.Module, grad_output: object) -> None:
            owner.update()  # BUG: the model this closure was made on, whichever copy runs

        self.out.register_full_backward_pre_hook(apply_staged)
