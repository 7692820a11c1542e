"""determinism: the same seed and input give bitwise the same outputs and path."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from dyncheck.compare import mismatch
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.infer.source import source_quietly
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants._where import described, quiet, recorded, reported
from dyncheck.tracing import leaves, missing_output

__all__ = ["Determinism", "note_path_only", "reads_training", "stateless_detour"]


class Determinism(Invariant):
    name = "determinism"
    summary = (
        "the same seed and input give bitwise identical outputs and the same path, "
        "also when the model is called twice in a row"
    )

    def check(self, context: Context, example: Example) -> None:
        model = context.fresh_model()
        lazy = any(isinstance(m, LazyModuleMixin) for m in model.modules())
        if lazy:
            # Lazy layers draw their initial weights on the first call; warm them up so
            # both compared calls see the same weights and the same RNG stream.
            context.run(model, example)
        before = dict(model.named_modules())
        first = context.run(model, example)
        rebuilt = _rebuilt(before, dict(model.named_modules()))
        second = context.run(model, example)
        describe = context.describe_path
        details = _differences(first.output, second.output)
        detour = first.path != second.path and not rebuilt and not details
        if detour and stateless_detour(model, first.path, second.path):
            note_path_only(context, first, second, "two calls")
        elif first.path != second.path:
            raise InvariantViolation(
                "Two calls with the same seed and input took different paths: "
                + (_REBUILT if rebuilt else "the model keeps state between calls or draws from a generator dyncheck "
                   "does not seed."),
                [
                    *rebuilt,
                    f"first call:  {describe(first.path)}",
                    f"second call: {describe(second.path)}",
                    *details,
                ],
                path=first.path,
            )
        if not details and (missing := missing_output(first.output)):
            return context.nothing_to_compare(missing)
        context.compared()
        allowed: list[str] = []
        if details and model.training and (updated := _updated_buffers(context, example, lazy)) is not None:
            # Buffers a train-mode call updates in place and reads (torch's spectral_norm
            # advances its power iteration, its u and v, an EMA codebook, an observation
            # normaliser's running mean): training statistics, by design. Compared again with
            # them put back before the second call, so that any other state still shows; in
            # eval mode they must not move (purity) and two calls must agree (below).
            names, details = updated
            allowed = names
            if not details:
                _note_put_back(context, model, names)
        if not details and model.training and reads_training(model):
            details = _eval_differences(context, example, lazy)
            if details:
                raise InvariantViolation(
                    "Two calls in eval mode with the same seed and input gave different outputs (in train mode they "
                    "agree): forward keeps state between calls in eval mode only, a cache kept on the module "
                    "(keys and values of an earlier call, a memo of encodings), statistics it updates in eval mode "
                    "too, or a counter.",
                    [*details, "Compute it in each call, or pass the cache in and return it (past_key_values)."],
                    path=first.path,
                )
        if details:
            kept = [] if rebuilt or lazy else _kept_state(context, example, second, allowed)
            # (where two calls depart, re-run without the buffers put back, could be only theirs)
            where = [] if rebuilt or kept or allowed or not reported() else _where(context, example, lazy)
            raise InvariantViolation(
                "Two calls with the same seed and input gave different outputs: "
                + (_REBUILT if rebuilt else _KEPT if kept else "the model keeps state between calls or draws from a "
                   "generator dyncheck does not seed (python random, numpy's global generator and torch are seeded)."),
                [*rebuilt, *kept, *details, *([_KEPT_FIX] if kept else []), *where],
                path=first.path,
            )


#: Whether a module class's own source reads ``training`` (by class; torch's own classes
#: are not read: their train and eval behaviours are torch's).
_READS_TRAINING: dict[type, bool] = {}


def reads_training(model: nn.Module) -> bool:
    """Whether any module of ``model`` whose class is not torch's reads ``self.training`` in
    its own code (``if not self.training: self.cache = ...``): its eval mode may keep state
    the train-mode calls never show. Unreadable source counts as not reading it."""
    for module in model.modules():
        cls = type(module)
        if cls not in _READS_TRAINING:
            reads = False
            if not cls.__module__.startswith("torch."):
                try:
                    reads = ".training" in source_quietly(cls)
                except (OSError, TypeError, SyntaxError):
                    reads = False
            _READS_TRAINING[cls] = reads
        if _READS_TRAINING[cls]:
            return True
    return False


def _eval_differences(context: Context, example: Example, lazy: bool) -> list[str]:
    """Two calls of a fresh copy in eval mode, compared as the train-mode calls are: the
    paths (when they differ) and the outputs' differences; empty when they agree."""
    model = context.fresh_model().eval()
    if lazy:
        context.run(model, example)
    first = context.run(model, example)
    second = context.run(model, example)
    if (
        first.path != second.path and not _differences(first.output, second.output)
        and stateless_detour(model, first.path, second.path)
    ):
        note_path_only(context, first, second, "two calls in eval mode")
        return []
    return _compared(context, first, second)


