"""Optional forward arguments that switch parts of a model on.

``forward(self, hidden, encoder_hidden_states=None)`` runs its cross-attention only when
the caller hands in encoder states. Left at its default, every example leaves those
modules dead; the coverage report then names the argument and the Spec line that gives
it values. The argument is linked to the modules it reaches by the source flow, followed
into submodules' forwards; a strategy for it comes from the first layer there.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from dyncheck.examples import strategy_arguments
from dyncheck.infer.flow import _flow, _is_torch, _resolve_module
from dyncheck.infer.layers import _input_for_module
from dyncheck.infer.source import _forward_tree

__all__ = ["OptionalInput", "optional_inputs", "optional_inputs_hint"]

#: How many submodules deep an optional argument is followed.
_DEPTH = 6


@dataclass(frozen=True)
class OptionalInput:
    """An optional forward argument the run left at its default."""

    name: str
    default: Any
    #: the modules that never ran which it enters (outermost first; empty: not known)
    reaches: tuple[str, ...]
    #: a strategy for it, or None when the layers it reaches do not say
    strategy: Any = None


def optional_inputs(model: nn.Module, given: Mapping[str, Any], ran: Iterable[str]) -> list[OptionalInput]:
    """The forward arguments of ``model`` that default to None, are not in ``given`` and
    are handed to a module that never ran (not in ``ran``); when none is seen to be,
    every such argument, with ``reaches`` empty (the link may lie in code the flow cannot
    read)."""
    ran = set(ran)
    never = {name for name, _ in model.named_modules() if name and name not in ran}
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    left = [
        p for p in parameters
        if p.default is None and p.name not in given and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    tree = _forward_tree(type(model))
    linked: list[OptionalInput] = []
    for parameter in left:
        consumers = _deep_consumers(model, model, tree, parameter.name, "", 0) if tree is not None else []
        entered = [c for c, _ in consumers if c in never]
        reaches = tuple(dict.fromkeys(
            c for c in entered if not any(c.startswith(outer + ".") for outer in entered)
        ))
        if reaches:
            strategy = _strategy(model, consumers, reaches, sequences=_takes_sequences(given))
            linked.append(OptionalInput(parameter.name, None, reaches, strategy))
    if linked:
        return linked
    return [OptionalInput(p.name, None, ()) for p in left]


def _deep_consumers(
    model: nn.Module, module: nn.Module, tree: Any, name: str, prefix: str, depth: int
) -> list[tuple[str, int | str]]:
    """(name in ``model``, entry) of every module the argument ``name`` of ``module``'s
    forward reaches as itself (not through values computed from it: everything after an
    offset computed from a cache would count), through user-defined submodules' forwards."""
    flow = _flow(tree, name, module, strict=True)
    found: list[tuple[str, int | str]] = []
    for expression in flow.consumers:
        full = ".".join(p for p in (prefix, expression) if p)
        entry = flow.entries.get(expression, 0)
        found.append((full, entry))
        inner = _resolve_module(module, expression)
        if inner is None or inner is module or depth >= _DEPTH or _is_torch(type(inner)):
            continue
        inner_tree = _forward_tree(type(inner))
        try:
            names = list(inspect.signature(inner.forward).parameters)
        except (TypeError, ValueError):
            continue
        parameter = names[entry] if isinstance(entry, int) and entry < len(names) else entry
        if inner_tree is not None and isinstance(parameter, str) and parameter in names:
            found += _deep_consumers(model, inner, inner_tree, parameter, full, depth + 1)
    return found


def _takes_sequences(given: Mapping[str, Any]) -> bool:
    """Whether some input strategy has a ``"time"`` axis."""
    return any("time" in tuple(strategy_arguments(s).get("shape", ())) for s in given.values())


def _strategy(
    model: nn.Module, consumers: list[tuple[str, int | str]], reaches: tuple[str, ...], *, sequences: bool
) -> Any:
    """A strategy from the first layer (a module with no children) the argument enters
    among those it reaches.
    When the model takes sequences, a feature-last layer's input (a Linear's) is one too,
    with a length ``"source"`` of its own, as encoder states have."""
    for name, entry in consumers:
        if not any(name == d or name.startswith(d + ".") for d in reaches):
            continue
        module = _resolve_module(model, name)
        if module is None or any(True for _ in module.children()):
            continue  # containers and blocks were followed into: their layers say more
        found = _input_for_module(module, depth=0, entry=entry)
        if found is None:
            continue
        shape = found.shape
        if sequences and found.sequence == "features-last":
            shape = (shape[0], "source", *shape[1:])
        return found.make(shape)
    return None


def optional_inputs_hint(model: nn.Module, spec: Any, ran: Iterable[str]) -> list[str]:
    """Lines for a report of dead modules: the optional forward arguments left at their
    default None that may switch them on, and the Spec that gives them values."""
    found = optional_inputs(model, spec.inputs, ran)
    if not found:
        return []
    name = getattr(spec.model, "__qualname__", type(spec.model).__qualname__)

    def entry(o: OptionalInput) -> str:
        if o.strategy is not None:
            shown = repr(o.strategy)
        elif "mask" in o.name.lower():  # a 0/1 mask over the tokens (Longformer's global_attention_mask)
            shown = "tensors(shape=('batch', 'time'), dtype=torch.long, max_value=1)"
        else:
            shown = "tensors(shape=<its shape>)"
        return f"{o.name!r}: dyncheck.strategies.{shown}"

    if all(o.reaches for o in found):
        # those a strategy was found for first; the Spec line gives only them, when any
        found.sort(key=lambda o: o.strategy is None)
        given = [o for o in found if o.strategy is not None] or found
        one = len(found) == 1
        names = ", ".join(o.name for o in found)
        reaches = ", ".join(dict.fromkeys(r for o in found for r in o.reaches))
        whom = "it" if one else ", ".join(o.name for o in given) if len(given) < len(found) else "them"
        return [
            f"{names} {'was' if one else 'were'} left at {'its' if one else 'their'} default None; "
            f"{'it is' if one else 'they are'} handed to {reaches}, which never ran",
            f"give {whom} values: dyncheck.Spec({name}, inputs={{{', '.join(map(entry, given))}}})",
        ]
    shown = ", ".join(o.name for o in found[:4]) + (" …" if len(found) > 4 else "")
    if len(found) == 1:
        said = f"forward's optional argument {shown} was left at its default None; if it switches"
    else:
        said = f"forward's optional arguments {shown} were left at their default None; if one switches"
    return [
        f"{said} the dead modules on, give it values, e.g. dyncheck.Spec({name}, inputs={{{entry(found[0])}}})"
    ]
