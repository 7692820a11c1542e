"""Where two runs of one example part ways: the first module, in call order, whose output
differs while its inputs agree.

:func:`record_calls` keeps, for every submodule call, its tensor inputs and outputs (or
their fingerprints, for a baseline on disk), in the order the calls *finish*: a leaf
finishes before the block around it, so the innermost module that breaks is named first.
:func:`localise` pairs the calls of the two runs through a :class:`Correspondence` (the
n-th visit of a group on one side with the n-th on the other) and walks the new run's
calls in order:

* inputs agree, output differs: this module is where the runs part;
* inputs differ before any module broke: they part in code between modules (forward's own
  code, or a restructured module that cannot be compared one to one);
* every module agrees but the final outputs differ: after the last module.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dyncheck.agreement import close
from dyncheck.compare import tolerances
from dyncheck.guard.mapping import Correspondence
from dyncheck.tracing import floating_leaves

__all__ = [
    "Call", "Fingerprint", "Localisation", "differ", "fingerprint", "localise", "paths_part", "record_calls",
    "summarise",
]

#: Significant digits kept in a fingerprint: float64 sums depend on the reduction order in
#: their last bits, and a baseline must be the same bytes when recorded again.
_DIGITS = 10


@dataclass(frozen=True)
class Fingerprint:
    """A tensor in a few numbers: shape, dtype, sum, sum of magnitudes, a sum weighted by a
    fixed sequence in [-1, 1] (catches permutations), largest magnitude."""

    shape: tuple[int, ...]
    dtype: str
    numbers: tuple[float, float, float, float]

    def as_json(self) -> list[Any]:
        return [list(self.shape), self.dtype, *self.numbers]

    @classmethod
    def from_json(cls, value: list[Any]) -> Fingerprint:
        shape, dtype, *numbers = value
        return cls(tuple(shape), dtype, tuple(float(n) for n in numbers))  # type: ignore[arg-type]


def _round(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")


def fingerprint(tensor: torch.Tensor) -> Fingerprint:
    x = tensor.detach().to("cpu")
    if x.is_complex():
        x = torch.view_as_real(x)
    x = x.to(torch.float64).reshape(-1)
    # A fixed sequence from integer arithmetic (no RNG, no libm): the same on every machine.
    index = torch.arange(x.numel(), dtype=torch.int64)
    weights = ((index * 2654435761) % 4294967296).to(torch.float64) / 2147483648.0 - 1.0
    if x.numel():
        numbers = (float(x.sum()), float(x.abs().sum()), float((x * weights).sum()), float(x.abs().max()))
    else:
        numbers = (0.0, 0.0, 0.0, 0.0)
    dtype = str(tensor.dtype).removeprefix("torch.")
    return Fingerprint(tuple(tensor.shape), dtype, tuple(map(_round, numbers)))  # type: ignore[arg-type]


@dataclass
class Call:
    """One call of a submodule: its name, which call of that module it was, and its tensor
    inputs and outputs (tensors, or fingerprints)."""

    name: str
    index: int
    inputs: list[tuple[str, Any]] = field(default_factory=list)
    outputs: list[tuple[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "module": self.name,
            "inputs": {label: value.as_json() for label, value in self.inputs},
            "outputs": {label: value.as_json() for label, value in self.outputs},
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], index: int) -> Call:
        return cls(
            value["module"],
            index,
            [(label, Fingerprint.from_json(v)) for label, v in value["inputs"].items()],
            [(label, Fingerprint.from_json(v)) for label, v in value["outputs"].items()],
        )


def _tensors(value: Any, prefix: str, keep: Any) -> list[tuple[str, Any]]:
    return [(name, keep(t)) for name, t in floating_leaves(value, prefix)]


@contextlib.contextmanager
def record_calls(
    model: nn.Module,
    *,
    fingerprints: bool = False,
    events: list[tuple[str, tuple[str, int]]] | None = None,
    forward_only: bool = False,
) -> Iterator[list[Call]]:
    """Every submodule call of ``model`` inside the block, in the order the calls finish,
    with copies (or fingerprints) of its tensor inputs and outputs. ``events`` receives the
    order calls start and finish (``("start" | "finish", (name, call number))``);
    ``forward_only`` records nothing once the model's own forward has returned (a
    checkpointed block recomputed in backward)."""
    keep = fingerprint if fingerprints else (lambda t: t.detach().clone())
    calls: list[Call] = []
    pending: dict[int, list[Call]] = {}
    counts: dict[str, int] = {}
    handles = []
    returned = [False]
    for name, module in model.named_modules():
        if not name:
            continue

        def before(_module: nn.Module, args: Any, kwargs: Any, _name: str = name) -> None:
            if returned[0]:
                return
            index = counts.get(_name, 0)
            counts[_name] = index + 1
            call = Call(_name, index, _tensors(args, "args", keep) + _tensors(kwargs, "kwargs", keep))
            pending.setdefault(id(_module), []).append(call)
            if events is not None:
                events.append(("start", (_name, index)))

        def after(_module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
            stack = pending.get(id(_module))
            if stack and not returned[0]:
                call = stack.pop()
                call.outputs = _tensors(output, "output", keep)
                calls.append(call)
                if events is not None:
                    events.append(("finish", (call.name, call.index)))

        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after, with_kwargs=True))
    if forward_only:
        handles.append(model.register_forward_hook(lambda *_: returned.__setitem__(0, True)))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------- comparing


def differ(actual: Any, expected: Any, tolerance: tuple[float, float] | None) -> list[str]:
    """How ``actual`` differs from ``expected`` (tensors, or fingerprints); empty if they agree."""
    if isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor):
        return close(actual, expected, tolerance=tolerance)
    if isinstance(actual, torch.Tensor):
        actual = fingerprint(actual)
    if isinstance(expected, torch.Tensor):
        expected = fingerprint(expected)
    return _fingerprints_differ(actual, expected, tolerance)


_NUMBER_NAMES = ("sum", "sum of |x|", "weighted sum", "max |x|")


def _fingerprints_differ(
    actual: Fingerprint, expected: Fingerprint, tolerance: tuple[float, float] | None
) -> list[str]:
    if actual.shape != expected.shape:
        return [f"The values for attribute 'shape' do not match: {list(actual.shape)} != {list(expected.shape)}."]
    if actual.dtype != expected.dtype:
        return [f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}."]
    count = 1
    for size in actual.shape:
        count *= size
    if tolerance is None:
        rtol, atol = tolerances(getattr(torch, actual.dtype, torch.float32))
        atol *= max(1.0, expected.numbers[3])
    else:
        rtol, atol = tolerance
    # Each element may move by atol + rtol * |x|: a sum of them by the sum of those.
    allowed = count * atol + rtol * expected.numbers[1]
    lines = []
    for name, a, e in zip(_NUMBER_NAMES, actual.numbers, expected.numbers):
        # the largest magnitude is one element: it may move by one element's allowance
        limit = atol + rtol * abs(e) if name == "max |x|" else allowed
        if not (abs(a - e) <= limit) and not (a != a and e != e):
            lines.append(f"{name} {a:.6g}, recorded {e:.6g} (up to {limit:.3g} apart allowed)")
    return lines


def _pairwise(
    a: list[tuple[str, Any]], b: list[tuple[str, Any]], tolerance: tuple[float, float] | None
) -> tuple[str, list[str]] | None:
    """The first value of ``a`` that differs from its partner in ``b`` (compared in order),
    as (label, lines); ``("", [])`` when all agree; None when they cannot be compared
    (another number of tensors)."""
    if len(a) != len(b):
        return None
    for (label, x), (_, y) in zip(a, b):
        lines = differ(x, y, tolerance)
        if lines:
            return label, lines
    return "", []


def _concatenated(
    parts: list[Any], whole: Any, tolerance: tuple[float, float] | None
) -> tuple[str, list[str]] | None:
    """``whole`` against the parts concatenated on the last axis; None if they cannot be
    compared that way."""
    if not parts or not all(isinstance(p, torch.Tensor) for p in [*parts, whole]):
        return None
    if any(p.shape[:-1] != whole.shape[:-1] for p in parts) or sum(p.shape[-1] for p in parts) != whole.shape[-1]:
        return None
    lines = close(whole, torch.cat(parts, dim=-1), tolerance=tolerance)
    return "output (the old modules' outputs concatenated)", lines


@dataclass
class Localisation:
    """Where the runs part: ``module`` (a call whose inputs agree and output differs),
    ``between`` (inputs differ first at ``module``, after ``last_agreeing``), ``after``
    (every module agrees), or ``unknown`` (nothing could be compared)."""

    kind: str
    module: str = ""
    last_agreeing: str = ""
    lines: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Report lines (without indentation)."""
        skipped = f" (not comparable one to one: {', '.join(self.skipped)})" if self.skipped else ""
        if self.kind == "module":
            return [
                f"first diverging module: {self.module} — its inputs agree, its output differs:",
                *(f"  {line}" for line in self.lines),
            ]
        if self.kind == "between":
            where = (
                f"between {self.last_agreeing}, whose output agrees, and {self.module}, whose inputs differ"
                if self.last_agreeing
                else f"before {self.module}, whose inputs differ"
            )
            return [
                f"first diverging module: none; the runs part in forward's own code {where}{skipped}",
                *(f"  {line}" for line in self.lines),
            ]
        if self.kind == "after":
            return [
                f"first diverging module: none; every module agrees (the last: {self.last_agreeing}), so the "
                f"runs part in forward's own code after it{skipped}"
            ]
        return [f"first diverging module: unknown{skipped}"]