def stateless_detour(model: nn.Module, first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """Whether two calls' paths differ only in modules with no parameters and no buffers: a
    Dropout at 0, an activation, run or not as state decides (SpeechBrain's LiGRU runs its
    Dropout only when the batch size changes, to redraw a pool of masks). Where the outputs
    agree bitwise too, that is a note, not a failure; a module with weights that ran on one
    call only is a difference however the outputs agree: a block behind a gate at 0
    (ReZero, a LoRA's B, adaLN-Zero) adds nothing until trained."""
    counts = Counter(first)
    counts.subtract(Counter(second))
    modules = dict(model.named_modules())
    for name, count in counts.items():
        module = modules.get(name) if count else None
        if count and (module is None or next(module.parameters(), None) is not None
                      or next(module.buffers(), None) is not None):
            return False
    return True


def note_path_only(
    context: Context, first: Any, second: Any, calls: str, names: tuple[str, str] = ("first call", "second")
) -> None:
    """Count an example of bitwise the same outputs over a :func:`stateless_detour`, in the
    summary's notes."""
    describe = context.describe_path
    paths = f"{names[0]}: {describe(first.path)}; {names[1]}: {describe(second.path)}"
    context.note("path_only", lambda count: (
        f"on {count} example{'s' if count != 1 else ''} {calls} took different paths and gave bitwise the same "
        f"outputs, the modules one ran and the other did not without weights or buffers ({paths})"
    ))


def _compared(context: Context, first: Any, second: Any) -> list[str]:
    """Two calls' traces compared: their paths, where they differ, then their outputs'
    differences; empty when they agree."""
    details = _differences(first.output, second.output)
    if first.path != second.path:
        describe = context.describe_path
        details = [f"first call:  {describe(first.path)}", f"second call: {describe(second.path)}", *details]
    return details


def _note_put_back(context: Context, model: nn.Module, names: list[str]) -> None:
    """Count an example compared with the buffers ``names`` put back, in the summary's
    notes: as torch's spectral_norm's power iteration where they are all its vectors."""
    norms = _power_iterations(model)
    vectors = {id(vector) for found in norms.values() for vector in found}
    if set(names) <= {name for name, buffer in model.named_buffers() if id(buffer) in vectors}:
        shown = list(norms)
        context.note("spectral_norm", lambda count: (
            f"compared with the power iteration put back on {count} example{'s' if count != 1 else ''}: "
            f"torch's spectral_norm ({', '.join(shown[:3])}{' …' if len(shown) > 3 else ''}) advances it on "
            "every call in train mode"
        ))
        return
    context.note("train_buffers", lambda count: (
        f"compared with buffers put back on {count} example{'s' if count != 1 else ''}: forward updates "
        f"{', '.join(names[:3])}{' …' if len(names) > 3 else ''} in train mode (training statistics, "
        "as BatchNorm's), and the next call reads them"
    ))


def _updated_buffers(context: Context, example: Example, lazy: bool) -> tuple[list[str], list[str]] | None:
    """(the buffers one train-mode call of a fresh copy updates, each kept at its shape; the
    two calls' differences with those put back before the second), or None where the call
    updates none, or adds, drops or resizes one (state kept between calls, not statistics)."""
    model = context.fresh_model()
    if lazy:
        context.run(model, example, record=False)
    before = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    first = context.run(model, example, record=False)
    after = dict(model.named_buffers())
    if after.keys() != before.keys() or any(after[n].shape != before[n].shape for n in before):
        return None
    names = [n for n in before if not torch.equal(after[n], before[n])]
    if not names:
        return None
    for name in names:
        _put(model, name, before[name])
    return names, _compared(context, first, context.run(model, example, record=False))


def _power_iterations(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """The modules of ``model`` under torch's spectral normalisation (the parametrization,
    ``torch.nn.utils.parametrizations.spectral_norm``, or the older hook,
    ``torch.nn.utils.spectral_norm``), by name, each with the buffers it keeps its power
    iteration in: ``_u`` and ``_v`` of the parametrization, ``<weight>_u`` and ``<weight>_v``
    of the hook."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    try:
        from torch.nn.utils.parametrizations import _SpectralNorm
    except ImportError:  # pragma: no cover - a torch without the parametrization
        _SpectralNorm = ()
    found: dict[str, list[torch.Tensor]] = {}
    for name, module in model.named_modules():
        if isinstance(module, _SpectralNorm):
            owner = name.rsplit(".parametrizations.", 1)[0] if ".parametrizations." in name else name or "the model"
            found.setdefault(owner, []).extend(
                b for n, b in module.named_buffers(recurse=False) if n in ("_u", "_v")
            )
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm):
                found.setdefault(name or "the model", []).extend(
                    [getattr(module, f"{hook.name}_u"), getattr(module, f"{hook.name}_v")]
                )
    return found


_REBUILT = "the first call changed the model's own submodules, so the second ran a different model."
_KEPT = (
    "forward changes state the output depends on: fresh copies given the values the first call left give "
    "the second call's outputs."
)
_KEPT_FIX = (
    "If forward is meant to update it in training (running statistics), keep it in a buffer updated only if "
    "self.training (determinism compares with buffers put back); otherwise advance it outside forward, or pass it "
    "in as an argument."
)


@quiet
def _where(context: Context, example: Example, lazy: bool) -> list[str]:
    """Where the second call departs from the first (:mod:`~dyncheck.invariants._where`): a
    fresh copy called twice again, module by module, as the check called it, compared
    bitwise as the check compares. Nothing when the two calls agree this time."""
    model = context.fresh_model()
    if lazy:
        context.run(model, example, record=False)
    first = recorded(model, lambda m: context.run(m, example, record=False))
    second = recorded(model, lambda m: context.run(m, example, record=False))
    if first is None or second is None or not _differences(first.output.output, second.output.output):
        return []
    return described(
        model, first, second, ours="in the second call", theirs="the first call",
        unchecked="their tensors do not pair", tolerance=(0.0, 0.0),
    )


def _kept_state(context: Context, example: Example, second: Any, allowed: list[str] = ()) -> list[str]:
    """The state one call changes that explains a second call's outputs, named: what differs
    between a fresh copy called once and one never called (parameters, buffers, plain
    attributes holding numbers, strings or tensors), when two fresh copies given those
    values both give ``second``'s outputs (the state is the model's, not a generator or a
    global out of dyncheck's reach), and only what matters: each named value, put back as it
    was, changes the outputs. Empty when that cannot be shown (the values do not explain the
    outputs, more than :data:`_MOST_CHANGED` changed, or a copy cannot take them); the
    finding then stands with both suspects named. Buffers in ``allowed`` (training
    statistics the check put back) are not named. Runs only on a failure."""
    try:
        untouched, called = context.fresh_model(), context.fresh_model()
        context.run(called, example, record=False)
        before = _plain_state(untouched)
        changed = _changed(before, called)
        if not changed or len(changed) > _MOST_CHANGED:
            return []

        def gives_second(values: dict[str, Any]) -> bool:
            model = context.fresh_model()
            for name, value in values.items():
                _put(model, name, value)
            return not _differences(context.run(model, example, record=False).output, second.output)

        if not (gives_second(changed) and gives_second(changed)):
            return []
        needed = [name for name in changed if not gives_second({k: v for k, v in changed.items() if k != name})]
    except Exception:  # a copy that cannot take the values, a model that raises: nothing to name
        return []
    needed = [name for name in needed if name not in allowed]  # training statistics, put back above
    if not needed:
        return []
    from dyncheck.invariants.state_roundtrip import _show

    kinds = {
        name: kind
        for kind, items in (("parameter", untouched.named_parameters()), ("buffer", untouched.named_buffers()))
        for name, _ in items
    }
    def resized(name: str) -> str:
        old, new = before.get(name), changed[name]
        if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old.shape != new.shape:
            return f", resized from {list(old.shape)} to {list(new.shape)}"
        return ""

    shown = [
        f"{name} (a {kinds[name]}{resized(name)})" if name in kinds
        else f"{name}: {_show(before[name]) if name in before else 'missing'} → {_show(changed[name])}"
        for name in needed
    ]
    return [f"the first call changed {', '.join(shown)}"]


#: More changed values than this are not sorted into those that matter (a call to each).
_MOST_CHANGED = 8


def _plain_state(model: nn.Module) -> dict[str, Any]:
    """Every parameter and buffer of ``model`` and each submodule's plain attributes that
    hold numbers, strings, None or tensors (or lists, tuples and dicts of them), by name
    from the root."""
    from dyncheck.invariants.state_roundtrip import _own_attributes

    state: dict[str, Any] = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, value in _own_attributes(module).items():
            if _simple(value) and name != "training":
                state[f"{prefix}{name}"] = value
    return state


def _simple(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(_simple, value))
    if isinstance(value, dict):
        return all(map(_simple, value.values()))
    return False


def _changed(before: dict[str, Any], called: nn.Module) -> dict[str, Any]:
    """Name -> value after the call, for each value of :func:`_plain_state` (``before``, a
    copy never called) the call changed or made (``if not hasattr(self, "mem")``; a NaN
    where it was NaN is unchanged)."""
    from dyncheck.invariants.state_roundtrip import _same

    after = _plain_state(called)
    return {
        name: copy.deepcopy(value.detach() if isinstance(value, torch.Tensor) else value)
        for name, value in after.items()
        if name not in before or not _same(before[name], value)
    }


def _put(model: nn.Module, name: str, value: Any) -> None:
    """Set ``model``'s value ``name`` (a parameter or buffer copied into, else an attribute
    set) to a copy of ``value``."""
    owner, _, attribute = name.rpartition(".")
    module = model.get_submodule(owner)
    current = getattr(module, attribute, None)  # None: an attribute the call made
    if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor) and attribute in {
        *module._parameters, *module._buffers
    }:
        if current.shape != value.shape:
            # reassigned in forward at another size (a capsule layer's routing logits kept
            # between calls): the copy takes the new tensor as the call left it
            if attribute in module._buffers:
                module._buffers[attribute] = value.detach().clone()
            else:
                module._parameters[attribute] = nn.Parameter(value.detach().clone(), current.requires_grad)
            return
        with torch.no_grad():
            current.copy_(value)
        return
    setattr(module, attribute, copy.deepcopy(value))


def _differences(first: Any, second: Any) -> list[str]:
    """How two calls' outputs differ (structure, or each leaf's values, bitwise), worded for
    the report; empty when they are the same."""
    first_leaves, second_leaves = list(leaves(first)), dict(leaves(second))
    if [n for n, _ in first_leaves] != list(second_leaves):
        return [f"the outputs have different structure: {[n for n, _ in first_leaves]} != {list(second_leaves)}"]
    details: list[str] = []
    for name, value in first_leaves:
        lines = mismatch(second_leaves[name], value)
        if len(lines) == 1 and not isinstance(value, torch.Tensor):
            details.append(f"{name}: {lines[0]} (second call, then first)")
        elif lines:
            details.append(f"{name}:")
            details.extend(f"  {line}" for line in lines)
    return details


def _rebuilt(before: dict[str, nn.Module], after: dict[str, nn.Module]) -> list[str]:
    """What a call did to the model's submodules (``named_modules()`` before and after),
    one line per outermost change: added, removed, or replaced by another module (BigBird
    swaps its attention on a short sequence; a layer made in forward on its first call)."""
    changes: dict[str, str] = {}
    for name in sorted(before.keys() | after.keys(), key=lambda n: (n.count("."), n)):
        if any(name.startswith(f"{outer}.") for outer in changes):
            continue  # inside a change already named
        old, new = before.get(name), after.get(name)
        if old is new:
            continue
        shown = name or "the model"
        if old is None:
            changes[name] = f"forward added {shown} ({type(new).__name__})"
        elif new is None:
            changes[name] = f"forward removed {shown} ({type(old).__name__})"
        else:
            changes[name] = f"forward replaced {shown}: {type(old).__name__} → {type(new).__name__}"
    lines = list(changes.values())
    return lines[:3] + ([f"... and {len(lines) - 3} more"] if len(lines) > 3 else [])
