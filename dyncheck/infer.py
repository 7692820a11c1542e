"""Inferring constructor arguments and forward inputs when a model has no Spec.

Constructor: defaults are kept; required size-like arguments (``input_size``,
``hidden_dim``, ``num_classes`` ...) get small, distinct sizes so that shape mix-ups show.

Forward: each required argument is inferred from, in order,
1. its name: ``lengths``-like names get :func:`~dyncheck.strategies.sequence_lengths`
   over the ``"time"`` dimension;
2. the values it can take: an ``Enum`` or ``Literal[...]`` annotation, or the string
   constants it is compared with (``mode == "a"``), give ``controls(choices=...)``;
3. counts: an argument used as ``range(n)`` or ``self.blocks[:n]`` gets small ints;
4. its name or annotation: ``control``/``gate``-like names, ``bool``, ``int``, ``float``
   get :func:`~dyncheck.strategies.controls` with the thresholds it is compared against
   in ``forward``'s source (the range always holds every threshold);
5. the first layer that consumes it in ``forward`` (followed through assignments):
   ``nn.Linear``, ``nn.Conv1d/2d``, ``nn.RNN/LSTM/GRU`` (``batch_first`` respected),
   ``nn.Embedding`` (integer tokens), norms, containers and custom submodules; when
   ``forward`` also takes lengths, a Linear/LayerNorm/BatchNorm1d input is a padded
   sequence and gets a ``"time"`` axis;
6. a count-like name (``n_steps``, ``depth``) for an argument no layer consumes.

Anything it cannot decide raises :class:`Uninferable` with the Spec line to write.
"""

from __future__ import annotations

import ast
import enum
import inspect
import math
import re
import sys
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from hypothesis import strategies as st
from torch import nn

from dyncheck import strategies as dst

__all__ = [
    "Inferred",
    "Uninferable",
    "check_forward_arguments",
    "infer_dims",
    "infer_init",
    "infer_input",
]

#: Sizes given, in order, to required size-like constructor arguments: distinct, so a
#: weight tied or transposed across layers of different shapes fails loudly.
INFERRED_SIZES = (8, 6, 4, 5, 7, 3)

_COUNT_NAME = re.compile(r"(layers|depth|heads|blocks|steps|stacks|experts)$|^num_?(layers|heads|blocks)")
_SIZE_NAME = re.compile(
    r"(size|dim|dims|features|channels|units|width|classes|vocab|tokens|embeddings|hidden|length|len)$"
    r"|^(n|num|in|out|d|hidden|input|output|embed|vocab)_|^(d_model|nhead|ninp|nhid|ntoken)$"
)
_CONTROL_NAME = re.compile(r"^(control|ctrl|gate|gating|switch|flag|mode|cond|condition|signal|choice|route|routing)(_\w+)?$|control")
_LENGTHS_NAME = re.compile(r"^(seq_?)?(lengths?|lens)$|_(lengths|lens)$")
#: A forward argument with such a name, that no layer consumes, is a small count.
_FORWARD_COUNT_NAME = re.compile(
    _COUNT_NAME.pattern + r"|^(n|num)_\w+$|(iters|iterations|repeats|rounds|hops)$"
)
#: Counts are drawn from this range, widened to hold the thresholds they are compared with.
COUNT_RANGE = (0, 4)


class Uninferable(Exception):
    """Inference could not decide; the message names the argument and the Spec to write."""


@dataclass(frozen=True)
class Inferred:
    """An inferred value and the reason, shown by ``--dyncheck-explain``."""

    value: Any
    why: str
    dims: dict[str, tuple[int, int]] | None = None


# --------------------------------------------------------------------------- constructor


