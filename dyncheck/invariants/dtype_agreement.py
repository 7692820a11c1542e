"""dtype_agreement: the float32 model agrees with a float64 copy of itself.

A float64 copy (same weights, same example, same seed) is the reference; float32 outputs
and gradients must match it within float32's tolerance, atol scaled by the values'
magnitude (for gradients: the largest gradient of the model), and at least rtol=1e-3, atol=1e-4: float32 against float64 accumulates rounding
over the whole forward and backward pass (gradients sum over the batch and the steps, and
a saturated tanh or softmax has a float32 derivative of exactly 0 where float64's is tiny).
The check looks for instability — an overflow to inf, a cancellation that loses every
digit — which is orders of magnitude beyond that. Catches arithmetic that is unstable in float32: an unshifted log-sum-exp that
overflows, a variance computed as E[x²] - E[x]², a division by a tiny difference.
"""

from __future__ import annotations

import torch

from dyncheck.agreement import Config, compare, nothing_compared, run_config
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant

__all__ = ["DtypeAgreement"]

FLOAT32 = Config("float32", "cpu", torch.float32)
FLOAT64 = Config("float64 (reference)", "cpu", torch.float64)


class DtypeAgreement(Invariant):
    name = "dtype_agreement"
    summary = "float32 outputs and gradients agree with a float64 copy of the model (the reference)"
    #: (rtol, atol) below which the float32 defaults are not used (see the module docstring)
    floor = (1e-3, 1e-4)

    def check(self, context: Context, example: Example) -> None:
        tolerance = context.settings.tolerances.get(self.name) if context.settings else None
        reference = run_config(context.fresh_model(), context.target, example, FLOAT64)
        context.record(reference.path, example)
        single = run_config(context.fresh_model(), context.target, example, FLOAT32)
        findings = compare(reference, single, tolerance=tolerance, floor=self.floor, model=reference.model)
        if not findings and (missing := nothing_compared(reference)):
            return context.nothing_to_compare(missing)
        context.compared()
        if findings:
            raise InvariantViolation(
                findings[0] if len(findings) == 1 else f"float32 and float64 disagree ({len(findings)} differences):",
                [] if len(findings) == 1 else [f"- {f}" for f in findings],
                path=single.path,
            )
