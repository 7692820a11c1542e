"""Where a sample starts to depend on its batch: the first module, in call order, whose
output for the sample differs between two runs while its inputs for it agree.

batch_invariance finds that a sample's output in its batch differs from its output alone
(or from its output in the permuted batch); this says where inside the model that begins,
the way refactor_agreement names the first module where a refactor departs from the old
model (:mod:`dyncheck.guard.localise`, whose walk this reuses). Both runs are recorded
call by call; each tensor of a batch run's call is cut to the sample along its batch axis
(the one axis of the batch's size where the other run has 1, every other axis equal) or,
for a permuted batch, reordered along its one axis of the batch's size. A call whose
tensors cannot be cut so (tokens flattened across the batch, experts' dispatched slots)
is left out of the comparison.

The walk compares at a loose tolerance (:data:`TOLERANCE`): float32 rounds a row's sums in
another order in a batch than alone, and a module named for that would send the user to
the wrong place. What the check found already lies past rounding; a coupling that makes
less than that difference inside the model is not located, and the report says nothing
rather than something wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dyncheck.guard.localise import Call, localise, record_calls
from dyncheck.guard.mapping import Correspondence

__all__ = ["TOLERANCE", "described", "first_coupled_module", "recorded"]

#: (rtol, atol) of the walk: far past float32 rounding, far below what a batch statistic,
#: a capacity limit or a random draw by position changes.
TOLERANCE = (1e-3, 1e-3)


def recorded(model: nn.Module, run: Callable[[nn.Module], Any]) -> tuple[list[Call], Any] | None:
    """Every submodule call of ``run(model)``, and its output; None when the run raises."""
    try:
        with record_calls(model) as calls:
            output = run(model)
    except Exception:  # the failure is reported already: without a location, not with another error
        return None
    return calls, output


def _alone_axis(whole: torch.Tensor, alone: torch.Tensor, size: int) -> int | None:
    """The one axis where ``whole`` has ``size`` and ``alone`` has 1, every other axis equal."""
    if whole.dim() != alone.dim():
        return None
    axes = [
        axis for axis in range(whole.dim())
        if whole.shape[axis] == size and alone.shape[axis] == 1
        and all(whole.shape[a] == alone.shape[a] for a in range(whole.dim()) if a != axis)
    ]
    return axes[0] if len(axes) == 1 else None


def _cut(
    calls: list[Call], partners: dict[tuple[str, int], Call], size: int, index: torch.Tensor, alone: bool
) -> list[Call]:
    """``calls`` with each tensor cut to ``index`` along its batch axis. ``alone``: the
    partner run is the sample alone (the axis is where it has 1); else it is the batch in
    another order (the axis is the one of the batch's size). A tensor with no such axis is
    kept when its partner has its shape (a mask, a table shared by the batch) and dropped
    otherwise, which leaves the call out of the walk (its tensors no longer pair)."""

    def cut(values: list[tuple[str, Any]], others: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        if len(values) != len(others):
            return values
        kept = []
        for (label, value), (_, other) in zip(values, others):
            if label.endswith(".data"):
                continue  # a PackedSequence's steps of every sample in one: no row is one sample's
            if alone:
                axis = _alone_axis(value, other, size)
            else:  # the same shape on both sides: the one axis of the batch's size, if any
                sized = [a for a in range(value.dim()) if value.shape[a] == size]
                axis = sized[0] if len(sized) == 1 else None
                if len(sized) > 1 or value.shape != other.shape:
                    continue  # which axis is the batch is not known: leave the call out
            if axis is not None:
                kept.append((label, value.index_select(axis, index)))
            elif value.shape == other.shape:
                kept.append((label, value))
        return kept

    out = []
    for call in calls:
        partner = partners.get((call.name, call.index))
        if partner is None:
            out.append(call)
            continue
        out.append(Call(call.name, call.index, cut(call.inputs, partner.inputs), cut(call.outputs, partner.outputs)))
    return out


def first_coupled_module(
    fresh: Callable[[], nn.Module],
    run: Callable[[nn.Module, dict[str, Any]], Any],
    batch: dict[str, Any],
    other: dict[str, Any],
    size: int,
    index: torch.Tensor,
    *,
    alone: bool,
    sample: str,
    apart: Callable[[Any, Any], bool],
) -> list[str]:
    """Report lines naming where the runs part, or none when that is not found.

    ``batch`` and ``other`` are the two calls' arguments: ``other`` is the sample ``index``
    alone (``alone=True``) or the batch reordered by ``index``; ``fresh()`` gives an
    eval-mode copy for each run, ``run(model, args)`` calls it. ``sample`` names the compared
    rows in the report ("sample 1", "the batch"). ``apart(batch_output, other_output)``: whether
    the compared output differs past :data:`TOLERANCE` between the two runs.

    Each run has a copy of its own. When the outputs of the two copies agree, what differs in
    the check (one copy called for the batch, then for the sample) is what the model keeps
    from one call to the next, and the lines say so."""
    model = fresh()
    runs = recorded(model, lambda m: run(m, batch)), recorded(fresh(), lambda m: run(m, other))
    if runs[0] is None or runs[1] is None:
        return []
    (whole, output), (theirs, their_output) = runs
    compared = "the sample alone" if alone else "the permuted batch"
    try:
        far = apart(output, their_output)
    except Exception:  # an output that cannot be cut as the check's was: say nothing
        return []
    if not far:
        return [
            f"where it starts: not in one call. On a copy of its own for each call, {sample} agrees with "
            f"{compared}; the check called one copy for the batch and then for {compared}: what differs is what "
            "the model keeps from one call to the next (a counter, statistics updated in eval mode, a state "
            "carried over)"
        ]
    partners = {(c.name, c.index): c for c in theirs}
    return described(
        model, theirs, _cut(whole, partners, size, index, alone), ours=f"for {sample}", theirs=compared,
        unchecked="their tensors having no axis of the batch",
    )


def described(
    model: nn.Module, reference: list[Call], calls: list[Call], *, ours: str, theirs: str, unchecked: str
) -> list[str]:
    """Report lines for where ``calls`` part from ``reference`` (two recorded runs of
    ``model``, or of copies of it), walked at :data:`TOLERANCE`; none when not found.
    ``ours`` says which values of ``calls`` are compared ("for sample 1", "on float32"),
    ``theirs`` names the reference ("the sample alone", "the float64 copy"), ``unchecked``
    why a call could not be compared."""
    names = [name for name, _ in model.named_modules()]
    identity = Correspondence({key: (key,) for key in model.state_dict()}, names, names)
    found = localise(reference, calls, identity, TOLERANCE, other=theirs)
    if found.kind == "module":
        layer = type(model.get_submodule(found.module))
        return [
            f"where it starts: {found.module} ({layer.__module__}.{layer.__qualname__}) — its inputs {ours} "
            f"agree with {theirs}'s, its output does not:",
            *(f"  {line}" for line in found.lines),
        ]
    skipped = f" (not compared, {unchecked}: {', '.join(found.skipped)})" if found.skipped else ""
    if found.kind == "between":
        after = f"after {found.last_agreeing}, whose output agrees, " if found.last_agreeing else ""
        return [
            f"where it starts: in forward's own code {after}before {found.module}, whose inputs {ours} "
            f"already differ{skipped}:",
            *(f"  {line}" for line in found.lines),
        ]
    if found.kind == "after":
        return [
            f"where it starts: in forward's own code after {found.last_agreeing}: the output of every module "
            f"{ours} agrees with {theirs}'s{skipped}"
        ]
    return []