def infer_init(factory: Callable[..., Any], given: dict[str, Any]) -> dict[str, Inferred]:
    """Values for the required constructor arguments of ``factory`` not in ``given``."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    sizes = iter(INFERRED_SIZES * 4)
    out: dict[str, Inferred] = {}
    for name, parameter in signature.parameters.items():
        if name in given or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = _annotation(parameter.annotation, factory)
        if annotation is bool:
            out[name] = Inferred(False, "bool argument")
        elif annotation is float or name in ("dropout", "p", "rate", "eps"):
            out[name] = Inferred(0.1 if "drop" in name or name in ("p", "rate") else 1e-5, "float argument")
        elif _COUNT_NAME.search(name):
            out[name] = Inferred(2, "a count")
        elif annotation is int or _SIZE_NAME.search(name):
            out[name] = Inferred(next(sizes), "a size")
        else:
            shown = ", ".join(f"{n}=..." for n in signature.parameters if n not in given)
            raise Uninferable(
                f"cannot infer constructor argument {name!r} of {_qualname(factory)}({shown}); "
                f"give it with dyncheck.Spec({_qualname(factory)}, init={{{name!r}: ...}})"
            )
    return out


def _qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", type(obj).__name__)


def _annotation(annotation: Any, owner: Any) -> Any:
    """The annotation as an object; string annotations (PEP 563) are evaluated in the
    owner's module, as ``typing.get_type_hints`` does, and kept as text when that fails."""
    if not isinstance(annotation, str):
        return annotation
    simple = {"int": int, "float": float, "bool": bool, "str": str, "Tensor": torch.Tensor,
              "torch.Tensor": torch.Tensor}
    if annotation.strip() in simple:
        return simple[annotation.strip()]
    namespace = getattr(owner, "__globals__", None)
    if namespace is None:
        module = sys.modules.get(getattr(owner, "__module__", "") or "")
        namespace = vars(module) if module is not None else {}
    try:
        return eval(annotation, dict(namespace))  # noqa: S307 - what get_type_hints does
    except Exception:
        return annotation


# --------------------------------------------------------------------------- forward


