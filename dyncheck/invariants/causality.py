"""causality: no output step depends on a later input step.

Opt-in. A model declared causal, ``Spec(causal=True)`` (the inputs' ``"time"`` axis, or the
one its lengths are drawn over), ``Spec(causal="frames")`` (another named axis) or
``Spec(causal={"axis": "frames", "lookahead": k})`` (each output step may read ``k`` later
steps, no more: a streaming encoder's right context), is checked by default; any other model when ``--dyncheck-invariants`` names ``causality``. A
causal language model, a causal convolution (a TCN, WaveNet), a streaming encoder or an
RNN run forward only has the property; one that attends to the next token, pads a
convolution on both sides or normalises over every step does not.

On every example whose time axis has at least 2 steps (the check draws it from one more
than the spec's shortest), a prefix length ``p`` shorter than the sequence is drawn from
the example's seed, so a replay cuts at the same step:

1. the outputs at steps ``0..p-1`` equal the outputs of the inputs' first ``p`` steps run
   alone (each input cut on its time axis, lengths capped at ``p``): what the model gives
   when it streams, or generates one step at a time. With a look-ahead of ``k``, ``p`` is
   more than ``k`` and the prefix's last ``k`` steps are not compared.

When they differ, the same full sequence with other values at steps ``p`` and after says
what crossed: later values (the failure then names the earliest output step that changed
and the first later input step that alone changes it), or the sequence's length alone (a
position scaled by the length, a statistic over every step). Where the spec allows no
shorter sequence (a fixed ``"time"`` size), rule 1 is replaced by that comparison: other
values at steps ``p`` and after leave the outputs at steps ``0..p-1`` unchanged.

Outputs: an output axis that has the sequence's length ``T`` in the full call and ``p`` in
the prefix's (or as many steps more or fewer in both: a start token put first) is a time
axis, compared on its first steps. An output with no time axis (a final hidden state, a
pooled vector) depends on every step by design and is not compared; one whose axis follows
the length at another rate (a strided convolution) is not compared either, and the summary
says so. A check that finds no output with a time axis compares nothing (a skip).

Inputs: the time axis of each input is the one its strategy's shape names with the time
dimension (an attention mask drawn over it: its last axis); inputs without one (an initial
hidden state, an encoder's memory) are passed whole. The values put in later steps are
random floats at the input's scale and token ids from the input's range; masks, lengths
and booleans are cut, never changed.

Innocent explanations are ruled out before a failure: rounding (the calls run on a float64
copy, compared with the tolerances of the model's own dtype, as padding_invariance does),
and random numbers drawn in eval mode (outputs that change with the seed: a shorter
sequence draws other numbers, so that example compares nothing and the summary says so).
Every call runs in eval mode (dropout) on a fresh copy (state carried from one call to the
next is purity's and determinism's to report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from dyncheck.agreement import default_dtype
from dyncheck.casting import cast
from dyncheck.compare import all_finite, mismatch, tolerances
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example, strategy_arguments, strategy_kind
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants.padding_invariance import (
    Slot, _input_scale, _int_bounds, _strategy, _to_float64, _with, lengths_argument, slot_text, slot_value, slots,
)
from dyncheck.target import Target
from dyncheck.tracing import floating_leaves, missing_output

__all__ = ["Causality", "time_dim"]

#: The most later steps changed one at a time to find the one that reaches an earlier output.
_SEARCH = 16

_RANDOM = (
    "forward draws random numbers in eval mode (its outputs change with the seed), and a shorter sequence draws "
    "other ones: nothing to compare across lengths"
)
_NAN = "the outputs hold NaN or inf (finite reports where they are made): nothing to compare"


def time_dim(target: Target) -> str:
    """The named axis a causal model runs over: ``Spec(causal="frames")``'s (or
    ``{"axis": "frames"}``'s), else the one the lengths are drawn over, else ``"time"``."""
    causal = target.spec.causal
    if isinstance(causal, Mapping):
        causal = causal.get("axis")
    if isinstance(causal, str):
        return causal
    found = lengths_argument(target)
    if found is not None:
        dim = strategy_arguments(_strategy(target, found)).get("max_length")
        if isinstance(dim, str):
            return dim
    return "time"


def lookahead(target: Target) -> int:
    """The later steps an output step may read: ``Spec(causal={"lookahead": k})``'s ``k``, else 0."""
    causal = target.spec.causal
    return int(causal.get("lookahead", 0)) if isinstance(causal, Mapping) else 0


