"""finite: no NaN or inf in the outputs, or in any parameter gradient after backward.

Gradients that overflow only because normalisation layers normalised a constant input (a
batch of all-zero images through EfficientNet's stack of train-mode BatchNorms) are the
example's, not the model's: see :mod:`dyncheck.norms`.
"""

from __future__ import annotations

import torch

from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.norms import constant_norm_overflow, note_overflow
from dyncheck.tracing import floating_leaves, missing_output

__all__ = ["Finite", "non_finite"]


def non_finite(tensor: torch.Tensor) -> str | None:
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return None
    bad = ~torch.isfinite(tensor.detach())
    count = int(bad.sum())
    if not count:
        return None
    first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    values = tensor.detach()[bad]
    kinds = []
    if torch.isnan(values).any():
        kinds.append(f"{int(torch.isnan(values).sum())} NaN")
    if torch.isinf(values).any():
        kinds.append(f"{int(torch.isinf(values).sum())} inf")
    return f"{count} / {tensor.numel()} non-finite ({', '.join(kinds)}), first at index {first}"


_NOTHING_FLOATING = "the output has no floating tensor and there is no loss: nothing can be NaN/inf"


class Finite(Invariant):
    name = "finite"
    summary = "no NaN/inf in the outputs, or in any parameter's gradient after backward of the loss"

    def check(self, context: Context, example: Example) -> None:
        model = context.fresh_model()
        trace = context.run(model, example, backward=True)
        floating = [t for _, t in floating_leaves(trace.output) if t.is_floating_point() or t.is_complex()]
        if not floating and trace.loss is None:
            return context.nothing_to_compare(missing_output(trace.output) or _NOTHING_FLOATING)
        context.compared()
        outputs = [
            f"{name}: {found}"
            for name, tensor in floating_leaves(trace.output)
            if (found := non_finite(tensor)) is not None
        ]
        if outputs:
            raise InvariantViolation(
                "The model produced NaN/inf outputs for an input the spec allows.",
                outputs,
                path=trace.path,
            )
        if trace.loss is not None and (found := non_finite(trace.loss)) is not None:
            raise InvariantViolation(
                "The loss is NaN/inf although every output is finite.",
                [f"loss: {trace.loss.item()!r}"],
                path=trace.path,
            )
        gradients = []
        for name, parameter in model.named_parameters():
            if parameter.grad is not None and (found := non_finite(parameter.grad)) is not None:
                gradients.append(f"{name}.grad: {found}")
        if gradients:
            if (reason := constant_norm_overflow(context, example)) is not None:
                return note_overflow(context, reason)  # the outputs were compared
            raise InvariantViolation(
                "The outputs are finite but backward produced NaN/inf gradients "
                "(a NaN from an untaken torch.where side, sqrt/log/norm at 0, or a division by a zero norm).",
                gradients,
                path=trace.path,
            )