def check_forward_arguments(model: nn.Module, parameters: dict[str, inspect.Parameter]) -> None:
    """Raise :class:`Uninferable` when ``forward`` takes only ``*args``/``**kwargs``:
    dyncheck passes every input by name, so there is nothing to infer or to pass."""
    named = [p for p in parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    variadic = [p for p in parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if named or not variadic:
        return
    shown = ", ".join(("*" if p.kind is p.VAR_POSITIONAL else "**") + p.name for p in variadic)
    raise Uninferable(
        f"{type(model).__qualname__}.forward takes {shown}; dyncheck passes arguments by name: "
        "write a forward with named arguments, or wrap the model (a factory returning a wrapper module)"
    )


def infer_dims(model: nn.Module, given: dict[str, Any]) -> dict[str, Inferred]:
    """Named dimension ranges the model needs narrowed from the defaults, with why."""
    out: dict[str, Inferred] = {}
    if "batch" not in given:
        for module_name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                # Models run in train mode, where batch norm of a single sample raises
                # "Expected more than 1 value per channel when training".
                high = max(2, dst.DEFAULT_DIMS["batch"][1])
                out["batch"] = Inferred(
                    (2, high),
                    f"{module_name} is {type(module).__name__}, which in train mode fails on a "
                    "batch of 1 ('Expected more than 1 value per channel when training')",
                )
                break
    return out


def infer_input(
    model: nn.Module,
    name: str,
    parameter: inspect.Parameter,
    extra_thresholds: tuple[float, ...] = (),
    lengths: str | None = None,
) -> Inferred:
    """A strategy for the forward argument ``name`` of ``model``; ``extra_thresholds`` are
    values it is compared with elsewhere (the spec's branch predicates); ``lengths`` is
    the argument declared to hold the lengths (``Spec(lengths=...)``), else they are
    recognised by name."""
    forward = type(model).forward
    annotation = _annotation(parameter.annotation, forward)
    source_tree = _forward_tree(type(model))
    qualname = type(model).__qualname__
    if name == lengths:
        return Inferred(
            dst.sequence_lengths(batch_size="batch", max_length="time"),
            "Spec(lengths=...) says sequence lengths: one per sample, each between 1 and the padded length 'time'",
        )
    if lengths is None and _LENGTHS_NAME.search(name):
        return Inferred(
            dst.sequence_lengths(batch_size="batch", max_length="time"),
            "its name says sequence lengths: one per sample, each between 1 and the padded length 'time'",
        )
    thresholds = _thresholds(source_tree, name)
    thresholds += [t for t in extra_thresholds if t not in thresholds]
    where = f" compared with {', '.join(map(repr, thresholds))} in forward" if thresholds else ""

    # Choices: checked before the control-like names, as "mode" is one of those and a
    # mode compared with strings is not a float.
    choices = _annotated_choices(annotation)
    if choices is not None:
        return Inferred(dst.controls(choices=choices[0]), choices[1])
    strings = _string_constants(source_tree, name)
    if strings:
        said = "annotated str, compared" if annotation is str else "a string compared"
        return Inferred(
            dst.controls(choices=strings),
            f"{said} with {', '.join(map(repr, strings))} in forward",
        )
    if annotation is str:
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {qualname} (annotated str, but forward "
            f"compares it with no string constant); write dyncheck.Spec({qualname}, "
            f"inputs={{{name!r}: dyncheck.strategies.controls(choices=[...])}})"
        )

    iterated = _iterated_as_count(source_tree, name)
    if iterated is not None and annotation not in (bool, float):
        compared = f" and compared with {', '.join(map(repr, thresholds))}" if thresholds else ""
        return _count(f"a count: used as {iterated}{compared} in forward", thresholds)

    if _CONTROL_NAME.search(name) or annotation in (bool, float) or annotation is int:
        as_tensor = annotation not in (bool, int, float)
        if annotation is bool:
            return Inferred(dst.controls(dtype=bool), f"annotated bool")
        if annotation is int:
            hi = int(max([*thresholds, 2])) + 1
            lo = int(min([*thresholds, 0])) - (1 if thresholds and min(thresholds) <= 0 else 0)
            return Inferred(
                dst.controls(dtype=int, min_value=lo, max_value=hi, thresholds=tuple(thresholds)),
                f"annotated int{where}",
            )
        lo, hi = 0.0, 1.0
        if thresholds and not all(0.0 <= t <= 1.0 for t in thresholds):
            lo, hi = float(min(thresholds)) - 1.0, float(max(thresholds)) + 1.0
        kwargs: dict[str, Any] = {}
        if (lo, hi) != (0.0, 1.0):
            kwargs.update(min_value=lo, max_value=hi)
        if thresholds:
            kwargs["thresholds"] = tuple(float(t) for t in thresholds)
        if as_tensor:
            kwargs["as_tensor"] = True
        form = "one-element tensors, like torch.rand(1)" if as_tensor else "floats"
        return Inferred(
            dst.controls(**kwargs),
            f"a control value{where}; drawn as {form}",
        )
    flow = _flow(source_tree, name) if source_tree is not None else None
    consumers = flow.consumers if flow is not None else []
    for index, expression in enumerate(consumers):
        module = _resolve_module(model, expression)
        if module is None:
            continue
        found = _input_for_module(module, depth=0, entry=flow.entries.get(expression, 0))
        if found is not None:
            why = f"first consumed by {expression} ({found.note})"
            shape = found.shape
            beside = _lengths_argument(model, name, lengths)
            if beside is not None and found.sequence is not None:
                shape, layout = _padded(model, found, flow, consumers[index + 1:])
                why += f"; a padded sequence, as forward takes {beside}{layout}"
            swapped = _swap(shape, flow.transposed.get(expression))
            if swapped is not None:
                shape = swapped
                why += f"; it reaches {expression} through transpose{flow.transposed[expression]}"
            return Inferred(found.make(shape), why, found.dims)
    if annotation is inspect.Parameter.empty and _FORWARD_COUNT_NAME.search(name):
        return _count(f"a count, by its name{where and ';' + where}", thresholds)
    hint = "tensors(shape=(\"batch\", 16))"
    reason = (
        "no layer in forward consumes it"
        if not consumers
        else f"its first consumers ({', '.join(consumers[:3])}) give no input shape"
    )
    raise Uninferable(
        f"cannot infer forward argument {name!r} of {qualname} ({reason}); "
        f"write dyncheck.Spec({qualname}, inputs={{{name!r}: "
        f"dyncheck.strategies.{hint}}})"
    )


def _count(why: str, thresholds: list[float]) -> Inferred:
    """Small ints for a count, widened so each threshold and a value past it are drawn."""
    lo, hi = COUNT_RANGE
    if thresholds and min(thresholds) < lo:
        lo = math.floor(min(thresholds)) - 1
    if thresholds and max(thresholds) >= hi:
        hi = math.floor(max(thresholds)) + 1
    return Inferred(
        dst.controls(dtype=int, min_value=lo, max_value=hi, thresholds=tuple(thresholds)),
        f"{why}; drawn as ints from {lo} to {hi}",
    )


def _annotated_choices(annotation: Any) -> tuple[Any, str] | None:
    """(choices, why) for an ``Enum`` subclass or ``Literal[...]`` annotation."""
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum) and len(annotation):
        return annotation, f"annotated {annotation.__qualname__}, an Enum: each member"
    if typing.get_origin(annotation) is typing.Literal and typing.get_args(annotation):
        values = list(typing.get_args(annotation))
        return values, f"annotated Literal[{', '.join(map(repr, values))}]"
    return None


def _string_constants(tree: ast.AST | None, name: str) -> list[str]:
    """String constants ``name`` is compared with (``==``, ``!=``, ``in (...)``) or matched
    against (``case "a":``) in ``tree``, in source order."""
    if tree is None:
        return []
    found: list[ast.Constant] = []

    def strings(node: ast.AST) -> list[ast.Constant]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return [e for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return []

    def is_name(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == name

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(is_name(o) for o in operands):
                for operand in operands:
                    found += strings(operand)
        elif isinstance(node, ast.Match) and is_name(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue):
                        found += strings(pattern.value)
    found.sort(key=lambda c: (c.lineno, c.col_offset))
    return list(dict.fromkeys(c.value for c in found))


def _iterated_as_count(tree: ast.AST | None, name: str) -> str | None:
    """``range(name)`` (or ``range(a, name)``) or ``self.blocks[:name]`` as written in
    ``tree``, when ``name`` is used so: it is then a count."""
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "range"
            and 1 <= len(node.args) <= 3
            and isinstance(node.args[0 if len(node.args) == 1 else 1], ast.Name)
            and node.args[0 if len(node.args) == 1 else 1].id == name
        ):
            return ast.unparse(node)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Slice)
            and isinstance(node.slice.upper, ast.Name)
            and node.slice.upper.id == name
            and _self_module(node.value) is not None
        ):
            return ast.unparse(node)
    return None