def _axis(strategy: Any, dim: str, rank: int | None = None) -> int | None:
    """The axis of the value ``strategy`` draws that is named ``dim``: its shape's, or an
    attention mask's last; None when it names none (or its rank is not ``rank``)."""
    arguments = strategy_arguments(strategy)
    if strategy_kind(strategy) == "attention_masks":
        return (1 if rank in (None, 2) else None) if arguments.get("max_length", "time") == dim else None
    shape = arguments.get("shape")
    if not isinstance(shape, (tuple, list)) or dim not in shape or (rank is not None and len(shape) != rank):
        return None
    return list(shape).index(dim)


def _bounds(target: Target, dim: str) -> Any:
    from dyncheck.strategies import DEFAULT_DIMS

    return dict(target.spec.dims).get(dim, DEFAULT_DIMS.get(dim))


def _shorter(target: Target, dim: str, steps: int) -> list[int]:
    """The prefix lengths the spec allows for a sequence of ``steps``: every length from its
    shortest up to ``steps - 1`` (or the drawn sizes below it); none for a fixed size."""
    bounds = _bounds(target, dim)
    if isinstance(bounds, tuple) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
        return list(range(max(1, bounds[0]), steps))
    elements = getattr(bounds, "elements", None)  # st.sampled_from(sizes), as the size probe gives
    if isinstance(elements, Sequence) and elements and all(isinstance(e, int) for e in elements):
        return sorted(e for e in set(elements) if 1 <= e < steps)
    if bounds is None or isinstance(bounds, int):
        return []
    return list(range(1, steps))  # another strategy: any length may be refused, and then says so


def _head(value: torch.Tensor, cut: list[tuple[int, int]]) -> torch.Tensor:
    """``value`` narrowed to the first steps of each time axis (``(axis, steps)`` pairs)."""
    for axis, steps in cut:
        value = value.narrow(axis, 0, steps)
    return value


def _first_differing(a: torch.Tensor, b: torch.Tensor, axis: int, rtol: float, atol: float) -> int | None:
    """The first index along ``axis`` at which ``a`` and ``b`` (one shape) differ beyond the
    tolerances (NaN in one only counts)."""
    if not a.is_complex():
        a, b = a.to(torch.float64), b.to(torch.float64)
    close = torch.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    bad = (~close).movedim(axis, 0).reshape(close.shape[axis], -1).any(1).nonzero()
    return int(bad[0]) if bad.numel() else None


