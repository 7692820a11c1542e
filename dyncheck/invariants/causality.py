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

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from dyncheck.agreement import default_dtype
from dyncheck.casting import widened
from dyncheck.compare import all_finite, mismatch, tolerances
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example, strategy_arguments, strategy_kind
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants.padding_invariance import (
    _CACHE, Slot, _input_scale, _int_bounds, _strategy, _to_float64, _with, keep_relative_lengths, lengths_argument,
    lengths_relative, mask_argument, marks_padding, relative_like, relative_steps, slot_text, slot_value, slots,
)
from dyncheck.rounding import SENSITIVITY_FACTOR, largest_difference, nudged
from dyncheck.streams import Draws
from dyncheck.target import Target
from dyncheck.tracing import floating_leaves, missing_output

__all__ = ["Causality", "time_dim"]

#: The most later steps changed one at a time to find the one that reaches an earlier output.
_SEARCH = 16

_RANDOM = (
    "forward draws random numbers in eval mode (from torch's generators, or its outputs change with the seed), and "
    "a shorter sequence draws other ones: nothing to compare across lengths"
)
_NAN = "the outputs hold NaN or inf (finite reports where they are made): nothing to compare"
_PADDED = (
    "the outputs differ only with padding: with every step a token they agree (a step whose window holds only "
    "padding, which no caller reads, attends to every step)"
)
_ROUNDING = (
    "the outputs differ within what rounding makes of a one-ulp move of the inputs (a model that computes in "
    "float32 inside its float64 copy): nothing a later step reached"
)


def time_dim(target: Target) -> str:
    """The named axis a causal model runs over: ``Spec(causal="frames")``'s (or
    ``{"axis": "frames"}``'s), else the one the lengths are drawn over, else ``"time"``; for
    a model declared causal whose inputs name no ``"time"`` axis but one other (a TCN's
    inferred ``("batch", 3, "length")``), that one."""
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
    if causal:
        named = _named_axes(target)
        if "time" not in named and len(named) == 1:
            return named[0]
    return "time"


def _named_axes(target: Target) -> list[str]:
    """The axes the inputs' shapes name, ``"batch"`` aside, sorted."""
    return sorted({
        d for _, strategy in slots(target)
        for d in (strategy_arguments(strategy).get("shape") or ()) if isinstance(d, str) and d != "batch"
    })


def lookahead(target: Target) -> int:
    """The later steps an output step may read: ``Spec(causal={"lookahead": k})``'s ``k``, else 0."""
    causal = target.spec.causal
    return int(causal.get("lookahead", 0)) if isinstance(causal, Mapping) else 0


def _axes(strategy: Any, dim: str, rank: int | None = None) -> tuple[int, ...]:
    """The axes of the value ``strategy`` draws that are named ``dim`` (every one: a pair
    bias ``("batch", "time", "time")`` has two), or an attention mask's last; none when it
    names none (or its rank is not ``rank``)."""
    arguments = strategy_arguments(strategy)
    if strategy_kind(strategy) == "attention_masks":
        return (1,) if rank in (None, 2) and arguments.get("max_length", "time") == dim else ()
    shape = arguments.get("shape")
    if not isinstance(shape, (tuple, list)) or (rank is not None and len(shape) != rank):
        return ()
    return tuple(axis for axis, name in enumerate(shape) if name == dim)


def _bounds(target: Target, dim: str) -> Any:
    """The spec's size of ``dim``: an int, a ``(min, max)`` pair or a strategy; an axis
    named nowhere is drawn from the default range of named axes."""
    from dyncheck.strategies import _OTHER_DIM, DEFAULT_DIMS

    return dict(target.spec.dims).get(dim, DEFAULT_DIMS.get(dim, _OTHER_DIM))