def _lengths_argument(model: nn.Module, name: str, declared: str | None = None) -> str | None:
    """The lengths forward argument other than ``name`` (``declared``, else one named like
    lengths), if ``forward`` takes one."""
    try:
        names = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return None
    if declared is not None:
        return declared if declared in names and declared != name else None
    return next((n for n in names if n != name and _LENGTHS_NAME.search(n)), None)


def _padded(
    model: nn.Module, found: _Found, flow: _Flow, later: list[str]
) -> tuple[_Shape, str]:
    """``found``'s shape with a ``"time"`` axis, and a note when it is time-major.

    Feature-last layers (Linear, LayerNorm) take the layout the sequence is packed or run
    with: ``pack_padded_sequence``'s ``batch_first`` when the flow reaches one (a packed
    RNN input ignores the RNN's own flag), else the next RNN's, else batch-first.
    Channel-first layers (BatchNorm1d) only take ``(batch, channels, time)``."""
    shape = found.shape
    if found.sequence == "channels-first":
        return (*shape, "time"), ""
    batch_first, source = True, ""
    if flow.packs and flow.packs[0] is not None:
        batch_first = flow.packs[0]
        source = f"pack_padded_sequence has batch_first={batch_first}"
    else:
        for expression in later:
            module = _resolve_module(model, expression)
            if isinstance(module, nn.RNNBase):
                batch_first = module.batch_first
                source = f"{expression} has batch_first={batch_first}"
                break
    if batch_first:
        return (shape[0], "time", *shape[1:]), ""
    return ("time", *shape), f" (time-major, as {source})"


