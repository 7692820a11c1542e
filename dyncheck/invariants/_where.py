"""Where two runs part, inside the model: the first module, in call order, whose output
differs while its inputs agree.

``refactor_agreement`` names the first module where a refactor departs from the old model
(:mod:`dyncheck.guard.localise`); this does the same for three checks' failures:

* ``batch_invariance`` (:func:`first_coupled_module`): where a sample starts to depend on
  its batch. The batch and the sample alone (or the permuted batch) run again, each on a
  copy of its own, recorded call by call, and each tensor of the batch's calls is cut to
  the sample on its batch axis: the one axis where the batch has its size and a sample
  alone 1, every other axis equal. A tensor with no such axis (a mask or table shared by
  the batch) is compared whole, and a call whose tensors cannot be cut or compared (tokens
  flattened across the batch, a ``PackedSequence``, an auxiliary loss of the whole batch,
  the sample in another row after sorting inside forward) is left out and named.
* ``dtype_agreement`` (:func:`described`): where the float32 copy departs from the float64 one.
* ``determinism`` (:func:`described`): where a second call departs from the first, bitwise.

A module is named only when confirmed: called again on its own (on the batch's arguments
with the sample's row replaced by its arguments alone; in float32 on the float64 copy's
arguments), it still gives another output; one that only passed on a difference its inputs
already had (high-frequency features amplify rounding) is not named, and one that draws
random numbers is named as such. Code between modules is named only when every module
before it agreed within float32's own tolerance. The walk compares at :data:`TOLERANCE`,
far past float32 rounding. Whenever something stands in the way of a sure answer (another
path, a module called another number of times, a run that does not repeat, a difference
smaller than the walk's tolerance, a value that cannot be compared, anything that raises),
the report says nothing rather than something that may be wrong.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from dyncheck.agreement import close
from dyncheck.cloning import clone
from dyncheck.compare import mismatch
from dyncheck.guard.localise import Call, paths_part, record_calls
from dyncheck.guard.mapping import Correspondence
from dyncheck.seeding import seeded
from dyncheck.tracing import floating_leaves

__all__ = ["TOLERANCE", "Recording", "described", "first_coupled_module", "quiet", "recorded", "reported"]

#: (rtol, atol) of the walk: far past float32 rounding, far below what a batch statistic,
#: a capacity limit or a random draw by position changes.
TOLERANCE = (1e-3, 1e-3)

#: Why a call was left out of a batch's walk, in the report.
_UNCUT = "some of their tensors cannot be cut to the sample"


@dataclass
class Recording:
    """One run: its submodule calls (:func:`~dyncheck.guard.localise.record_calls`, in the
    order they finish), the order calls started and finished (``("start" | "finish", (name,
    call number))``), and its output."""

    calls: list[Call]
    output: Any
    events: list[tuple[str, tuple[str, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_key = {(c.name, c.index): c for c in self.calls}

    def call(self, key: tuple[str, int]) -> Call | None:
        return self._by_key.get(key)


def recorded(model: nn.Module, run: Callable[[nn.Module], Any]) -> Recording | None:
    """``run(model)`` recorded call by call, its model's forward only (not what backward
    recomputes); None when it raises."""
    events: list[tuple[str, tuple[str, int]]] = []
    try:
        with record_calls(model, events=events, forward_only=True) as calls:
            output = run(model)
    except Exception:  # the failure is reported already: without a location, not with another error
        return None
    return Recording(list(calls), output, events)


def _copied(value: Any) -> Any:
    """``value`` with its tensors detached, deep-copied: a cache object handed to a module
    (and changed by the call) is the one it was given."""
    leaves, spec = tree_flatten(value)
    return copy.deepcopy(tree_unflatten([v.detach() if isinstance(v, torch.Tensor) else v for v in leaves], spec))


def _arguments(model: nn.Module, run: Callable[[nn.Module], Any], call: tuple[str, int]) -> tuple[Any, Any] | None:
    """``run(model)`` again, keeping the arguments of one call (module name, call number)
    as given; None when the run raises or never makes that call."""
    name, index = call
    kept: list[tuple[Any, Any]] = []
    count = [0]

    def hook(_module: nn.Module, args: Any, kwargs: Any) -> None:
        if count[0] == index:
            kept.append((_copied(args), _copied(kwargs)))
            raise _Kept  # nothing after this call is needed
        count[0] += 1

    # First among the module's pre-hooks: the arguments before a user's hook changes them,
    # as a call of the module (which runs those hooks again) wants them.
    handle = model.get_submodule(name).register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    try:
        with torch.no_grad():  # a cache holding tensors of the graph copies only without it
            run(model)
    except _Kept:
        pass
    except Exception:
        return None
    finally:
        handle.remove()
    return kept[0] if kept else None


class _Kept(BaseException):
    """Ends a run once the arguments wanted are kept (not an Exception: a model's own
    ``except Exception`` does not swallow it)."""


def _recalled(module: nn.Module, arguments: tuple[Any, Any], seed: int) -> list[tuple[str, torch.Tensor]]:
    """``module`` called on a copy of ``arguments`` under ``seed``; every global generator
    (python's, numpy's, torch's) is left as it was."""
    args, kwargs = copy.deepcopy(arguments)
    with seeded(seed), torch.no_grad():
        return list(floating_leaves(module(*args, **kwargs), "output"))


def _draws(module: Callable[[], nn.Module], arguments: tuple[Any, Any]) -> bool:
    """Whether ``module()`` gives other outputs under two seeds: it draws random numbers."""
    first, second = _recalled(module(), arguments, 0), _recalled(module(), arguments, 1)
    return len(first) != len(second) or any(bool(mismatch(a, b)) for (_, a), (_, b) in zip(first, second))


def reported() -> bool:
    """Whether this failure is the one reported: Hypothesis's last run of the example it
    shows (not one of the many runs that found and shrank it), or a run outside Hypothesis
    (a recorded example replayed). A diagnosis, or a second look, is made only for it."""
    from hypothesis.control import current_build_context, currently_in_test_context

    return not currently_in_test_context() or current_build_context().is_final


def _usable(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.layout == torch.strided and not value.is_nested


def _differ(a: torch.Tensor, b: torch.Tensor, tolerance: tuple[float, float] | None = TOLERANCE) -> list[str]:
    """How ``a`` differs from ``b`` (torch.testing's words); empty when they agree. Integers
    and booleans (ids, buckets, masks) are compared exactly, whatever the tolerance."""
    if tuple(a.shape) != tuple(b.shape):
        return [f"The values for attribute 'shape' do not match: {list(a.shape)} != {list(b.shape)}."]
    if not (a.is_floating_point() or a.is_complex()) or not (b.is_floating_point() or b.is_complex()):
        return mismatch(a, b)
    return close(a, b, tolerance=tolerance)


def _alone_axis(whole: torch.Tensor, alone: torch.Tensor, size: int) -> int | None:
    """The one axis where ``whole`` has ``size`` and ``alone`` has 1, every other axis equal."""
    if not (_usable(whole) and _usable(alone)) or whole.dim() != alone.dim():
        return None
    axes = [
        axis for axis in range(whole.dim())
        if whole.shape[axis] == size and alone.shape[axis] == 1
        and all(whole.shape[a] == alone.shape[a] for a in range(whole.dim()) if a != axis)
    ]
    return axes[0] if len(axes) == 1 else None


def _rows(tensor: torch.Tensor, axis: int, rows: torch.Tensor) -> torch.Tensor:
    return tensor.index_select(axis, rows.to(tensor.device))


def _elsewhere(whole: torch.Tensor, alone: torch.Tensor, axis: int, rows: torch.Tensor) -> bool:
    """Whether ``alone`` equals exactly one row of ``whole`` other than ``rows``: the sample
    sits elsewhere in the batch here (sorted by length inside forward). A constant value (all
    zeros after a ReLU) could be any row's, and is never said to be elsewhere."""
    flat = alone.reshape(-1)
    if flat.numel() == 0 or bool((flat == flat[0]).all()):
        return False
    wide = torch.complex128 if whole.is_complex() or alone.is_complex() else torch.float64
    moved = whole.detach().movedim(axis, 0).to("cpu", wide)
    ref = alone.detach().movedim(axis, 0).to("cpu", wide)
    near = ((moved - ref).abs() <= TOLERANCE[1] + TOLERANCE[0] * ref.abs()).reshape(moved.shape[0], -1).all(1)
    near[rows.cpu()] = False
    return int(near.sum()) == 1


def _twins(batch: dict[str, Any], alone: dict[str, Any], size: int, rows: torch.Tensor) -> bool:
    """Whether another sample of the batch is the sample ``rows`` itself (the same values in
    every argument with a batch axis: all-zero rows, as Hypothesis shrinks to)."""
    pairs = [
        (value, axis) for value, ref in zip(tree_flatten(batch)[0], tree_flatten(alone)[0])
        if isinstance(value, torch.Tensor) and isinstance(ref, torch.Tensor)
        and (axis := _alone_axis(value, ref, size)) is not None
    ]
    if not pairs:
        return True
    return any(
        all(torch.equal(_rows(v, a, torch.tensor([j])), _rows(v, a, rows)) for v, a in pairs)
        for j in range(size) if j not in rows.tolist()
    )


def _cut(
    values: list[tuple[str, Any]], partners: list[tuple[str, Any]], single: list[tuple[str, Any]],
    size: int, rows: torch.Tensor, reordered: bool,
) -> list[tuple[str, Any]] | None:
    """A batch call's ``values`` cut to ``rows`` on their batch axis (found against
    ``single``, one sample's run), to compare with ``partners``; None when one cannot be (no
    batch axis and not the same as its partner, a PackedSequence's steps, a nested or sparse
    tensor; with ``reordered``, the sample found in another row), which leaves the call out."""
    if not len(values) == len(partners) == len(single):
        return None
    kept = []
    for (label, value), (_, partner), (_, one) in zip(values, partners, single):
        if label.endswith(".data") or not (_usable(value) and _usable(partner)):
            return None  # a PackedSequence's steps of every sample in one; nested and sparse tensors
        axis = _alone_axis(value, one, size)
        if axis is None:
            if _differ(value, partner):
                return None
            kept.append((label, value))
            continue
        cut = _rows(value, axis, rows)
        if reordered and _differ(cut, partner) and _elsewhere(value, partner, axis, rows):
            return None
        if _positions(value, axis):
            return None  # each row's place in the batch (indices to scatter rows back): by nature not the sample's
        kept.append((label, cut))
    return kept


def _positions(value: torch.Tensor, axis: int) -> bool:
    """Whether an integer tensor holds, along its batch axis, each row's index in the batch."""
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool or value.shape[axis] < 2:
        return False
    moved = value.movedim(axis, 0).reshape(value.shape[axis], -1)
    return bool((moved == torch.arange(value.shape[axis], device=value.device)[:, None]).all())


def _plain(values: list[tuple[str, Any]], partners: list[tuple[str, Any]]) -> list[tuple[str, Any]] | None:
    """Values compared as they are (two runs of one batch); None when some cannot be."""
    if len(values) != len(partners) or not all(_usable(v) and _usable(p) for (_, v), (_, p) in zip(values, partners)):
        return None
    return values


@dataclass
class _Break:
    """Where a walk stopped: ``module`` (its call's inputs agree, outputs differ),
    ``between`` (the call's inputs differ), ``after`` (every call agreed)."""

    kind: str
    call: Call | None
    lines: list[str]
    last: str
    skipped: list[str] = field(default_factory=list)
    #: every call compared before it agreed within float32's own tolerance
    strict: bool = True
    #: for ``between``: the module whose forward was running ("" for the model's own)
    owner: str = ""


def _label(call: Call) -> str:
    return call.name if call.index == 0 else f"{call.name} (call {call.index + 1})"


def _first_difference(
    ours: list[tuple[str, Any]], theirs: list[tuple[str, Any]], compared: str, tolerance: tuple[float, float],
) -> list[str]:
    for (label, a), (_, b) in zip(ours, theirs):
        lines = _differ(a, b, tolerance)
        if lines:
            return [f"{label} against {compared}:", *(f"  {line}" for line in lines)]
    return []


def _strictly_same(ours: list[tuple[str, Any]], theirs: list[tuple[str, Any]]) -> bool:
    return not any(_differ(a, b, None) for (_, a), (_, b) in zip(ours, theirs))


def _walk(
    run: Recording, partner: Recording,
    prepare: Callable[[Call, Call], tuple[list[tuple[str, Any]] | None, list[tuple[str, Any]] | None]],
    compared: str, tolerance: tuple[float, float],
) -> _Break | None:
    """Where ``run`` first parts from ``partner`` (two runs along the same calls), in the
    order things happen: a call's inputs when it starts (code that ran before it, in
    whichever forward, made them), its outputs when it finishes (its own code made them).
    ``prepare`` gives the values compared, or None for a call that cannot be."""
    last, skipped, strict = "", [], True
    running: list[str] = []  # the calls started and not finished, outermost first
    prepared: dict[tuple[str, int], tuple[Any, Any]] = {}
    for event, key in run.events:
        call, other = run.call(key), partner.call(key)
        if call is None or other is None:
            return None
        if key not in prepared:
            prepared[key] = prepare(call, other)
        inputs, outputs = prepared[key]
        owner = running[-1] if running else ""
        if event == "start":
            running.append(call.name)
        elif running:
            running.pop()
        if inputs is None or outputs is None:
            if event == "start" and call.name not in skipped:
                skipped.append(call.name)
            continue
        if event == "start":
            lines = _first_difference(inputs, other.inputs, compared, tolerance)
            if lines:
                return _Break("between", call, lines, last, skipped, strict, owner)
            strict = strict and _strictly_same(inputs, other.inputs)
            continue
        lines = _first_difference(outputs, other.outputs, compared, tolerance)
        if lines:
            return _Break("module", call, lines, last, skipped, strict)
        strict = strict and _strictly_same(outputs, other.outputs)
        last = _label(call)
    return _Break("after", None, [], last, skipped, strict) if last else None


def _outputs_differ(first: Any, second: Any, tolerance: tuple[float, float] | None) -> bool:
    theirs = dict(floating_leaves(second))
    return any(
        name not in theirs or bool(_differ(t, theirs[name], tolerance))
        for name, t in floating_leaves(first) if _usable(t)
    )


def quiet(function: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """A diagnosis must never break the check it explains: any error gives no lines."""
    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> list[str]:
        try:
            return function(*args, **kwargs)
        except Exception:
            return []

    return guarded


@quiet
def first_coupled_module(
    fresh: Callable[[], nn.Module],
    run: Callable[[nn.Module, dict[str, Any]], Any],
    batch: Callable[[], dict[str, Any]],
    other: Callable[[], dict[str, Any]],
    size: int,
    rows: torch.Tensor,
    *,
    alone: bool,
    sample: str,
    differs: Callable[[Any, Any, tuple[float, float] | None], bool],
    single: Callable[[], dict[str, Any]] | None = None,
) -> list[str]:
    """Report lines naming where the batch's run parts from the other, or none.

    ``batch()`` and ``other()`` give the two calls' arguments (fresh each time): ``other``
    is the sample ``rows`` alone (``alone=True``) or the batch reordered by ``rows``, and
    then ``single()`` one sample alone (the batch axes are read from it). ``fresh()`` gives
    an eval-mode copy for each run, ``run(model, args)`` calls it; ``sample`` names the
    compared rows ("sample 1", "the batch"). ``differs(batch_output, other_output, tolerance)``
    says whether the check's output differs between them (``tolerance`` None: the check's).

    When copies of their own agree (at the check's tolerance), one copy called for the batch
    and then for the other as the check did, which changed some state, must give the
    difference again: then it is what the model keeps from one call to the next."""
    from dyncheck.invariants.determinism import _changed, _plain_state

    compared = "the sample alone" if alone else "the permuted batch"
    whole = recorded(fresh(), lambda m: run(m, batch()))
    theirs = recorded(fresh(), lambda m: run(m, other()))
    if whole is None or theirs is None or _outputs_differ(whole.output, run(fresh(), batch()), None):
        return []  # a run that does not repeat: nothing said of it can be trusted
    if not differs(whole.output, theirs.output, None):
        model = fresh()
        before = _plain_state(fresh())
        run(model, batch())
        if not _changed(before, model) or not differs(whole.output, run(model, other()), None):
            return []  # no state the call changed, or no difference it makes: a chance agreement
        return [
            f"where it starts: not in one call. On a copy of its own for each call, {sample} agrees with "
            f"{compared}; one copy called for the batch and then for {compared} differs as in the check: what "
            "differs is what the model keeps from one call to the next (determinism names it)"
        ]
    if not differs(whole.output, theirs.output, TOLERANCE):
        return []  # past the check's tolerance but within the walk's: too small to place
    one = theirs if alone else recorded(fresh(), lambda m: run(m, single()))
    if one is None:
        return []
    names, their_names = [c.name for c in whole.calls], [c.name for c in theirs.calls]
    if set(names) != set(their_names):
        # a module only one of them ran: said as seen, not as the cause
        _, sentence = paths_part(tuple(their_names), tuple(names), _identity(fresh()), old=compared, new="the batch")
        return [f"the batch and {compared} take different paths: {sentence}"]
    if names != their_names or names != [c.name for c in one.calls]:
        return []  # a module called once per sample (or in another order): the calls do not pair
    # Sorted inside forward, the sample sits in another row of a call's inputs: looked for
    # only when no other sample is the same as it (then its row could not be told apart),
    # and not in outputs (a draw by position gives the sample another sample's numbers
    # there: ViTMAE's random masking, which is the coupling to name).
    reordered = alone and not _twins(batch(), other(), size, rows)

    def prepare(call: Call, partner: Call) -> tuple[Any, Any]:
        single_call = one.call((call.name, call.index))
        if single_call is None:
            return None, None
        return (
            _cut(call.inputs, partner.inputs, single_call.inputs, size, rows, reordered),
            _cut(call.outputs, partner.outputs, single_call.outputs, size, rows, False),
        )

    found = _walk(whole, theirs, prepare, compared, TOLERANCE)
    model = fresh()
    drawn = False
    if found is not None and found.kind == "module":
        assert found.call is not None
        verdict = _batch_confirmed(fresh, run, batch, other if alone else single, found.call, whole, theirs, one,
                                   size, rows, alone, reordered)
        if verdict is None:
            return []
        drawn = verdict == "draws"
    return _lines(model, found, ours=f"for {sample}", theirs=compared, unchecked=_UNCUT, drawn=drawn)


def _identity(model: nn.Module) -> Correspondence:
    names = [name for name, _ in model.named_modules()]
    return Correspondence({key: (key,) for key in model.state_dict()}, names, names)


def _batch_confirmed(
    fresh: Callable[[], nn.Module], run: Callable[[nn.Module, dict[str, Any]], Any],
    batch: Callable[[], dict[str, Any]], sample: Callable[[], dict[str, Any]] | None, call: Call,
    whole: Recording, theirs: Recording, one: Recording, size: int, rows: torch.Tensor, alone: bool, reordered: bool,
) -> str | None:
    """Whether the module of ``call`` itself ties the sample to its batch: called again on
    the batch's arguments with the sample's row replaced by its arguments alone, it still
    gives the sample another output than alone; for a permuted batch, called on the batch's
    arguments permuted, it does not give its outputs permuted. ``"draws"`` when it draws
    random numbers (a draw by place in the batch), ``"confirmed"``, or None (not so, or it
    cannot be tried)."""
    key = (call.name, call.index)
    if sample is None:
        return None
    given = _arguments(fresh(), lambda m: run(m, batch()), key)
    reference = _arguments(fresh(), lambda m: run(m, sample()), key)
    if given is None or reference is None:
        return None
    values, spec = tree_flatten(given)
    references, reference_spec = tree_flatten(reference)
    if spec != reference_spec:
        return None
    changed = []
    for value, ref in zip(values, references):
        axis = _alone_axis(value, ref, size) if isinstance(value, torch.Tensor) else None
        if axis is not None:
            value = value.index_copy(axis, rows.to(value.device), ref.to(value.dtype)) if alone else _rows(value, axis, rows)
        changed.append(value)
    arguments = tree_unflatten(changed, spec)
    base = fresh()

    def module() -> nn.Module:
        return clone(base.get_submodule(call.name))

    if _draws(module, arguments):
        return "draws"
    mine, partner, single = whole.call(key), theirs.call(key), one.call(key)
    if mine is None or partner is None or single is None:
        return None
    if not _reproduces(module(), reference, single.outputs):
        return None  # called on its own it is not the module that ran: state its parent set in forward
    output = _recalled(module(), arguments, 0)
    if not len(output) == len(mine.outputs) == len(partner.outputs) == len(single.outputs):
        return None
    confirmed = None
    for (_, value), (_, batch_value), (_, expected), (_, ref) in zip(output, mine.outputs, partner.outputs, single.outputs):
        axis = _alone_axis(batch_value, ref, size)
        if axis is None or not _usable(value):
            continue
        if alone and _differ(_rows(value, axis, rows), expected):
            if reordered and _elsewhere(value, expected, axis, rows):
                return None  # the sample's output sits in another row: a module that sorts the batch
            confirmed = "confirmed"  # given the sample's own inputs in its row, it still gets another output
        if not alone and _differ(value, _rows(batch_value, axis, rows)):
            confirmed = "confirmed"  # the permuted inputs do not give the permuted outputs
    return confirmed


def _reproduces(module: nn.Module, arguments: tuple[Any, Any], recorded_outputs: list[tuple[str, Any]]) -> bool:
    """Whether ``module``, called on its own on ``arguments``, gives the outputs a run recorded
    for that call: what it computes depends on nothing else (an attribute its parent sets in
    forward, a hook's change of its arguments)."""
    output = _recalled(module, arguments, 0)
    return len(output) == len(recorded_outputs) and not any(
        _differ(a, b) for (_, a), (_, b) in zip(output, recorded_outputs)
    )


@quiet
def described(
    model: nn.Module, reference: Recording, calls: Recording, *, ours: str, theirs: str, unchecked: str,
    tolerance: tuple[float, float] = TOLERANCE, confirm: Callable[[Call], bool] | None = None,
) -> list[str]:
    """Report lines for where ``calls`` part from ``reference`` (two recorded runs of
    ``model``, or of copies of it, along the same path), walked at ``tolerance``; none when
    not found, when the runs called other modules, when ``confirm(call)`` does not hold for
    the module found, or when the walk fails. ``ours`` says which values of ``calls`` are
    compared ("on float32"), ``theirs`` names the reference ("the float64 copy"),
    ``unchecked`` why a call could not be compared."""
    if [c.name for c in reference.calls] != [c.name for c in calls.calls]:
        return []
    found = _walk(
        calls, reference, lambda call, partner: (_plain(call.inputs, partner.inputs), _plain(call.outputs, partner.outputs)),
        theirs, tolerance,
    )
    if found is not None and found.kind == "module" and confirm is not None:
        assert found.call is not None
        if not confirm(found.call):
            return []
    return _lines(model, found, ours=ours, theirs=theirs, unchecked=unchecked)


def _code(model: nn.Module, owner: str) -> str:
    """The code of the forward that was running (``owner``, "" for the model's), in words."""
    if not owner:
        return "forward's own code"
    return f"the code of {owner}'s forward ({type(model.get_submodule(owner)).__qualname__})"


def _outermost(names: list[str]) -> str:
    """The outermost of ``names`` (a block, not each layer in it), at most four named."""
    outer = [n for n in names if not any(n.startswith(o + ".") for o in names if o != n)]
    return ", ".join(outer[:4]) + (f" and {len(outer) - 4} more" if len(outer) > 4 else "")


def _lines(
    model: nn.Module, found: _Break | None, *, ours: str, theirs: str, unchecked: str, drawn: bool = False,
) -> list[str]:
    if found is None:
        return []
    found.skipped = [_outermost(found.skipped)] if found.skipped else []
    if found.kind == "module":
        assert found.call is not None
        layer = type(model.get_submodule(found.call.name))
        said = (
            "; it draws random numbers (a draw that depends on the sample's place in the batch would do this)"
            if drawn else ""
        )
        return [
            f"where it starts: {_label(found.call)} ({layer.__module__}.{layer.__qualname__}) — its inputs {ours} "
            f"agree with {theirs}'s, its output does not{said}:",
            *(f"  {line}" for line in found.lines),
        ]
    if not found.strict:
        return []  # a module before it already differed past float32's tolerance: it may hold the cause
    if found.kind == "between":
        assert found.call is not None
        module = _label(found.call)
        code = _code(model, found.owner)
        if found.skipped:
            where = (
                f"in {code} after {found.last}, whose output agrees, " if found.last else f"in {code} "
            ) + f"or in {', '.join(found.skipped)}, not compared ({unchecked})"
            return [
                f"where it starts: before {module}, whose inputs {ours} already differ: {where}:",
                *(f"  {line}" for line in found.lines),
            ]
        after = f"after {found.last}, whose output agrees, " if found.last else ""
        return [
            f"where it starts: in {code} {after}before {module}, whose inputs {ours} already differ:",
            *(f"  {line}" for line in found.lines),
        ]
    if found.skipped:
        return []  # a call left out may hold it
    return [
        f"where it starts: in {_code(model, '')} after {found.last}: the output of every module "
        f"{ours} agrees with {theirs}'s"
    ]