class _Calls:
    """Calls of fresh eval-mode copies of the model, in float64 with the tolerances of the
    model's own dtype, or, where the float64 copy cannot run or is not finite, in the
    model's own dtype with ``atol`` grown to the inputs' scale (see padding_invariance)."""

    def __init__(self, context: Context, example: Example) -> None:
        self.context, self.example = context, example
        native = next((p.dtype for p in context.prototype().parameters() if p.is_floating_point()), None)
        #: the model's own dtype while the calls run in float64; None when they run as it is
        self.native = None if native is None or native == torch.float64 or native.is_complex else native
        self.slack = 1.0
        self.path: tuple[str, ...] | None = None

    def first(self, args: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The full example's outputs, its path recorded; decides the dtype of every call."""
        if self.native is not None:
            try:
                outputs = self(args, record=True)
                if all_finite(outputs.values()):
                    return outputs
            except ModelError:
                pass
            self.native = None  # the float64 copy cannot serve
            self.slack = _input_scale(args)
        return self(args, record=True)

    def __call__(
        self, args: Mapping[str, Any], *, record: bool = False, seed: int | None = None, stage: str = "forward",
    ) -> dict[str, torch.Tensor]:
        context, example = self.context, self.example
        model = context.fresh_model().eval()
        arguments = dict(args)
        if self.native is not None:
            model = cast(model, torch.float64)
            arguments = {name: _to_float64(value) for name, value in arguments.items()}
        with default_dtype(torch.float64 if self.native is not None else None):
            if record:  # the full example's call: its path counts in the census
                trace = context.run(model, Example(arguments, example.seed, example.dims), grad=False)
                self.path, output = trace.path, trace.output
            else:
                output = context.call(model, arguments, example.seed if seed is None else seed, stage=stage)
        return {
            name: leaf for name, leaf in floating_leaves(output)
            if leaf.is_floating_point() or leaf.is_complex()
        }

    def tolerances(self, leaf: torch.Tensor) -> tuple[float, float]:
        rtol, atol = tolerances(self.native or leaf.dtype)
        return rtol, atol * self.slack


class Causality(Invariant):
    name = "causality"
    summary = (
        "with Spec(causal=True): each output step depends only on the inputs up to it; the first p steps run "
        "alone give the first p steps of the outputs, and later values change none of them"
    )
    opt_in = True

    def configured(self, target: Target, settings: Any) -> str | None:
        # Declared causal: collected by default. Otherwise "" (run only when
        # --dyncheck-invariants names it, then over the "time" axis).
        return None if target.spec.causal else ""

    def applies_to(self, target: Target) -> str | None:
        dim = time_dim(target)
        for slot, strategy in slots(target):
            arguments = strategy_arguments(strategy)
            if strategy_kind(strategy) == "attention_masks" and arguments.get("padding_side", "right") != "right":
                # A row's first steps are padding there, and a query that sees only padding
                # attends evenly to every key, later ones too (Hugging Face's additive masks
                # of finfo.min): outputs no caller reads, which differ.
                return (
                    f"{slot_text(slot)} is padded on the left (attention_masks(padding_side='left')): a row's first "
                    "steps are padding, whose outputs a model may compute from every step; causality compares "
                    "right-padded batches"
                )
        if any(_axis(strategy, dim) is not None for _, strategy in slots(target)):
            return None
        named = sorted({
            d for _, strategy in slots(target)
            for d in (strategy_arguments(strategy).get("shape") or ()) if isinstance(d, str) and d != "batch"
        })
        hint = (
            f"the inputs' named axes are {', '.join(repr(d) for d in named)}: name the time axis with Spec(causal=...)"
            if named else
            f"declare the inputs' shapes with a {dim!r} axis, e.g. Spec(inputs={{\"x\": tensors(shape=(\"batch\", {dim!r}, 8))}})"
        )
        return f"no input has a {dim!r} axis to cut ({hint})"

    def dims(self, target: Target) -> dict[str, Any]:
        """The time axis is drawn from one step more than its shortest (and than the
        look-ahead): a sequence of the shortest length has no shorter prefix to run."""
        dim = time_dim(target)
        bounds = _bounds(target, dim)
        if isinstance(bounds, tuple) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
            low, high = bounds
            shortest = max(1, low, lookahead(target) + 1)
            if shortest + 1 <= high:
                return {dim: (shortest + 1, high)}
        return {}

    def check(self, context: Context, example: Example) -> None:
        target = context.target
        dim = time_dim(target)
        axes: dict[Slot, int] = {}
        for slot, strategy in slots(target):
            value = slot_value(example.args, slot)
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                axis = _axis(strategy, dim, value.dim())
                if axis is not None:
                    axes[slot] = axis
        if not axes:
            return context.nothing_to_compare(f"no input of this example has a {dim!r} axis")
        steps = min(slot_value(example.args, slot).shape[axis] for slot, axis in axes.items())
        if steps < 2:
            return context.nothing_to_compare(f"a sequence of {_steps(steps)}: no earlier step to keep", drawn=True)
        ahead = lookahead(target)
        generator = torch.Generator().manual_seed(example.seed)
        # a prefix keeps at least one step that its look-ahead does not reach past
        shorter = [length for length in _shorter(target, dim, steps) if length > ahead]
        if shorter:
            prefix = shorter[int(torch.randint(len(shorter), (1,), generator=generator))]
        elif ahead + 1 < steps:
            prefix = int(torch.randint(ahead + 1, steps, (1,), generator=generator))
        else:
            return context.nothing_to_compare(
                f"a sequence of {_steps(steps)}: no earlier step beyond the look-ahead of {ahead} to keep", drawn=True
            )
        calls = _Calls(context, example)
        full = calls.first(example.fresh_args())
        if calls.native is None and not all_finite(full.values()):
            return context.nothing_to_compare(_NAN)
        if shorter:
            alone = calls(
                self._prefix(target, example.fresh_args(), axes, prefix),
                stage=f"forward on the first {_steps(prefix)} alone (cut after step {prefix - 1} of {steps})",
            )
            compared, other_rate = _time_axes(full, alone, steps, prefix)
            # the last `ahead` steps of the prefix may read steps it does not have
            compared = {
                leaf: [(axis, kept - ahead) for axis, kept in cut]
                for leaf, cut in compared.items() if all(kept > ahead for _, kept in cut)
            }
        else:
            alone = None
            compared = {
                leaf: [(axis, prefix - ahead) for axis in range(value.dim()) if value.shape[axis] == steps]
                for leaf, value in full.items()
            }
            compared = {leaf: cut for leaf, cut in compared.items() if cut}
            other_rate = []
        if calls.native is None and alone is not None and not all_finite(alone.values()):
            return context.nothing_to_compare(_NAN)
        if not compared:
            if other_rate:
                return context.nothing_to_compare(f"{other_rate[0]}: not compared step by step")
            return context.nothing_to_compare(missing_output(full) or _NO_TIME_AXIS.format(dim=dim))
        if other_rate:
            context.note("other_rate", lambda count: (
                f"{other_rate[0]}: not compared step by step ({count} example{'s' if count != 1 else ''})"
            ))

        # the inputs whose later steps are changed (masks and flags are cut, not changed)
        names = ", ".join(slot_text(slot) for slot in axes if self._changeable(target, slot, example.args)) or "the inputs"
        allowed = {leaf: calls.tolerances(full[leaf]) for leaf in compared}

        def differences(other: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
            """leaf -> how ``other``'s first steps differ from the full call's (``other`` is
            the prefix's call, or another call of the full length)."""
            found = {}
            for leaf, cut in compared.items():
                value = other.get(leaf)
                expected = _head(full[leaf], cut)
                if value is None or value.dim() != expected.dim():
                    continue
                value = _head(value, cut)
                if value.shape != expected.shape:
                    continue
                rtol, atol = allowed[leaf]
                lines = mismatch(value, expected, rtol=rtol, atol=atol)
                if lines:
                    found[leaf] = lines
            return found

        differing = {} if alone is None else differences(alone)
        if alone is not None and not differing:
            return context.compared()
        # Other values in the later steps: what crossed, or (without a shorter sequence to
        # run) rule 1's stand-in.
        later = calls(self._changed(target, example.fresh_args(), axes, prefix, steps, generator))
        crossed = differences(later)
        if alone is None and not crossed:
            return context.compared()
        # A model that draws random numbers in eval mode gives other outputs under another
        # seed, and a shorter (or changed) sequence draws other numbers: nothing to read.
        if differences(calls(example.fresh_args(), seed=example.seed + 1)):
            return context.nothing_to_compare(_RANDOM)
        context.compared()
        where = f"cut after step {prefix - 1} of {steps} (the first {_steps(prefix)} kept)"
        if crossed:
            leaf = next(iter(crossed))
            cut = compared[leaf]
            axis, kept = cut[0]
            offset = full[leaf].shape[axis] - steps
            rtol, atol = allowed[leaf]
            step = _first_differing(_head(later[leaf], cut), _head(full[leaf], cut), axis, rtol, atol) or 0
            source = self._source(
                target, calls, example, axes, full[leaf], leaf, cut, step, offset - ahead, steps, generator, rtol, atol
            )
            shown = f"{leaf} at step {step}" + (f" (input step {step - offset})" if offset else "")
            sees = (
                f"the model sees further ahead than its look-ahead of {_steps(ahead)}" if ahead
                else "the model sees the future"
            )
            if source is not None:
                headline = (
                    f"{shown} changes when only step {source} of {names} changes: a later input reaches an earlier "
                    f"output ({sees})"
                )
            else:
                headline = (
                    f"{shown} changes when {_span(prefix, steps)} of {names} change: later inputs reach "
                    f"earlier outputs ({sees})"
                )
            details = [
                f"{where}; {leaf} with other values at {_span(prefix, steps)} against the example, first {_steps(kept)}:",
                *(f"  {line}" for line in crossed[leaf]),
            ]
        else:
            leaf = next(iter(differing))
            headline = (
                f"{leaf} at its first {_steps(compared[leaf][0][1])} differs between the sequence of {steps} steps and its "
                f"first {_steps(prefix)} run alone, while other values at {_span(prefix, steps)} change nothing: the "
                "outputs depend on the sequence's length (a position scaled by it, a statistic over every step), so "
                "streaming or generating step by step gives other results"
            )
            details = []
        if alone is not None:
            for name, lines in differing.items():
                details.append(f"{where}; {name} of the first {_steps(prefix)} run alone against the whole sequence:")
                details.extend(f"  {line}" for line in lines)
        # One raise statement: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, details, path=calls.path)

    @staticmethod
    def _prefix(target: Target, args: dict[str, Any], axes: Mapping[Slot, int], prefix: int) -> dict[str, Any]:
        """The arguments cut to their first ``prefix`` steps, lengths capped at ``prefix``."""
        changes: dict[Slot, Any] = {
            slot: slot_value(args, slot).narrow(axis, 0, prefix) for slot, axis in axes.items()
        }
        lengths = lengths_argument(target)
        value = None if lengths is None else slot_value(args, lengths)
        if isinstance(value, torch.Tensor):
            changes[lengths] = value.clamp(max=prefix)
        elif isinstance(value, (list, tuple)):
            changes[lengths] = type(value)(min(int(v), prefix) for v in value)
        return _with(args, changes)

    @staticmethod
    def _changeable(target: Target, slot: Slot, args: Mapping[str, Any]) -> bool:
        """Whether other values are put in the later steps of the input at ``slot``: not a
        mask or flags (booleans), nor integers drawn from a single value."""
        value = slot_value(args, slot)
        if value.dtype == torch.bool or strategy_kind(_strategy(target, slot)) == "attention_masks":
            return False
        if value.is_floating_point() or value.is_complex():
            return True
        low, high = _int_bounds(target, slot, value)
        return high > low

    @staticmethod
    def _changed(
        target: Target, args: dict[str, Any], axes: Mapping[Slot, int], start: int, stop: int, generator: torch.Generator
    ) -> dict[str, Any]:
        """The arguments with other values at steps ``start..stop-1``: random floats at the
        input's scale, token ids from its range; masks and booleans as they are."""
        changes: dict[Slot, Any] = {}
        for slot, axis in axes.items():
            if not Causality._changeable(target, slot, args):
                continue
            value = slot_value(args, slot)
            shape = list(value.shape)
            shape[axis] = stop - start
            if value.is_floating_point():
                scale = 1.0 + (float(value.detach().abs().max()) if value.numel() else 0.0)
                other = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
            else:
                low, high = _int_bounds(target, slot, value)
                other = torch.randint(low, high + 1, shape, generator=generator)
            value = value.clone()
            value.narrow(axis, start, stop - start).copy_(other.to(value.dtype))
            changes[slot] = value
        return _with(args, changes)

    def _source(
        self, target: Target, calls: _Calls, example: Example, axes: Mapping[Slot, int], value: torch.Tensor,
        leaf: str, cut: list[tuple[int, int]], step: int, offset: int, steps: int, generator: torch.Generator,
        rtol: float, atol: float,
    ) -> int | None:
        """The first input step past the last one the output's ``step`` may read (input step
        ``step - offset``: ``offset`` is how far the output's axis is longer than the input's,
        less the look-ahead) that changes it alone."""
        axis = cut[0][0]
        rest = cut[1:]
        expected = _head(value, rest).narrow(axis, step, 1)
        for later in range(max(0, step - offset + 1), min(steps, step - offset + 1 + _SEARCH)):
            changed = calls(self._changed(target, example.fresh_args(), axes, later, later + 1, generator))
            if leaf in changed and changed[leaf].shape == value.shape and mismatch(
                _head(changed[leaf], rest).narrow(axis, step, 1), expected, rtol=rtol, atol=atol
            ):
                return later
        return None


def _span(start: int, stop: int) -> str:
    """``step 5`` or ``steps 3..5``: steps ``start`` to ``stop - 1``."""
    return f"step {start}" if stop - start == 1 else f"steps {start}..{stop - 1}"


def _steps(count: int) -> str:
    return f"{count} step{'s' if count != 1 else ''}"


_NO_TIME_AXIS = (
    "no output has an axis that follows the {dim!r} axis (a final state or a pooled vector depends on every step "
    "by design): nothing per step to compare"
)


def _time_axes(
    full: Mapping[str, torch.Tensor], alone: Mapping[str, torch.Tensor], steps: int, prefix: int,
) -> tuple[dict[str, list[tuple[int, int]]], list[str]]:
    """leaf -> its time axes with the steps the prefix has there, and what the outputs
    whose axes follow the length at another rate are."""
    compared: dict[str, list[tuple[int, int]]] = {}
    other_rate: list[str] = []
    for leaf, value in full.items():
        short = alone.get(leaf)
        if short is None or short.dim() != value.dim():
            continue
        differ = [axis for axis in range(value.dim()) if value.shape[axis] != short.shape[axis]]
        if not differ:
            continue  # no time axis: a final state, a pooled vector
        if all(value.shape[axis] - short.shape[axis] == steps - prefix for axis in differ):
            compared[leaf] = [(axis, short.shape[axis]) for axis in differ]
        else:
            axis = next(a for a in differ if value.shape[a] - short.shape[a] != steps - prefix)
            other_rate.append(
                f"axis {axis} of {leaf} follows the length at another rate ({value.shape[axis]} steps for {steps}, "
                f"{short.shape[axis]} for {prefix})"
            )
    return compared, other_rate