def _visits(
    calls: list[Call], table: dict[str, int], corr: Correspondence, orphans: frozenset[str] = frozenset()
) -> list[tuple[int, list[Call]]]:
    """The calls as visits of groups: each call of a 1:1 group is a visit; consecutive calls
    within a restructured group are one visit. A call of an ``orphan`` (an old module the
    mapping took nothing from) right after a restructured group's call joins its visit:
    ``k`` between ``q`` and ``v`` when a mis-mapped fusion copied ``q`` in its place."""
    visits: list[tuple[int, list[Call]]] = []
    for call in calls:
        gid = table.get(call.name)
        if gid is None:
            if call.name in orphans and visits and corr.restructured(visits[-1][0]):
                visits[-1][1].append(call)
            continue
        if visits and visits[-1][0] == gid and corr.restructured(gid):
            visits[-1][1].append(call)
            continue
        visits.append((gid, [call]))
    return visits


def localise(
    old_calls: list[Call],
    new_calls: list[Call],
    corr: Correspondence,
    tolerance: tuple[float, float] | None = None,
    *,
    other: str = "the old model's",
    orders: dict[int, tuple[str, ...]] | None = None,
) -> Localisation:
    """The first module of the new run whose output differs from the old run's while its
    inputs agree (see the module docstring). A restructured group is compared when its new
    side is one module whose output is the old modules' outputs concatenated (a fused
    projection, its parts in the order of ``orders[group]``, else in call order); otherwise
    it is skipped, and named. ``other`` names the old run in the report ("the recorded" for
    a baseline)."""
    old_visits: dict[int, list[list[Call]]] = {}
    for gid, calls in _visits(old_calls, corr.old, corr, corr.orphans):
        old_visits.setdefault(gid, []).append(calls)
    seen: dict[int, int] = {}
    last_agreeing = ""
    skipped: list[str] = []
    for gid, calls in _visits(new_calls, corr.new, corr):
        k = seen.get(gid, 0)
        seen[gid] = k + 1
        label = corr.group_label(gid)
        if k >= len(old_visits.get(gid, ())):
            continue
        old = old_visits[gid][k]
        if corr.restructured(gid):
            olds = list(dict.fromkeys(c.name for c in old))
            label = f"{', '.join(corr.groups[gid][1])} (old {', '.join(olds)})"
        inputs = outputs = None
        note = ""
        if len(calls) == 1 and len(old) == 1:
            inputs = _pairwise(calls[0].inputs, old[0].inputs, tolerance)
            outputs = _pairwise(calls[0].outputs, old[0].outputs, tolerance)
        elif len(calls) == 1 and len(corr.groups[gid][1]) == 1 and len(calls[0].outputs) == 1:
            inputs = _inputs_among(calls[0], old, tolerance)
            if all(len(o.outputs) == 1 for o in old):
                outputs = _concatenated([o.outputs[0][1] for o in old], calls[0].outputs[0][1], tolerance)
                order = (orders or {}).get(gid)
                if outputs and outputs[1] and order is not None and sorted(o.name for o in old) == sorted(order):
                    laid_out = sorted(old, key=lambda o: order.index(o.name))
                    again = _concatenated([o.outputs[0][1] for o in laid_out], calls[0].outputs[0][1], tolerance)
                    if again is not None and not again[1]:
                        note = (
                            f"its output holds the old outputs in the order the state_map lays out their weights "
                            f"({', '.join(order)}), the old model called them {', '.join(o.name for o in old)}: "
                            "the state_map may concatenate them in another order than the new model splits them"
                        )
        if inputs is None or outputs is None:
            if label not in skipped:
                skipped.append(label)
            continue
        if inputs[1]:
            lines = [f"{inputs[0]} against {other}:", *(f"  {line}" for line in inputs[1])]
            return Localisation("between", label, last_agreeing, lines, skipped)
        if outputs[1]:
            lines = [f"{outputs[0]} against {other}:", *(f"  {line}" for line in outputs[1])]
            return Localisation("module", label, last_agreeing, [*lines, *([note] if note else [])], skipped)
        last_agreeing = label
    if last_agreeing:
        return Localisation("after", last_agreeing=last_agreeing, skipped=skipped)
    return Localisation("unknown", skipped=skipped)


