"""refactor_agreement: a refactored model computes what the old one computed, on every path.

Runs only when an old model is configured (``--dyncheck-against OLD``, ``Spec(against=...)``
or the ``dyncheck_against`` ini value). The old model's weights are loaded into the new one
through ``Spec(state_map=...)``; on each example both run under the same seed and must give
the same outputs, gradients (mapped back to the old parameters) and branch decisions. The
work is done by :mod:`dyncheck.guard.differential`.
"""

from __future__ import annotations

from typing import Any

from dyncheck.examples import Example
from dyncheck.guard.differential import Differential, given_against, resolve_against
from dyncheck.invariants._base import Context, Invariant
from dyncheck.target import Target

__all__ = ["RefactorAgreement"]


class RefactorAgreement(Invariant):
    name = "refactor_agreement"
    summary = (
        "with --dyncheck-against OLD: the same weights (through Spec(state_map=...)), example and seed give "
        "the old model's outputs, gradients and path; the report names the first diverging module"
    )
    #: collected only when an old model is configured
    opt_in = True

    def configured(self, target: Target, settings: Any) -> str | None:
        if given_against(target, settings) is None:
            return "no old model to compare with: give --dyncheck-against=OLD (module:Name or git:REV) or Spec(against=...)"
        return None

    def check(self, context: Context, example: Example) -> None:
        differential = context.memo.get(self.name)
        if differential is None:
            tolerance = context.tolerance(self.name)
            against = resolve_against(context.target, context.settings)
            differential = context.memo[self.name] = Differential(context.target, against, tolerance)
        context.compared()
        differential.check(context.fresh_model(), example, record=lambda path: context.record(path, example))