def _forward_tree(cls: type) -> ast.FunctionDef | None:
    forward = cls.forward
    try:
        source = textwrap.dedent(inspect.getsource(forward))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def predicate_thresholds(predicate: Callable[..., Any], name: str) -> list[float]:
    """Numeric constants ``name`` is compared with in a branch predicate's source.

    A lambda's source is the whole line it stands on (often a dict of several lambdas):
    every lambda there whose parameters are the predicate's is read, which may add a
    threshold of a sibling predicate — harmless, as thresholds only steer examples."""
    try:
        source = textwrap.dedent(inspect.getsource(predicate)).strip()
        wanted = list(inspect.signature(predicate).parameters)
    except (OSError, TypeError, ValueError):
        return []
    if predicate.__name__ != "<lambda>":
        tree = _forward_tree_of_source(source)
        return _thresholds(tree, name) if tree is not None else []
    found: list[float] = []
    start = source.find("lambda")
    while start != -1:
        for end in range(len(source), start, -1):
            try:
                node = ast.parse(source[start:end], mode="eval").body
            except SyntaxError:
                continue
            if isinstance(node, ast.Tuple) and node.elts:  # "lambda c: c > 0.5, 'fc3'" parses as a tuple
                node = node.elts[0]
            if isinstance(node, ast.Lambda) and [a.arg for a in node.args.args] == wanted:
                found += [t for t in _thresholds(node.body, name) if t not in found]
            break
        start = source.find("lambda", start + 1)
    return found


