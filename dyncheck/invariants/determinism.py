"""determinism: the same seed and input give bitwise the same outputs and path."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from dyncheck.compare import mismatch
from dyncheck.errors import InvariantViolation
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
        if any(isinstance(m, LazyModuleMixin) for m in model.modules()):
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
            raise InvariantViolation(
                "Two calls with the same seed and input gave different outputs: "
                + (_REBUILT if rebuilt else "the model keeps state between calls or draws from a generator dyncheck "
                   "does not seed (python random, numpy's global generator and torch are seeded)."),
                [*rebuilt, *details],
                path=first.path,
            )


_REBUILT = "the first call changed the model's own submodules, so the second ran a different model."


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