def _lowest(bounds: Any) -> int | None:
    """The smallest size ``bounds`` draws, when it can be read: a pair's, an
    ``st.integers``' or an ``st.sampled_from``'s; None otherwise."""
    if isinstance(bounds, int):
        return bounds
    if isinstance(bounds, tuple) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds):
        return bounds[0]
    elements = getattr(bounds, "elements", None)  # st.sampled_from(sizes), as the size probe gives
    if isinstance(elements, Sequence) and elements and all(isinstance(e, int) for e in elements):
        return min(elements)
    start = getattr(getattr(bounds, "wrapped_strategy", bounds), "start", None)  # st.integers(lo, hi)
    return start if isinstance(start, int) else None


def _shortest(target: Target, dim: str) -> int:
    """The shortest sequence over ``dim`` the spec allows: its size's lower bound, and the
    ``min_length`` of lengths or masks drawn over it."""
    low = _lowest(_bounds(target, dim)) or 1
    for _, strategy in slots(target):
        arguments = strategy_arguments(strategy)
        if strategy_kind(strategy) in ("sequence_lengths", "attention_masks") and arguments.get("max_length", "time") == dim:
            least = arguments.get("min_length", 1)
            if isinstance(least, int):
                low = max(low, least)
    return max(1, low)


def _prefix_lengths(target: Target, dim: str, steps: int, ahead: int) -> list[int]:
    """The prefix lengths to cut a sequence of ``steps`` at: those the spec allows below
    it, longer than the look-ahead (the drawn sizes, for ``sampled_from``)."""
    low = max(_shortest(target, dim), ahead + 1)
    elements = getattr(_bounds(target, dim), "elements", None)
    if isinstance(elements, Sequence) and elements and all(isinstance(e, int) for e in elements):
        return sorted(e for e in set(elements) if low <= e < steps)
    return list(range(low, steps))


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


