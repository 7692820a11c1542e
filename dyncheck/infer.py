"""Inferring constructor arguments and forward inputs when a model has no Spec.

Constructor: defaults are kept; required size-like arguments (``input_size``,
``hidden_dim``, ``num_classes`` ...) get small, distinct sizes so that shape mix-ups show.

Forward: each required argument is inferred from, in order,
1. its name: ``control``/``gate``-like names get :func:`~dyncheck.strategies.controls`
   with the thresholds it is compared against in ``forward``'s source; ``lengths``-like
   names get :func:`~dyncheck.strategies.sequence_lengths` over the ``"time"`` dimension;
2. its annotation (``bool``, ``int``, ``float``);
3. the first layer that consumes it in ``forward`` (followed through assignments):
   ``nn.Linear``, ``nn.Conv1d/2d``, ``nn.RNN/LSTM/GRU`` (``batch_first`` respected),
   ``nn.Embedding`` (integer tokens), norms, containers and custom submodules.

Anything it cannot decide raises :class:`Uninferable` with the Spec line to write.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from dyncheck import strategies as dst

__all__ = ["Inferred", "Uninferable", "infer_init", "infer_input"]

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
    """The annotation as an object; string annotations (PEP 563) resolved where easy."""
    if isinstance(annotation, str):
        simple = {"int": int, "float": float, "bool": bool, "Tensor": torch.Tensor,
                  "torch.Tensor": torch.Tensor}
        return simple.get(annotation.strip(), annotation)
    return annotation


# --------------------------------------------------------------------------- forward


def infer_input(
    model: nn.Module, name: str, parameter: inspect.Parameter, extra_thresholds: tuple[float, ...] = ()
) -> Inferred:
    """A strategy for the forward argument ``name`` of ``model``; ``extra_thresholds`` are
    values it is compared with elsewhere (the spec's branch predicates)."""
    forward = type(model).forward
    annotation = _annotation(parameter.annotation, forward)
    source_tree = _forward_tree(type(model))
    if _LENGTHS_NAME.search(name):
        return Inferred(
            dst.sequence_lengths(batch_size="batch", max_length="time"),
            "its name says sequence lengths: one per sample, each between 1 and the padded length 'time'",
        )
    if _CONTROL_NAME.search(name) or annotation in (bool, float) or annotation is int:
        thresholds = _thresholds(source_tree, name)
        thresholds += [t for t in extra_thresholds if t not in thresholds]
        as_tensor = annotation not in (bool, int, float)
        where = f" compared with {', '.join(map(repr, thresholds))} in forward" if thresholds else ""
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
    consumers = _consumers(source_tree, name) if source_tree is not None else []
    for expression in consumers:
        module = _resolve_module(model, expression)
        if module is None:
            continue
        found = _input_for_module(module, depth=0)
        if found is not None:
            shape, make, note, dims = found
            return Inferred(make(shape), f"first consumed by {expression} ({note})", dims)
    hint = "tensors(shape=(\"batch\", 16))"
    reason = (
        "no layer in forward consumes it"
        if not consumers
        else f"its first consumers ({', '.join(consumers[:3])}) give no input shape"
    )
    raise Uninferable(
        f"cannot infer forward argument {name!r} of {type(model).__qualname__} ({reason}); "
        f"write dyncheck.Spec({type(model).__qualname__}, inputs={{{name!r}: "
        f"dyncheck.strategies.{hint}}})"
    )


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
        container = _self_module(_strip_slice(node.iter))
        if container is not None and isinstance(node.target, ast.Name):
            self.members[node.target.id] = f"{container}.0"
        if _mentions(node.iter, self.tainted):
            self.tainted.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        for statement in (*node.body, *node.orelse):
            self.visit(statement)

    def visit_Call(self, node: ast.Call) -> None:
        for argument in (*node.args, *(k.value for k in node.keywords)):
            self.visit(argument)
        expression = _self_module(node.func)
        if expression is None and isinstance(node.func, ast.Name):
            expression = self.members.get(node.func.id)
        if expression is not None and any(
            _mentions(a, self.tainted) for a in (*node.args, *(k.value for k in node.keywords))
        ):
            if expression not in self.consumers:
                self.consumers.append(expression)
        self.visit(node.func)


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


def _consumers(tree: ast.AST, name: str) -> list[str]:
    flow = _Flow(name)
    for statement in getattr(tree, "body", []):
        flow.visit(statement)
    return flow.consumers


def _resolve_module(model: nn.Module, expression: str) -> nn.Module | None:
    try:
        module = model.get_submodule(expression)
    except (AttributeError, KeyError, IndexError):
        return None
    return module if isinstance(module, nn.Module) else None


# --------------------------------------------------------------------------- layer -> input

_Shape = tuple[Any, ...]


def _floats(shape: _Shape) -> st.SearchStrategy:
    return dst.tensors(shape=shape)


def _input_for_module(
    module: nn.Module, depth: int
) -> tuple[_Shape, Callable[[_Shape], st.SearchStrategy], str, dict | None] | None:
    """(shape, strategy maker, description, dimension ranges) of the input ``module``
    expects, or None when the module says nothing about its input's shape."""
    if depth > 4:
        return None
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        # LazyLinear/LazyConv* report in_features=0 until their first call: no shape.
        return None
    if isinstance(module, nn.Linear):
        return ("batch", module.in_features), _floats, f"Linear(in_features={module.in_features})", None
    if isinstance(module, nn.Bilinear):
        return ("batch", module.in1_features), _floats, f"Bilinear(in1_features={module.in1_features})", None
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
        name = type(module).__name__
        return ("batch", module.in_channels, *spatial), _floats, f"{name}(in_channels={module.in_channels})", dims
    if isinstance(module, nn.RNNBase):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        name = type(module).__name__
        return (
            (*layout, module.input_size),
            _floats,
            f"{name}(input_size={module.input_size}, batch_first={module.batch_first})",
            None,
        )
    if isinstance(module, nn.RNNCellBase):
        return ("batch", module.input_size), _floats, f"{type(module).__name__}(input_size={module.input_size})", None
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        top = module.num_embeddings - 1

        def tokens(shape: _Shape) -> st.SearchStrategy:
            return dst.tensors(shape=shape, dtype=torch.long, min_value=0, max_value=top)

        return ("batch", "time"), tokens, f"{type(module).__name__}(num_embeddings={module.num_embeddings}): integer tokens", None
    if isinstance(module, nn.LayerNorm):
        shape = tuple(module.normalized_shape)
        return ("batch", *shape), _floats, f"LayerNorm({list(shape)})", None
    if isinstance(module, (nn.BatchNorm1d, nn.InstanceNorm1d)):
        return ("batch", module.num_features), _floats, f"{type(module).__name__}({module.num_features})", None
    if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return ("batch", module.num_features, "height", "width"), _floats, f"{type(module).__name__}({module.num_features})", None
    if isinstance(module, nn.MultiheadAttention):
        layout = ("batch", "time") if module.batch_first else ("time", "batch")
        return (*layout, module.embed_dim), _floats, f"MultiheadAttention(embed_dim={module.embed_dim})", None
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        attention = module.self_attn
        layout = ("batch", "time") if attention.batch_first else ("time", "batch")
        return (*layout, attention.embed_dim), _floats, f"{type(module).__name__}(d_model={attention.embed_dim})", None
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
        # A user-defined submodule: follow its own forward's first argument.
        tree = _forward_tree(type(module))
        try:
            parameters = list(inspect.signature(module.forward).parameters)
        except (TypeError, ValueError):
            return None
        if tree is None or not parameters:
            return None
        for expression in _consumers(tree, parameters[0]):
            inner = _resolve_module(module, expression)
            if inner is not None:
                found = _input_for_module(inner, depth + 1)
                if found is not None:
                    return found
    return None
