"""finite: no NaN or inf in the outputs, or in any parameter gradient after backward.

Gradients that overflow only because normalisation layers normalised a constant input (a
batch of all-zero images through EfficientNet's stack of train-mode BatchNorms) are the
example's, not the model's: see :mod:`dyncheck.norms`.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.norms import constant_norm_overflow, note_overflow
from dyncheck.tracing import floating_leaves, missing_output

__all__ = ["Finite", "non_finite", "padding_indices"]


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


#: Calls whose result is memory not yet written: a NaN in it is whatever was there before,
#: made by no one (a later op fills it).
_UNWRITTEN = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


class _FirstNonFinite(TorchFunctionMode):
    """Notes the first torch call that returned a NaN or inf from inputs that were all
    finite: the op, the model's line that made it, and its inputs' shapes. Calls that
    return unwritten memory (``torch.empty``) make no values and are passed over."""

    def __init__(self) -> None:
        super().__init__()
        self.found: str | None = None
        #: the first was a fill with -inf (masked logits): made on purpose
        self.masked = False

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.found is None:
            try:
                self._look(func, args, kwargs, result)
            except Exception:  # noqa: BLE001 - a description, never a new failure
                pass
        return result

    def _look(self, func: Any, args: tuple, kwargs: dict, result: Any) -> None:
        from torch.utils._pytree import tree_leaves

        from dyncheck.casting import _op_name, _user_frame, _where

        if getattr(func, "__name__", None) in _UNWRITTEN:
            return
        outputs = [t for t in tree_leaves(result) if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not outputs or all(bool(torch.isfinite(t.detach()).all()) for t in outputs):
            return
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if any(t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()) for t in inputs):
            return  # carried on, not made here
        where = _where(_user_frame(sys._getframe(2)))
        shapes = ", ".join(
            f"{list(t.shape)}" + (f" = {t.item():g}" if t.numel() == 1 and not t.is_complex() else "")
            for t in inputs
        ) or "none"
        self.masked = getattr(func, "__name__", "") in _FILLS and any(
            _minus_inf(value) for value in (*args[1:], *kwargs.values())
        )
        empty = [t for t in inputs if t.numel() == 0]
        # A loss summed over no elements, divided by their count (x-transformers' masked mean).
        nothing_over_nothing = (
            "div" in getattr(func, "__name__", "") and len(inputs) == 2
            and all(t.numel() == 1 and not t.is_complex() and t.item() == 0 for t in inputs)
        )
        self.found = (
            f"first NaN/inf made by {_op_name(func)}{f' at {where}' if where else ''}, from finite inputs "
            f"{shapes}"
            + (": an empty tensor (a mean over no elements is NaN; a size this small may be one the model "
               "does not take: give its range in Spec(dims=...))" if empty else "")
            + (": 0 / 0, a sum over no elements divided by their count (a size this small may be one the model "
               "does not take: give its range in Spec(dims=...))" if nothing_over_nothing and not empty else "")
        )


#: Calls that fill a tensor's places with a value: with -inf, a mask made on purpose.
_FILLS = frozenset({"masked_fill", "masked_fill_", "fill_", "full", "full_like", "new_full", "where", "index_fill",
                    "index_fill_"})


def padding_indices(model: nn.Module) -> dict[int, str]:
    """The ``padding_idx`` each Embedding or EmbeddingBag of ``model`` names, with the kind of
    layer that names it."""
    return {
        m.padding_idx: "EmbeddingBag" if isinstance(m, nn.EmbeddingBag) else "Embedding"
        for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.padding_idx is not None
    }


def _only_padding(model: nn.Module, example: Example) -> list[str]:
    """A line where a token input is made only of an Embedding's (or EmbeddingBag's)
    ``padding_idx`` (ESM-2: a row of its pad token, which it never gets, averages over no
    token; a key padding mask made from ``ids == pad`` masks every key): the size is not the
    cause, and a declared padding value keeps that id out of the tokens."""
    pads = padding_indices(model)
    for name, value in example.args.items():
        if (
            isinstance(value, torch.Tensor) and not value.is_floating_point() and value.dtype != torch.bool
            and value.numel() and int(value.min()) == int(value.max()) and int(value.min()) in pads
        ):
            pad = int(value.min())
            return [
                f"every token of {name} is {pad}, an {pads[pad]}'s padding_idx: a sequence of padding only. If the "
                f"model finds its padding by that id and is never given such a row, declare "
                f"Spec(padding_value={pad}): no check then draws the pad id as a token"
            ]
    return []


def _minus_inf(value: Any) -> bool:
    if isinstance(value, float):
        return value == float("-inf")
    return isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point() and (
        float(value) == float("-inf")
    )


def first_non_finite(context: Context, example: Example) -> str | None:
    """Where the example's first NaN or inf output value was made (the model run again,
    seeded as before, on a fresh copy); None when that is not found."""
    return _locate(context, example).found


def _locate(context: Context, example: Example) -> _FirstNonFinite:
    """:func:`first_non_finite`'s finder, after the run: what it found, and whether it was
    a fill with -inf."""
    finder = _FirstNonFinite()
    try:
        with finder:
            context.run(context.fresh_model(), example)
    except Exception:  # noqa: BLE001 - the check reports what it found; this only describes it
        finder.found, finder.masked = None, False
    return finder


def _only_minus_inf(output: Any) -> bool:
    """Whether every non-finite value of the output's floating tensors is -inf."""
    return all(
        bool((tensor.detach()[~torch.isfinite(tensor.detach())] == float("-inf")).all())
        for _, tensor in floating_leaves(output) if tensor.is_floating_point()
    )