def _inputs_among(call: Call, old: list[Call], tolerance: tuple[float, float] | None) -> tuple[str, list[str]]:
    """Each input of the new call must equal an input of one of the old calls."""
    candidates = [value for o in old for _, value in o.inputs]
    for label, value in call.inputs:
        if not any(_same_shape(value, c) and not differ(value, c, tolerance) for c in candidates):
            return label, ["equals no input of the old modules"]
    return "", []


def _same_shape(a: Any, b: Any) -> bool:
    return tuple(a.shape) == tuple(b.shape)


def paths_part(
    old_path: tuple[str, ...],
    new_path: tuple[str, ...],
    corr: Correspondence,
    *,
    old: str = "the old model",
    new: str = "the new model",
) -> tuple[str, str]:
    """Where two paths (module names in call order) part: (the first module that differs,
    named in both models' words, and a sentence saying how); ``old`` and ``new`` name the
    two runs."""
    old_steps = _steps(old_path, corr.old, corr)
    new_steps = _steps(new_path, corr.new, corr)
    for index, (o, n) in enumerate(itertools.zip_longest(old_steps, new_steps)):
        if o is not None and n is not None and o[0] == n[0]:
            continue
        before = f"after {corr.group_label(new_steps[index - 1][0])}" if index else "at the start"
        if n is None:
            name = corr.old_label(o[1])
            return name, f"the paths part {before}: {old} went on to {name}, {new} stops"
        if o is None:
            name = corr.new_label(n[1])
            return name, f"the paths part {before}: {new} goes on to {name}, {old} stopped"
        name = corr.new_label(n[1])
        return name, f"the paths part {before}: {new} runs {name} where {old} ran {corr.old_label(o[1])}"
    return "none", "the paths agree once restructured modules are read as one step"


def _steps(path: tuple[str, ...], table: dict[str, int], corr: Correspondence) -> list[tuple[int, str]]:
    steps: list[tuple[int, str]] = []
    for name in path:
        gid = table.get(name)
        if gid is None:
            continue
        if steps and steps[-1][0] == gid and corr.restructured(gid):
            continue
        steps.append((gid, name))
    return steps



def summarise(findings: list[str]) -> list[str]:
    """Report lines for :func:`dyncheck.agreement.numeric_findings`: when outputs differ,
    gradients differ as a matter of course, so the outputs in full and the gradients by
    name; when only gradients differ (a changed backward), those in full."""
    outputs = [f"- {f}" for f in findings if ".grad " not in f.split(":")[0]]
    grads = [f for f in findings if ".grad " in f.split(":")[0]]
    if not outputs:
        return [f"- {f}" for f in grads]
    if grads:
        outputs.append(f"- and the gradients of {', '.join(f.split('.grad ')[0] for f in grads)}")
    return outputs