def _forward_tree_of_source(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _thresholds(tree: ast.AST | None, name: str) -> list[float]:
    """Numeric constants ``name`` is compared with in ``tree`` (``control > 0.5``)."""
    if tree is None:
        return []
    found: list[float] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(_mentions(o, {name}) for o in operands):
            continue
        for operand in operands:
            value = _number(operand)
            if value is not None and value not in found:
                found.append(value)
    return found


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


class _Flow(ast.NodeVisitor):
    """Follows one argument through assignments and records, in source order, the
    ``self.<module>(...)`` calls that consume it."""

    def __init__(self, name: str) -> None:
        self.tainted = {name}
        self.consumers: list[str] = []
        # consumer -> where the argument first enters it: a position or a keyword.
        self.entries: dict[str, int | str] = {}
        # consumer -> the two axes swapped in what it receives (``x.transpose(1, 2)``).
        self.transposed: dict[str, tuple[int, int]] = {}
        # ``batch_first`` of each ``pack_padded_sequence`` it reaches (None: not a constant).
        self.packs: list[bool | None] = []
        # loop variable -> the first member of the container it iterates over:
        # ``for layer in self.layers[:n]: x = layer(x)`` is consumed by ``layers.0``.
        self.members: dict[str, str] = {}

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        if _mentions(node.value, self.tainted):
            for target in node.targets:
                self.tainted.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            if _mentions(node.value, self.tainted) and isinstance(node.target, ast.Name):
                self.tainted.add(node.target.id)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.members.update(_loop_members(node.target, node.iter))
        if _mentions(node.iter, self.tainted):
            self.tainted.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        for statement in (*node.body, *node.orelse):
            self.visit(statement)

    def visit_Call(self, node: ast.Call) -> None:
        for argument in (*node.args, *(k.value for k in node.keywords)):
            self.visit(argument)
        arguments: list[tuple[int | str, ast.AST]] = [
            *enumerate(node.args), *((k.arg or "**", k.value) for k in node.keywords)
        ]
        entry = next(((key, a) for key, a in arguments if _mentions(a, self.tainted)), None)
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if callee == "pack_padded_sequence" and entry is not None and entry[0] in (0, "input"):
            flag = next((k.value for k in node.keywords if k.arg == "batch_first"), None)
            if flag is None:
                self.packs.append(False)  # torch's default
            elif isinstance(flag, ast.Constant) and isinstance(flag.value, bool):
                self.packs.append(flag.value)
            else:
                self.packs.append(None)
        expression = _self_module(node.func)
        if expression is None and isinstance(node.func, ast.Name):
            expression = self.members.get(node.func.id)
        if expression is not None and entry is not None and expression not in self.consumers:
            self.consumers.append(expression)
            self.entries[expression] = entry[0]
            axes = _swapped_axes(entry[1])
            if axes is not None:
                self.transposed[expression] = axes
        self.visit(node.func)


def _swapped_axes(node: ast.AST) -> tuple[int, int] | None:
    """The two axes ``t.transpose(1, 2)``, ``torch.transpose(t, 1, 2)``, ``t.mT`` or
    ``t.permute(0, 2, 1)`` swap; None for anything else."""
    if isinstance(node, ast.Attribute) and node.attr in ("mT", "mH"):
        return (-2, -1)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    numbers = [_number(a) for a in node.args]
    if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
        numbers = numbers[1:]
    if node.func.attr in ("transpose", "swapaxes", "swapdims") and len(numbers) == 2:
        if all(isinstance(n, int) for n in numbers) and numbers[0] != numbers[1]:
            return (min(numbers), max(numbers))
    if node.func.attr == "permute" and numbers == [0, 2, 1]:
        return (1, 2)
    return None


def _swap(shape: _Shape, axes: tuple[int, int] | None) -> _Shape | None:
    """``shape`` with ``axes`` swapped, or None when there is nothing (valid) to swap."""
    if axes is None or not all(-len(shape) <= a < len(shape) for a in axes):
        return None
    a, b = (axis % len(shape) for axis in axes)
    if a == b:
        return None
    out = list(shape)
    out[a], out[b] = out[b], out[a]
    return tuple(out)


def _flow(tree: ast.AST, name: str) -> _Flow:
    flow = _Flow(name)
    for statement in getattr(tree, "body", []):
        flow.visit(statement)
    return flow


def _loop_members(target: ast.AST, iterated: ast.AST) -> dict[str, str]:
    """Loop variables bound to members of a module container, each to the first member:
    ``for layer in self.layers[:n]``, ``for i, layer in enumerate(self.layers)`` and
    ``for block, head in zip(self.blocks, self.heads)``."""
    container = _self_module(_strip_slice(iterated))
    if container is not None:
        return {target.id: f"{container}.0"} if isinstance(target, ast.Name) else {}
    if not (isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name)):
        return {}
    if iterated.func.id == "enumerate" and iterated.args and isinstance(target, ast.Tuple) and len(target.elts) == 2:
        return _loop_members(target.elts[1], iterated.args[0])
    if iterated.func.id == "zip" and isinstance(target, ast.Tuple) and len(target.elts) == len(iterated.args):
        found: dict[str, str] = {}
        for element, argument in zip(target.elts, iterated.args):
            found.update(_loop_members(element, argument))
        return found
    return {}


def _strip_slice(node: ast.AST) -> ast.AST:
    """``self.blocks[:n]`` -> ``self.blocks``; anything else unchanged."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return node.value
    return node


def _self_module(node: ast.AST) -> str | None:
    """``self.fc1`` -> ``fc1``; ``self.layers['input']`` -> ``layers.input``."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            parts.append(str(node.slice.value))
            node = node.value
        elif isinstance(node, ast.Name) and node.id == "self" and parts:
            return ".".join(reversed(parts))
        else:
            return None


def _resolve_module(model: nn.Module, expression: str) -> nn.Module | None:
    try:
        module = model.get_submodule(expression)
    except (AttributeError, KeyError, IndexError):
        return None
    return module if isinstance(module, nn.Module) else None


# --------------------------------------------------------------------------- layer -> input

_Shape = tuple[Any, ...]


class _Found(NamedTuple):
    """The input a layer expects: its shape, how to draw it, a description for the
    explanation, named dimension ranges, and where a ``"time"`` axis goes when the input
    is a padded sequence (``"features-last"``: after batch, as for Linear and LayerNorm;
    ``"channels-first"``: at the end, as for BatchNorm1d; None: the layer says already)."""

    shape: _Shape
    make: Callable[[_Shape], st.SearchStrategy]
    note: str
    dims: dict | None = None
    sequence: str | None = None


