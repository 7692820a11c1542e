"""determinism: the same seed and input give bitwise the same outputs and path."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from dyncheck.compare import mismatch
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.tracing import leaves, missing_output

__all__ = ["Determinism"]


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
        if first.path != second.path:
            raise InvariantViolation(
                "Two calls with the same seed and input took different paths: "
                + (_REBUILT if rebuilt else "the model keeps state between calls or draws from a generator dyncheck "
                   "does not seed."),
                [
                    *rebuilt,
                    f"first call:  {describe(first.path)}",
                    f"second call: {describe(second.path)}",
                ],
                path=first.path,
            )
        first_leaves = list(leaves(first.output))
        second_leaves = dict(leaves(second.output))
        details: list[str] = []
        if [n for n, _ in first_leaves] != list(second_leaves):
            details.append(
                f"the outputs have different structure: {[n for n, _ in first_leaves]} != {list(second_leaves)}"
            )
        else:
            for name, value in first_leaves:
                lines = mismatch(second_leaves[name], value)
                if len(lines) == 1 and not isinstance(value, torch.Tensor):
                    details.append(f"{name}: {lines[0]} (second call, then first)")
                elif lines:
                    details.append(f"{name}:")
                    details.extend(f"  {line}" for line in lines)
        if not details and (missing := missing_output(first.output)):
            return context.nothing_to_compare(missing)
        context.compared()
        if details:
            kept = [] if rebuilt or lazy else _kept_state(context, example, second)
            raise InvariantViolation(
                "Two calls with the same seed and input gave different outputs: "
                + (_REBUILT if rebuilt else _KEPT if kept else "the model keeps state between calls or draws from a "
                   "generator dyncheck does not seed (python random, numpy's global generator and torch are seeded)."),
                [*rebuilt, *kept, *details, *([_KEPT_FIX] if kept else [])],
                path=first.path,
            )


_REBUILT = "the first call changed the model's own submodules, so the second ran a different model."
_KEPT = (
    "forward changes state the output depends on: a copy of the model taken after the first call gives "
    "the second call's outputs."
)
_KEPT_FIX = (
    "If forward is meant to update it (running statistics an observation normaliser uses in training), "
    "declare Spec(skip={'determinism': '...'}); otherwise advance it outside forward, or pass it in as an argument."
)


def _kept_state(context: Context, example: Example, second: Any) -> list[str]:
    """What one call changes in the model, when that explains a second call's outputs: a
    fresh copy, called once and copied, must give ``second``'s outputs (state kept on the
    model, not a generator out of dyncheck's reach), and the lines name what the call
    changed (a parameter, a buffer or a plain attribute, against a fresh copy never
    called). Empty when the copy does not reproduce ``second`` or nothing named changed."""
    from dyncheck.cloning import clone
    from dyncheck.invariants.state_roundtrip import _own_attributes, _same, _show

    untouched, called = context.fresh_model(), context.fresh_model()
    try:
        context.run(called, example, record=False, grad=False)
        again = context.run(clone(called), example, record=False, grad=False)
    except ModelError:
        return []
    if not _same_outputs(again.output, second.output):
        return []
    changed: list[str] = []
    before = {**dict(untouched.named_parameters()), **dict(untouched.named_buffers())}
    for kind, items in (("parameter", called.named_parameters()), ("buffer", called.named_buffers())):
        for name, tensor in items:
            if name in before and not torch.equal(before[name].detach(), tensor.detach()):
                changed.append(f"{name} (a {kind})")
    modules = dict(untouched.named_modules())
    for module_name, module in called.named_modules():
        prefix = f"{module_name}." if module_name else ""
        mine = _own_attributes(modules[module_name]) if module_name in modules else {}
        for name, value in _own_attributes(module).items():
            if name in mine and not isinstance(value, nn.Module) and not _same(mine[name], value):
                changed.append(f"{prefix}{name}: {_show(mine[name])} → {_show(value)}")
    if not changed:
        return []
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return [f"the first call changed {shown}"]


def _same_outputs(a: Any, b: Any) -> bool:
    """Whether two outputs have the same structure and bitwise the same values."""
    first, second = list(leaves(a)), dict(leaves(b))
    return [n for n, _ in first] == list(second) and all(not mismatch(second[n], v) for n, v in first)


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