_NOTHING_FLOATING = "the output has no floating tensor and there is no loss: nothing can be NaN/inf"

#: Inputs larger than this in magnitude are beyond normalised data (pixels, embeddings, features).
_LARGE = 10.0


def _large_inputs(context: Context, example: Example, *, gradients: bool) -> list[str]:
    """A line for a NaN/inf that only large inputs make: when a floating input of the example
    exceeds :data:`_LARGE` in magnitude and the same example with each such input scaled to
    magnitude 1 gives finite outputs (and gradients), the inputs' range is the likely cause
    (a VAE's ``exp(0.5 * logvar)`` at pixels of 1e3), and the Spec that bounds them is
    named. One more call, only for the failure Hypothesis reports."""
    from dyncheck.invariants._where import reported

    large = {
        name: float(value.detach().abs().max())
        for name, value in example.args.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel()
        and float(value.detach().abs().max()) > _LARGE
    }
    if not large or not reported():
        return []
    scaled = {name: value / large[name] if name in large else value for name, value in example.fresh_args().items()}
    try:
        model = context.fresh_model()
        trace = context.run(model, Example(scaled, example.seed, example.dims), backward=gradients, record=False)
    except Exception:  # noqa: BLE001 - only a hint
        return []
    if any(non_finite(t) is not None for _, t in floating_leaves(trace.output)):
        return []
    if gradients and any(p.grad is not None and non_finite(p.grad) is not None for p in model.parameters()):
        return []
    name, size = max(large.items(), key=lambda item: item[1])
    return [
        f"large inputs: {name} reaches {size:.3g} here, and with the large inputs scaled to magnitude 1 the "
        f"{'gradients' if gradients else 'outputs'} are finite. If the model's inputs are bounded (pixels in [0, 1], "
        f"normalised features), say so: Spec(inputs={{{name!r}: tensors(shape=..., min_value=..., max_value=...)}})"
    ]


_INFERENCE_ONLY = (
    "Only eval mode without autograd runs this: running statistics instead of the batch's, and torch's "
    "fused inference paths (nn.TransformerEncoderLayer's and nn.MultiheadAttention's fast path gives NaN for "
    "a query whose keys are all masked; give each query a key it may attend to, or its own position)."
)


class Finite(Invariant):
    name = "finite"
    summary = (
        "no NaN/inf in the outputs, or in any parameter's gradient after backward of the loss, nor in the "
        "outputs in eval mode without autograd"
    )

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
        # Where the first was made: by a fill with -inf, when every one is -inf, a mask made on
        # purpose (logits.masked_fill(~mask, float("-inf")): a policy's masked actions, a
        # pointer network's visited positions), not a finding.
        finder = _locate(context, example) if outputs else None
        masked = finder.found if finder is not None and finder.masked and _only_minus_inf(trace.output) else None
        if outputs and masked is None:
            origin = finder.found
            raise InvariantViolation(
                "The model produced NaN/inf outputs for an input the spec allows.",
                outputs + ([origin] if origin else []) + _large_inputs(context, example, gradients=False)
                + _only_padding(model, example),
                path=trace.path,
            )
        if masked is not None:
            context.note("masked", lambda count: (
                f"-inf outputs made on purpose on {count} example{'' if count == 1 else 's'} (masked logits: "
                f"{masked.removeprefix('first NaN/inf made by ').partition(', from finite inputs')[0]}): not "
                "reported; gradients and the rest still checked"
            ))
        if masked is None and trace.loss is not None and (found := non_finite(trace.loss)) is not None:
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
                gradients + _large_inputs(context, example, gradients=True),
                path=trace.path,
            )
        # Inference: eval mode without autograd runs code training does not (running
        # statistics, torch's fused inference paths: nn.TransformerEncoderLayer's fast path
        # gives NaN for a query whose keys are all masked, where the training path does not).
        # A plain call: the module hooks every other run uses turn those fast paths off.
        output = context.call(
            context.fresh_model().eval(), example.fresh_args(), example.seed, hooked=False, stage="forward in eval mode"
        )
        outputs = [
            f"{name}: {found}" for name, tensor in floating_leaves(output) if (found := non_finite(tensor)) is not None
        ]
        if outputs and masked is not None and _only_minus_inf(output):
            outputs = []  # the same fills with -inf as in training
        if outputs:
            raise InvariantViolation(
                "The model produced NaN/inf outputs in eval mode without autograd (inference) for an input the "
                "spec allows, where in training mode they were finite.",
                outputs + [_INFERENCE_ONLY] + _large_inputs(context, example, gradients=False)
                + _only_padding(model, example),
                path=trace.path,
            )