_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


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
        #: the full example's output as forward returned it
        self.output: Any = None

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
        self, args: Mapping[str, Any], *, record: bool = False, seed: int | None = None, rounded: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The outputs' tensors by name. ``rounded``: every floating input moved one ulp of
        the model's own dtype first (what rounding alone changes)."""
        context, example = self.context, self.example
        model = context.fresh_model().eval()
        arguments = dict(args)
        if rounded:
            arguments = nudged(arguments, torch.Generator().manual_seed(example.seed))
        if self.native is not None:
            model = widened(model, torch.float64)
            arguments = {name: _to_float64(value) for name, value in arguments.items()}
        arguments = keep_relative_lengths(context.target, args, arguments)
        with default_dtype(torch.float64 if self.native is not None else None):
            if record:  # the full example's call: its path counts in the census
                trace = context.run(model, Example(arguments, example.seed, example.dims), grad=False)
                self.path, output = trace.path, trace.output
                self.output = output
            else:
                output = context.call(model, arguments, example.seed if seed is None else seed)
        return dict(floating_leaves(output))

    def draws_random(self, args: Mapping[str, Any]) -> bool:
        """Whether forward draws from torch's generators in eval mode on ``args`` (noise
        added at inference; dropout in eval mode draws nothing). Its streams then differ by
        shape: torch fills a normal tensor of 16 or more elements in blocks, so even the
        first numbers of a longer draw are not a shorter one's."""
        recorder = Draws()
        with recorder:
            self(args)
        return bool(recorder.calls)

    def tolerances(self, leaf: torch.Tensor) -> tuple[float, float]:
        if not (leaf.is_floating_point() or leaf.is_complex()):
            return 0.0, 0.0  # token ids, a greedy choice, flags: exactly
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
            if strategy_kind(strategy) == "padded_batches" and arguments.get("max_length", "time") == dim:
                return (
                    f"{slot_text(slot)} is drawn by padded_batches() as one (padded, lengths) pair, which causality "
                    "does not cut; draw them as two arguments: tensors(shape=(\"batch\", \"time\", ...)) and "
                    "sequence_lengths()"
                )
        size = _bounds(target, dim)
        if isinstance(size, int):
            return (
                f"the spec fixes the {dim!r} axis at {size} steps: no shorter sequence to run alone; give a range, "
                f"e.g. Spec(dims={{{dim!r}: (1, {max(size, 2)})}})"
            )
        if any(_axes(strategy, dim) for _, strategy in slots(target)):
            return None
        named = _named_axes(target)
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
            shortest = max(_shortest(target, dim), lookahead(target) + 1)
            if shortest + 1 <= bounds[1]:
                return {dim: (max(bounds[0], shortest + 1), bounds[1])}
        return {}

    def check(self, context: Context, example: Example) -> None:
        target = context.target
        dim = time_dim(target)
        axes: dict[Slot, tuple[int, ...]] = {}
        for slot, strategy in slots(target):
            value = slot_value(example.args, slot)
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                found = _axes(strategy, dim, value.dim())
                if found:
                    axes[slot] = found
        if not axes:
            return context.nothing_to_compare(f"no input of this example has a {dim!r} axis")
        steps = min(slot_value(example.args, slot).shape[axis] for slot, found in axes.items() for axis in found)
        ahead = lookahead(target)
        lengths = _prefix_lengths(target, dim, steps, ahead)
        if not lengths:
            beyond = f" longer than the look-ahead of {_steps(ahead)}" if ahead else ""
            return context.nothing_to_compare(
                f"a sequence of {_steps(steps)}: no shorter one the spec allows{beyond} to run alone", drawn=True
            )
        generator = torch.Generator().manual_seed(example.seed)
        prefix = lengths[int(torch.randint(len(lengths), (1,), generator=generator))]
        calls = _Calls(context, example)
        full = calls.first(example.fresh_args())
        if calls.native is None and not all_finite(full.values()):
            return context.nothing_to_compare(_NAN)
        for _ in range(2):
            try:
                alone = calls(self._prefix(target, example.fresh_args(), axes, prefix))
            except ModelError as exc:
                # A length the model does not take (a kernel wider than it): not a causal
                # property; the checks that draw that length report it if the spec allows it.
                return context.nothing_to_compare(
                    f"the model raised {type(exc.original).__name__} on the first {_steps(prefix)} alone (a length it "
                    f"does not take; give the shortest it takes with Spec(dims={{{dim!r}: (shortest, ...)}}))",
                    drawn=True,
                )
            if calls.native is None and not all_finite(alone.values()):
                return context.nothing_to_compare(_NAN)
            compared, other_rate, stepless = _time_axes(full, alone, steps, prefix, ahead)
            if compared or not stepless or prefix == lengths[-1]:
                break
            # an output shorter than the input (or the look-ahead) left this prefix no step
            # of its own: once more with the longest
            prefix = lengths[-1]
        if not compared:
            if stepless:
                return context.nothing_to_compare(
                    f"{stepless[0]} follows the steps, but the first {_steps(prefix)} leave it no step of its own to "
                    "compare (it is shorter than the input, or the look-ahead reaches past them)", drawn=True,
                )
            if other_rate:
                return context.nothing_to_compare(f"{other_rate[0]}: not compared step by step")
            return context.nothing_to_compare(missing_output(calls.output) or _NO_TIME_AXIS.format(dim=dim))
        if other_rate:
            context.note("other_rate", lambda count: (
                f"{other_rate[0]}: not compared step by step ({count} example{'s' if count != 1 else ''})"
            ))

        # the inputs whose later steps are changed (masks and flags are cut, not changed)
        names = ", ".join(slot_text(slot) for slot in axes if self._changeable(target, slot, example.args)) or "the inputs"
        allowed = {leaf: calls.tolerances(full[leaf]) for leaf in compared}

        def differences(
            other: Mapping[str, torch.Tensor], margin: Mapping[str, float] | None = None,
            base: Mapping[str, torch.Tensor] = full,
        ) -> dict[str, list[str]]:
            """leaf -> how ``other``'s first steps differ from ``base``'s (the full call's),
            beyond the tolerances (and beyond ``margin``, what rounding explains)."""
            found = {}
            for leaf, cut in compared.items():
                if leaf not in base:
                    continue
                value, expected = other.get(leaf), _head(base[leaf], cut)
                if value is None or value.dim() != expected.dim():
                    continue
                value = _head(value, cut)
                if value.shape != expected.shape:
                    continue
                if margin is not None and largest_difference(value, expected) <= margin.get(leaf, 0.0):
                    continue
                rtol, atol = allowed[leaf]
                lines = mismatch(value, expected, rtol=rtol, atol=atol)
                if lines:
                    found[leaf] = lines
            return found

        differing = differences(alone)
        if not differing:
            return context.compared()
        # Other values in the later steps: what crossed, a value or the length.
        later = calls(self._changed(target, example.fresh_args(), axes, prefix, steps, generator))
        crossed = differences(later)
        # A model that draws random numbers in eval mode gives other outputs under another
        # seed, and a shorter (or changed) sequence draws other numbers: nothing to read.
        if calls.draws_random(example.fresh_args()) or differences(calls(example.fresh_args(), seed=example.seed + 1)):
            return context.nothing_to_compare(_RANDOM)
        # Padding: a query whose window holds only padding (a sliding window over a padded
        # row) attends evenly to every key, later ones too, at a step no caller reads. With
        # every step a token, the model is asked again; agreeing then, the difference was
        # the padding's.
        unpadded = self._unpadded(target, example.fresh_args(), steps)
        if unpadded is not None and not differences(
            calls(self._prefix(target, dict(unpadded), axes, prefix)), base=calls(unpadded)
        ):
            return context.nothing_to_compare(_PADDED)
        # Rounding: a model that computes in float32 inside its float64 copy (an FFT over
        # x.float()) rounds a prefix and the whole sequence otherwise. What a one-ulp move of
        # the inputs changes, ten times over, is what rounding explains.
        moved = calls(example.fresh_args(), rounded=True)
        margin = {
            leaf: SENSITIVITY_FACTOR * largest_difference(_head(moved[leaf], cut), _head(full[leaf], cut))
            for leaf, cut in compared.items() if leaf in moved and moved[leaf].shape == full[leaf].shape
        }
        differing, crossed = differences(alone, margin), differences(later, margin)
        if not differing and not crossed:
            return context.nothing_to_compare(_ROUNDING)
        context.compared()
        where = f"cut after step {prefix - 1} of {steps} (the first {_steps(prefix)} kept)"
        sees = f"the model sees further ahead than its look-ahead of {_steps(ahead)}" if ahead else "the model sees the future"
        if crossed:
            # a result before a cache handed back for the next call (past_key_values)
            leaf = min(crossed, key=lambda name: bool(_CACHE.search(name)))
            cut = compared[leaf]
            rtol, atol = allowed[leaf]
            step, offset = self._earliest(leaf, cut, later[leaf], full[leaf], steps, rtol, atol)
            source = self._source(
                target, calls, example, axes, full[leaf], leaf, cut, step, offset - ahead, steps, generator, rtol, atol
            )
            shown = f"{leaf} at step {step}" + (f" (input step {step - offset})" if offset < 0 else "")
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
            kept = f", first {_steps(cut[0][1])}" if cut else ""
            details = [
                f"{where}; {leaf} with other values at {_span(prefix, steps)} against the example{kept}:",
                *(f"  {line}" for line in crossed[leaf]),
            ]
        else:
            leaf = min(differing, key=lambda name: bool(_CACHE.search(name)))
            first = f"at its first {_steps(compared[leaf][0][1])} " if compared[leaf] else ""
            headline = (
                f"{leaf} {first}differs between the sequence of {steps} steps and its first {_steps(prefix)} run "
                f"alone, while other values at {_span(prefix, steps)} change nothing: the outputs depend on the "
                "sequence's length (a position scaled by it or counted from the end, a statistic over every step), so "
                "streaming or generating step by step gives other results"
            )
            details = []
        for name, lines in differing.items():
            details.append(f"{where}; {name} of the first {_steps(prefix)} run alone against the whole sequence:")
            details.extend(f"  {line}" for line in lines)
        # One raise statement: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, details, path=calls.path)

    @staticmethod
    def _earliest(
        leaf: str, cut: list[tuple[int, int]], changed: torch.Tensor, value: torch.Tensor, steps: int,
        rtol: float, atol: float,
    ) -> tuple[int, int]:
        """(the earliest output step of ``leaf`` that changed, how many steps its axis is
        longer than the input's, where that says which input step it is: negative, right
        context consumed; else 0, as a start token put first and an end token appended
        are not told apart). A member of a list of per-step outputs is its own step."""
        if not cut:
            match = _INDEXED.match(leaf)
            return (int(match.group(2)) if match else 0), 0
        axis = cut[0][0]
        step = _first_differing(_head(changed, cut), _head(value, cut), axis, rtol, atol) or 0
        return step, min(0, value.shape[axis] - steps)

    @staticmethod
    def _prefix(
        target: Target, args: dict[str, Any], axes: Mapping[Slot, tuple[int, ...]], prefix: int
    ) -> dict[str, Any]:
        """The arguments cut to their first ``prefix`` steps, lengths capped at ``prefix``."""
        padded = next((slot_value(args, slot).shape[found[0]] for slot, found in axes.items() if found), prefix)
        changes = Causality._lengths(target, args, lambda length: min(length, prefix), padded, prefix)
        for slot, found in axes.items():
            value = slot_value(args, slot)
            for axis in found:
                value = value.narrow(axis, 0, prefix)
            changes[slot] = value
        return _with(args, changes)

    @staticmethod
    def _lengths(
        target: Target, args: Mapping[str, Any], each: Callable[[int], int], padded: int, new_padded: int
    ) -> dict[Slot, Any]:
        """The lengths argument (a tensor or a list) with ``each`` of its lengths changed,
        at its slot, the padded length going from ``padded`` to ``new_padded`` steps (what
        relative lengths are fractions of); nothing when there is none."""
        lengths = lengths_argument(target)
        value = None if lengths is None else slot_value(args, lengths)
        if value is not None and lengths_relative(target, lengths):
            steps = [each(n) for n in relative_steps(value, padded)]
            return {lengths: relative_like(value, steps, new_padded)}
        if isinstance(value, torch.Tensor):
            changed = [each(int(v)) for v in value.reshape(-1).tolist()]
            return {lengths: torch.tensor(changed, dtype=value.dtype, device=value.device).reshape(value.shape)}
        if isinstance(value, (list, tuple)):
            return {lengths: type(value)(each(int(v)) for v in value)}
        return {}

    @staticmethod
    def _unpadded(target: Target, args: dict[str, Any], steps: int) -> dict[str, Any] | None:
        """The arguments with every step a token: an attention mask of all tokens, every
        length the whole sequence; None when there is no mask or lengths argument."""
        changes = Causality._lengths(target, args, lambda length: steps, steps, steps)
        mask = mask_argument(target)
        value = None if mask is None else slot_value(args, mask)
        if isinstance(value, torch.Tensor):
            changes[mask] = (torch.zeros_like if marks_padding(target, mask) else torch.ones_like)(value)
        return _with(args, changes) if changes else None

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
        target: Target, args: dict[str, Any], axes: Mapping[Slot, tuple[int, ...]], start: int, stop: int,
        generator: torch.Generator,
    ) -> dict[str, Any]:
        """The arguments with other values at steps ``start..stop-1`` (on any of an input's
        time axes): random values within the input's strategy's bounds (floats at the
        input's scale where it gives none), token ids from its range; masks and booleans
        as they are."""
        changes: dict[Slot, Any] = {}
        for slot, found in axes.items():
            if not Causality._changeable(target, slot, args):
                continue
            value = slot_value(args, slot)
            arguments = strategy_arguments(_strategy(target, slot))
            if value.is_floating_point() or value.is_complex():
                low, high = arguments.get("min_value"), arguments.get("max_value")
                if isinstance(low, (int, float)) and isinstance(high, (int, float)):
                    other = low + (high - low) * torch.rand(value.shape, generator=generator, dtype=torch.float64)
                else:
                    scale = 1.0 + (float(value.detach().abs().max()) if value.numel() else 0.0)
                    other = torch.randn(value.shape, generator=generator, dtype=torch.float64) * scale
                    if isinstance(low, (int, float)):
                        other = other.clamp(min=low)
                    if isinstance(high, (int, float)):
                        other = other.clamp(max=high)
            else:
                low, high = _int_bounds(target, slot, value)
                other = torch.randint(low, high + 1, value.shape, generator=generator)
            # the positions at steps start..stop-1 on any of the time axes
            where = torch.zeros(value.shape, dtype=torch.bool)
            for axis in found:
                where.narrow(axis, start, stop - start).fill_(True)
            changes[slot] = torch.where(where.to(value.device), other.to(value.device, value.dtype), value)
        return _with(args, changes)

    def _source(
        self, target: Target, calls: _Calls, example: Example, axes: Mapping[Slot, tuple[int, ...]],
        value: torch.Tensor, leaf: str, cut: list[tuple[int, int]], step: int, offset: int, steps: int,
        generator: torch.Generator, rtol: float, atol: float,
    ) -> int | None:
        """The first input step past the last one the output's ``step`` may read (input step
        ``step - offset``: ``offset`` is how far the output's axis is longer than the input's,
        less the look-ahead) that changes it alone."""
        if cut:
            axis, rest = cut[0][0], cut[1:]
            expected = _head(value, rest).narrow(axis, step, 1)
        else:
            expected = value
        for later in range(max(0, step - offset + 1), min(steps, step - offset + 1 + _SEARCH)):
            changed = calls(self._changed(target, example.fresh_args(), axes, later, later + 1, generator))
            got = changed.get(leaf)
            if got is None or got.shape != value.shape:
                continue
            got = _head(got, rest).narrow(axis, step, 1) if cut else got
            if mismatch(got, expected, rtol=rtol, atol=atol):
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
    full: Mapping[str, torch.Tensor], alone: Mapping[str, torch.Tensor], steps: int, prefix: int, ahead: int,
) -> tuple[dict[str, list[tuple[int, int]]], list[str], list[str]]:
    """leaf -> its time axes with the steps compared there; what the outputs whose axes
    follow the length at another rate are; and the time-axis outputs the prefix leaves no
    step of its own to compare (shorter than the input, or the look-ahead past them). An axis is a time axis when it is as many steps
    shorter for the prefix as the prefix is shorter than the sequence. Where it is longer
    than the input's (a start token put first, or an end token appended: not told apart),
    the first ``prefix`` steps are compared, as both leave them the prefix's; where it is
    shorter (right context consumed), all the prefix's. The look-ahead's last steps are
    not. A list of one output per step (a cell run in a loop) compares its first members."""
    compared: dict[str, list[tuple[int, int]]] = {}
    other_rate: list[str] = []
    stepless: list[str] = []

    def members(outputs: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name in outputs:
            match = _INDEXED.match(name)
            if match:
                found.setdefault(match.group(1), []).append(int(match.group(2)))
        return found

    # a list with one member per step in both calls (as many as each call's steps)
    per_step = {
        base for base, indices in members(full).items()
        if sorted(indices) == list(range(steps)) and sorted(members(alone).get(base, [])) == list(range(prefix))
    }
    for leaf, value in full.items():
        short = alone.get(leaf)
        match = _INDEXED.match(leaf)
        if match and match.group(1) in per_step:
            # the prefix's first members are compared whole
            if int(match.group(2)) < prefix - ahead and short is not None and short.shape == value.shape:
                compared[leaf] = []
            continue
        if short is None or short.dim() != value.dim():
            continue
        differ = [axis for axis in range(value.dim()) if value.shape[axis] != short.shape[axis]]
        if not differ:
            continue  # no time axis: a final state, a pooled vector
        if all(value.shape[axis] - short.shape[axis] == steps - prefix for axis in differ):
            cut = [(axis, min(short.shape[axis], prefix) - ahead) for axis in differ]
            if all(kept > 0 for _, kept in cut):
                compared[leaf] = cut
            else:
                # right context consumed, or the look-ahead, leaves the prefix no step of its own
                stepless.append(leaf)
        else:
            axis = next(a for a in differ if value.shape[a] - short.shape[a] != steps - prefix)
            other_rate.append(f"axis {axis} of {leaf} follows the length at another rate")
    return compared, other_rate, stepless