def _floats(shape: _Shape) -> st.SearchStrategy:
    return dst.tensors(shape=shape)


def _input_for_module(module: nn.Module, depth: int, entry: int | str = 0) -> _Found | None:
    """The input ``module`` expects, or None when the module says nothing about its
    input's shape; ``entry`` is where the argument enters a user-defined module's forward
    (a position or a keyword)."""
    if depth > 4:
        return None
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        # LazyLinear/LazyConv* report in_features=0 until their first call: no shape.
        return None
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        note = f"Linear(in_features={module.in_features})"
        return _Found(("batch", module.in_features), _floats, note, sequence="features-last")
    if isinstance(module, nn.Bilinear):
        note = f"Bilinear(in1_features={module.in1_features})"
        return _Found(("batch", module.in1_features), _floats, note, sequence="features-last")
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        spatial = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}[
            len(module.kernel_size)
        ]
        dims = {}
        for axis, dim in enumerate(spatial):
            padding = module.padding[axis] if isinstance(module.padding, tuple) else 0
            reach = module.dilation[axis] * (module.kernel_size[axis] - 1) + 1
            low = max(1, reach - 2 * padding)
            dims[dim] = (low, low + 6)
        note = f"{kind}(in_channels={module.in_channels})"
        return _Found(("batch", module.in_channels, *spatial), _floats, note, dims)
    if isinstance(module, nn.RNNBase):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        note = f"{kind}(input_size={module.input_size}, batch_first={module.batch_first})"
        return _Found((*layout, module.input_size), _floats, note)
    if isinstance(module, nn.RNNCellBase):
        return _Found(("batch", module.input_size), _floats, f"{kind}(input_size={module.input_size})")
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        top = module.num_embeddings - 1

        def tokens(shape: _Shape) -> st.SearchStrategy:
            return dst.tensors(shape=shape, dtype=torch.long, min_value=0, max_value=top)

        note = f"{kind}(num_embeddings={module.num_embeddings}): integer tokens"
        return _Found(("batch", "time"), tokens, note)
    if isinstance(module, nn.LayerNorm):
        shape = tuple(module.normalized_shape)
        return _Found(("batch", *shape), _floats, f"LayerNorm({list(shape)})", sequence="features-last")
    if isinstance(module, (nn.BatchNorm1d, nn.InstanceNorm1d)):
        note = f"{kind}({module.num_features})"
        return _Found(("batch", module.num_features), _floats, note, sequence="channels-first")
    if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return _Found(("batch", module.num_features, "height", "width"), _floats, f"{kind}({module.num_features})")
    if isinstance(module, nn.MultiheadAttention):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        return _Found((*layout, module.embed_dim), _floats, f"MultiheadAttention(embed_dim={module.embed_dim})")
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        attention = module.self_attn
        layout = ("batch", "time") if attention.batch_first else ("time", "batch")
        return _Found((*layout, attention.embed_dim), _floats, f"{kind}(d_model={attention.embed_dim})")
    if isinstance(module, (nn.Sequential, nn.TransformerEncoder)):
        children = list(module.children())
        if isinstance(module, nn.TransformerEncoder):
            children = list(module.layers)
        for child in children:
            found = _input_for_module(child, depth + 1)
            if found is not None:
                return found
            if any(True for _ in child.parameters()):
                return None
        return None
    if type(module).forward is not nn.Module.forward and type(module).__module__.split(".")[0] != "torch":
        # A user-defined submodule: follow its own forward's argument the value enters as.
        tree = _forward_tree(type(module))
        try:
            parameters = list(inspect.signature(module.forward).parameters)
        except (TypeError, ValueError):
            return None
        if isinstance(entry, int):
            parameter = parameters[entry] if entry < len(parameters) else None
        else:
            parameter = entry if entry in parameters else None
        if tree is None or parameter is None:
            return None
        flow = _flow(tree, parameter)
        for expression in flow.consumers:
            inner = _resolve_module(module, expression)
            if inner is not None:
                found = _input_for_module(inner, depth + 1, flow.entries.get(expression, 0))
                if found is not None:
                    return found
    return None
