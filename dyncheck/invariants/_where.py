"""Where two runs part, inside the model: the first module, in call order, whose output
differs while its inputs agree.

``refactor_agreement`` names the first module where a refactor departs from the old model
(:mod:`dyncheck.guard.localise`); this reuses that walk for three checks' failures:

* ``batch_invariance`` (:func:`first_coupled_module`): where a sample starts to depend on
  its batch. The batch and the sample alone (or the permuted batch) run again, each on a
  copy of its own, recorded call by call, and each tensor of the batch's calls is cut to
  the sample on its batch axis: the one axis where the batch has its size and the sample
  alone 1, every other axis equal (for a permuted batch, the axis a run of one sample
  alone says). A tensor with no such axis (a mask or table shared by the batch) is
  compared whole, and a call whose tensors cannot be cut or compared (tokens flattened
  across the batch, a ``PackedSequence``, an auxiliary loss of the whole batch) is left
  out and named. A module so found is confirmed before it is named: called again on the
  batch's inputs with the sample's row replaced by its inputs alone (for a permuted batch:
  on the permuted inputs), it must still give the sample another output; a module that
  only passed on a difference its inputs had within the walk's tolerance (features of
  high frequency amplify float32's rounding) is not named.
* ``dtype_agreement``: where the float32 copy departs from the float64 one.
* ``determinism``: where a second call departs from the first.

The walk compares at :data:`TOLERANCE`, far past float32 rounding. Whenever something
stands in the way of a sure answer (the runs took different paths or called a module
another number of times, a run is not repeatable, the difference is smaller than the
walk's tolerance, a recorded value cannot be compared, anything raises), the report says
nothing rather than something that may be wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from dyncheck.agreement import close
from dyncheck.guard.localise import Call, Localisation, localise, paths_part, record_calls
from dyncheck.guard.mapping import Correspondence
from dyncheck.tracing import floating_leaves

__all__ = ["TOLERANCE", "Recording", "described", "first_coupled_module", "recorded"]

#: (rtol, atol) of the walk: far past float32 rounding, far below what a batch statistic,
#: a capacity limit or a random draw by position changes.
TOLERANCE = (1e-3, 1e-3)

#: Why a call was left out of a batch's walk, in the report.
_UNCUT = "some of their tensors cannot be cut to the sample"


@dataclass
class Recording:
    """One run: its submodule calls (:func:`~dyncheck.guard.localise.record_calls`), its
    output, and (when asked) each call's arguments as given, keyed by (module, call)."""

    calls: list[Call]
    output: Any
    arguments: dict[tuple[str, int], tuple[Any, Any]] = field(default_factory=dict)


def _copied(value: Any) -> Any:
    leaves, spec = tree_flatten(value)
    return tree_unflatten([v.detach().clone() if isinstance(v, torch.Tensor) else v for v in leaves], spec)


def recorded(model: nn.Module, run: Callable[[nn.Module], Any], *, arguments: bool = False) -> Recording | None:
    """``run(model)`` recorded call by call; None when it raises."""
    kept: dict[tuple[str, int], tuple[Any, Any]] = {}
    counts: dict[str, int] = {}
    handles = []

    def keep(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, args: Any, kwargs: Any) -> None:
            index = counts.get(name, 0)
            counts[name] = index + 1
            try:
                kept[(name, index)] = (_copied(args), _copied(kwargs))
            except Exception:  # arguments that cannot be copied: that call cannot be confirmed
                pass

        return hook

    try:
        with record_calls(model) as calls:
            if arguments:
                handles = [
                    module.register_forward_pre_hook(keep(name), with_kwargs=True)
                    for name, module in model.named_modules() if name
                ]
            output = run(model)
    except Exception:  # the failure is reported already: without a location, not with another error
        return None
    finally:
        for handle in handles:
            handle.remove()
    return Recording(calls, output, kept)


def _usable(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.layout == torch.strided and not value.is_nested


def _differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    return tuple(a.shape) != tuple(b.shape) or bool(close(a, b, tolerance=TOLERANCE))


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
    """Whether ``alone`` equals a row of ``whole`` other than ``rows``: the sample sits
    elsewhere in the batch here (sorted by length inside forward)."""
    return any(
        not _differ(_rows(whole, axis, torch.tensor([j])), alone)
        for j in range(whole.shape[axis]) if j not in rows.tolist()
    )


def _twins(batch: dict[str, Any], alone: dict[str, Any], size: int, rows: torch.Tensor) -> bool:
    """Whether another sample of the batch is the sample ``rows`` itself (the same values in
    every argument with a batch axis: all-zero rows, as Hypothesis shrinks to)."""
    pairs = [
        (value, axis) for value, ref in zip(tree_flatten(batch)[0], tree_flatten(alone)[0])
        if isinstance(value, torch.Tensor) and isinstance(ref, torch.Tensor)
        and (axis := _alone_axis(value, ref, size)) is not None
    ]
    return any(
        all(torch.equal(_rows(v, a, torch.tensor([j])), _rows(v, a, rows)) for v, a in pairs)
        for j in range(size) if j not in rows.tolist()
    ) if pairs else True


def _cut(
    values: list[tuple[str, Any]], partners: list[tuple[str, Any]], single: list[tuple[str, Any]],
    size: int, rows: torch.Tensor, reordered: bool,
) -> list[tuple[str, Any]]:
    """A batch call's ``values`` cut to ``rows`` on their batch axis (found against
    ``single``, one sample's run), to compare with ``partners``; a value that cannot be
    (no batch axis and not the same as its partner, a PackedSequence's steps, a nested or
    sparse tensor; with ``reordered``, the sample found in another row) is dropped, which
    leaves the call out of the walk: its values no longer pair."""
    if not len(values) == len(partners) == len(single):
        return values
    kept = []
    for (label, value), (_, partner), (_, one) in zip(values, partners, single):
        if label.endswith(".data") or not (_usable(value) and _usable(partner)):
            continue  # a PackedSequence's steps of every sample in one; nested and sparse tensors
        axis = _alone_axis(value, one, size)
        if axis is None:
            if not _differ(value, partner):
                kept.append((label, value))
            continue
        cut = _rows(value, axis, rows)
        if reordered and _differ(cut, partner) and _elsewhere(value, partner, axis, rows):
            continue
        kept.append((label, cut))
    return kept


def _outputs_differ(first: Any, second: Any, tolerance: tuple[float, float] | None) -> bool:
    theirs = dict(floating_leaves(second))
    return any(
        name not in theirs or tuple(t.shape) != tuple(theirs[name].shape)
        or bool(close(t, theirs[name], tolerance=tolerance))
        for name, t in floating_leaves(first) if _usable(t)
    )


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

    When copies of their own agree (at the check's tolerance), the one copy the check called
    for the batch and then for the other is called so again: if that gives the difference,
    it is what the model keeps from one call to the next, and the line says so."""
    try:
        return _first_coupled(fresh, run, batch, other, size, rows, alone, sample, differs, single)
    except Exception:  # a diagnosis must never break the check it explains
        return []


def _first_coupled(
    fresh: Callable[[], nn.Module],
    run: Callable[[nn.Module, dict[str, Any]], Any],
    batch: Callable[[], dict[str, Any]],
    other: Callable[[], dict[str, Any]],
    size: int,
    rows: torch.Tensor,
    alone: bool,
    sample: str,
    differs: Callable[[Any, Any, tuple[float, float] | None], bool],
    single: Callable[[], dict[str, Any]] | None,
) -> list[str]:
    compared = "the sample alone" if alone else "the permuted batch"
    whole = recorded(fresh(), lambda m: run(m, batch()), arguments=True)
    again = recorded(fresh(), lambda m: run(m, batch()))
    theirs = recorded(fresh(), lambda m: run(m, other()), arguments=True)
    if whole is None or again is None or theirs is None or _outputs_differ(whole.output, again.output, None):
        return []  # a run that does not repeat: nothing said of it can be trusted
    if not differs(whole.output, theirs.output, None):
        from dyncheck.invariants.determinism import _changed, _plain_state

        model = fresh()
        before = _plain_state(fresh())
        run(model, batch())
        changed = list(_changed(before, model))
        if not changed or not differs(whole.output, run(model, other()), None):
            return []  # no state the call changed, or no difference it makes: a chance agreement
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        return [
            f"where it starts: not in one call. On a copy of its own for each call, {sample} agrees with "
            f"{compared}; one copy called for the batch and then for {compared} differs as in the check, and the "
            f"call for the batch changed {shown}: what differs is what the model keeps from one call to the next"
        ]
    if not differs(whole.output, theirs.output, TOLERANCE):
        return []  # past the check's tolerance but within the walk's: too small to place
    one = theirs if alone else recorded(fresh(), lambda m: run(m, single()), arguments=True)
    if one is None:
        return []
    names, their_names = [c.name for c in whole.calls], [c.name for c in theirs.calls]
    if set(names) != set(their_names):
        # a module only one of them ran: a branch decided on the batch
        _, sentence = paths_part(tuple(their_names), tuple(names), _identity(fresh()), old=compared, new="the batch")
        return [f"where it starts: the batch and {compared} take different paths; {sentence}"]
    if names != their_names or names != [c.name for c in one.calls]:
        return []  # a module called once per sample (or in another order): the calls do not pair
    # Sorted inside forward, the sample sits in another row of a call's tensors: looked for
    # only when no other sample is the same as it (then its row could not be told apart).
    reordered = alone and not _twins(batch(), other(), size, rows)
    ours = [
        Call(
            c.name, c.index,
            _cut(c.inputs, t.inputs, s.inputs, size, rows, reordered),
            _cut(c.outputs, t.outputs, s.outputs, size, rows, reordered),
        )
        for c, t, s in zip(whole.calls, theirs.calls, one.calls)
    ]
    model = fresh()
    found = localise(theirs.calls, ours, _identity(model), TOLERANCE, other=compared)
    if found.kind == "module":
        call = _first_broken(found.module, ours, theirs.calls)
        if call is None or not _confirmed(fresh, call, whole, theirs, one, size, rows, alone):
            return []
    return _lines(model, found, ours=f"for {sample}", theirs=compared, unchecked=_UNCUT)


def _identity(model: nn.Module) -> Correspondence:
    names = [name for name, _ in model.named_modules()]
    return Correspondence({key: (key,) for key in model.state_dict()}, names, names)


def _first_broken(name: str, ours: list[Call], theirs: list[Call]) -> tuple[str, int] | None:
    """The call of ``name`` whose values agree going in and differ coming out."""
    for mine, their in zip(ours, theirs):
        if mine.name != name or len(mine.inputs) != len(their.inputs) or len(mine.outputs) != len(their.outputs):
            continue
        if any(_differ(a, b) for (_, a), (_, b) in zip(mine.inputs, their.inputs)):
            continue
        if any(_differ(a, b) for (_, a), (_, b) in zip(mine.outputs, their.outputs)):
            return mine.name, mine.index
    return None


def _confirmed(
    fresh: Callable[[], nn.Module], call: tuple[str, int], whole: Recording, theirs: Recording, one: Recording,
    size: int, rows: torch.Tensor, alone: bool,
) -> bool:
    """Whether the module of ``call`` itself ties the sample to its batch: called again on
    the batch's arguments with the sample's row replaced by its arguments alone, it still
    gives the sample another output than alone; for a permuted batch, called on the batch's
    arguments permuted, it does not give its outputs permuted. False when that cannot be
    tried."""
    if call not in whole.arguments or call not in one.arguments:
        return False
    given, spec = tree_flatten(whole.arguments[call])
    reference, reference_spec = tree_flatten(one.arguments[call])
    if spec != reference_spec:
        return False
    if alone:
        arguments = [
            value.index_copy(axis, rows.to(value.device), ref.to(value.dtype))
            if isinstance(value, torch.Tensor) and (axis := _alone_axis(value, ref, size)) is not None else value
            for value, ref in zip(given, reference)
        ]
    else:
        arguments = [
            _rows(value, axis, rows)
            if isinstance(value, torch.Tensor) and (axis := _alone_axis(value, ref, size)) is not None else value
            for value, ref in zip(given, reference)
        ]
    args, kwargs = tree_unflatten(arguments, spec)
    module = fresh().get_submodule(call[0])
    with torch.no_grad():
        output = list(floating_leaves(module(*args, **kwargs), "output"))
    mine, partner, single = (next(c for c in run.calls if (c.name, c.index) == call) for run in (whole, theirs, one))
    if not len(output) == len(mine.outputs) == len(partner.outputs) == len(single.outputs):
        return False
    for (_, value), (_, batch), (_, expected), (_, ref) in zip(output, mine.outputs, partner.outputs, single.outputs):
        axis = _alone_axis(batch, ref, size)
        if axis is None or not _usable(value):
            continue
        if alone and _differ(_rows(value, axis, rows), expected):
            return True  # given the sample's own inputs in its row, the sample still gets another output
        if not alone and _differ(value, _rows(batch, axis, rows)):
            return True  # the permuted inputs do not give the permuted outputs
    return False


def described(
    model: nn.Module, reference: list[Call], calls: list[Call], *, ours: str, theirs: str, unchecked: str
) -> list[str]:
    """Report lines for where ``calls`` part from ``reference`` (two recorded runs of
    ``model``, or of copies of it, along the same path), walked at :data:`TOLERANCE`; none
    when not found, when the runs called other modules, or when the walk fails. ``ours``
    says which values of ``calls`` are compared ("on float32"), ``theirs`` names the
    reference ("the float64 copy"), ``unchecked`` why a call could not be compared."""
    try:
        if [c.name for c in reference] != [c.name for c in calls]:
            return []
        usable = [
            Call(c.name, c.index, [(n, v) for n, v in c.inputs if _usable(v)], [(n, v) for n, v in c.outputs if _usable(v)])
            for c in calls
        ]
        found = localise(reference, usable, _identity(model), TOLERANCE, other=theirs)
        return _lines(model, found, ours=ours, theirs=theirs, unchecked=unchecked)
    except Exception:  # a diagnosis must never break the check it explains
        return []


def _code(model: nn.Module, first: str, second: str) -> str:
    """Whose code runs between the calls ``first`` and ``second`` (either may be empty: the
    start or the end of forward): the model's forward when both are its own layers, their
    container's when they are siblings inside one, else code between them, in words."""
    parents = {name.rpartition(".")[0] for name in (first, second) if name}
    if parents == {""}:
        return "forward's own code"
    if len(parents) == 1:
        parent = parents.pop()
        return f"the code of {parent}'s forward ({type(model.get_submodule(parent)).__qualname__})"
    return "the code"


def _lines(model: nn.Module, found: Localisation, *, ours: str, theirs: str, unchecked: str) -> list[str]:
    skipped = f" (not compared, {unchecked}: {', '.join(found.skipped)})" if found.skipped else ""
    if found.kind == "module":
        layer = type(model.get_submodule(found.module))
        return [
            f"where it starts: {found.module} ({layer.__module__}.{layer.__qualname__}) — its inputs {ours} "
            f"agree with {theirs}'s, its output does not{skipped}:",
            *(f"  {line}" for line in found.lines),
        ]
    if found.kind == "between":
        after = f"after {found.last_agreeing}, whose output agrees, " if found.last_agreeing else ""
        return [
            f"where it starts: in {_code(model, found.last_agreeing, found.module)} {after}before {found.module}, "
            f"whose inputs {ours} already differ{skipped}:",
            *(f"  {line}" for line in found.lines),
        ]
    if found.kind == "after" and not found.skipped:  # a call left out may hold the coupling
        return [
            f"where it starts: in {_code(model, found.last_agreeing, '')} after {found.last_agreeing}: the output "
            "of every module "
            f"{ours} agrees with {theirs}'s{skipped}"
        ]
    return []
