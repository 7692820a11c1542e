"""Forward inputs: a strategy for each required forward argument, with why."""

from __future__ import annotations

import ast
import copy
import enum
import inspect
import math
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn

from dyncheck import strategies as dst
from dyncheck.infer.builtin import builtin_layer, infer_builtin_input
from dyncheck.infer.constructor import _COUNT_NAME, _annotation
from dyncheck.infer.flow import (
    BATCH_BOUND, MODULE_PART, _bound_names, _Flow, _flow, _loads, _passes, _resolve_module, _sizes_bound,
    _tensor_call, output_width,
)
from dyncheck.infer.layers import (
    ATTENTION_MODULES, _entry_parameter, _Found, _input_for_module, _Shape, _swap, _user_defined, members_input,
    reshaped_first,
    unreshaped_input,
)
from dyncheck.infer.results import Inferred, Uninferable
from dyncheck.infer.source import (
    _counted_containers, _forward_tree, _iterated_as_count, _keyed_containers, _mentions_data, _number, _self_module,
    _string_constants, _thresholds, function_tree,
)
from dyncheck.infer.tokens import infer_tokens, max_positions
from dyncheck.spec import lengths_slot

__all__ = [
    "check_forward_arguments", "infer_dims", "infer_input", "last_steps_as_lengths", "optional_control", "scans_over_steps",
    "sequence_axis",
]

_CONTROL_NAME = re.compile(r"^(control|ctrl|gate|gating|switch|flag|mode|cond|condition|signal|choice|route|routing)(_\w+)?$|control")
_LENGTHS_NAME = re.compile(r"^(seq_?)?(lengths?|lens)$|_(lengths|lens)$")
#: A forward argument with such a name, that no layer consumes, is a probability (a
#: seq2seq decoder's teacher_forcing_ratio).
_PROBABILITY_NAME = re.compile(r"(^|_)(ratio|prob|probability)$")
#: An argument named as packed sequences (packed, packed_input, x_packed), when a recurrent
#: layer takes it: a PackedSequence, the one input an nn.RNN takes besides a padded tensor.
_PACKED_NAME = re.compile(r"(^|_)packed($|_)")
#: A forward argument with such a name, that no layer consumes, is a small count.
_FORWARD_COUNT_NAME = re.compile(
    _COUNT_NAME.pattern + r"|^(n|num)_\w+$|(iters|iterations|repeats|rounds|hops)$"
)
#: Counts are drawn from this range, widened to hold the thresholds they are compared with.
COUNT_RANGE = (0, 4)


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
    limit = max_positions(model)
    if "time" not in given and limit is not None and limit[0] < dst.DEFAULT_DIMS["time"][1]:
        out["time"] = Inferred(
            (min(dst.DEFAULT_DIMS["time"][0], limit[0]), limit[0]),
            f"{limit[1]}: longer sequences have no position embedding",
        )
    return out


def optional_control(model: nn.Module, name: str, parameter: inspect.Parameter) -> Inferred | None:
    """An optional argument named like a control, whose default is a plain value, that
    forward branches on (``def forward(self, x, control: float = 0.0)`` with ``if control >
    0.5``, ``mode: str = "a"`` with ``if mode == "b"``, ``gate: bool = False`` with ``if
    gate``): drawn as the control it is, its default among the values, so that the branches
    it switches on run. Left at its default, every layer behind the branch stayed dead and
    coverage failed the correct model. None for any other optional argument (flags such as
    ``return_attention``, thresholds under other names), which keeps its default."""
    default = parameter.default
    if type(default) not in (bool, int, float, str) or _CONTROL_NAME.search(name) is None:
        return None
    tree = _forward_tree(type(model))
    if tree is None:
        return None
    flow = _flow(tree, name, model)
    scopes = [(tree, frozenset({name})), *flow.scopes]
    if isinstance(default, str):
        strings = _in_scopes(_string_constants, scopes)
        if not strings:
            return None
        choices = list(dict.fromkeys([default, *strings]))  # the default's own path too
        return Inferred(
            dst.controls(choices=choices),
            f"optional (default {default!r}), drawn as a control: compared with "
            f"{', '.join(map(repr, strings))} in forward",
        )
    branched = _in_scopes(_thresholds, scopes) or (
        type(default) is bool and any(_tested(scope, names) for scope, names in scopes if scope is not None)
    )
    if not branched:
        return None
    if _annotation(parameter.annotation, type(model).forward) is inspect.Parameter.empty:
        parameter = parameter.replace(annotation=type(default))  # drawn as its default is
    try:
        found = infer_input(model, name, parameter)
    except Uninferable:
        return None
    from dyncheck.examples import strategy_arguments, strategy_kind

    value = found.value
    if strategy_kind(value) != "controls":
        return None
    arguments = dict(strategy_arguments(value))
    low, high = arguments.get("min_value"), arguments.get("max_value")
    if type(default) is not bool and (low is not None and default < low or high is not None and default > high):
        # the default's own path too (route: int = -1 beside `if route < 0`)
        arguments.update(min_value=min(low, default), max_value=max(high, default))
        value = dst.controls(**arguments)
    return Inferred(value, f"optional (default {default!r}), drawn as a control: {found.why}", found.dims)


def _tested(tree: ast.AST, names: frozenset[str]) -> bool:
    """Whether an ``if``, a conditional expression or a ``while`` tests one of ``names``."""
    return any(
        isinstance(node, (ast.If, ast.IfExp, ast.While)) and _loads(node.test) & names for node in ast.walk(tree)
    )


def _first_of_chain(model: nn.Module, name: str) -> tuple[nn.Module, str, list[str]] | None:
    """(the first module, its forward's first parameter, the keys the chain reads) where
    ``model`` hands its one argument ``name`` whole to a chain of its children, each taking
    what the one before gave (an ``nn.Sequential``, or a forward that loops ``for m in
    self.children(): x = m(x)``, over ``self``, ``self._modules`` or ``named_children()``),
    and the first module, its author's, reads it only by key: a dict of features. None for
    anything else (a chain of tensors is inferred as before), and where a later module reads
    the dict otherwise (``"k" in features``, ``features.get("k")``): its keys are not known."""
    children = list(model.children())
    if not children or not _user_defined(children[0]):
        return None
    if not (isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward):
        tree = _forward_tree(type(model))
        if tree is None or not any(_chains(node, name) for node in ast.walk(tree)):
            return None
    parameters = [
        p for p in inspect.signature(children[0].forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    child_tree = _forward_tree(type(children[0]))
    if not parameters or child_tree is None:
        return None
    child_name = parameters[0].name
    optional = _OptionalReads(_aliases(child_tree, child_name))
    keys = _mapping_keys(optional.visit(copy.deepcopy(child_tree)), child_name)
    keys = [key for key in keys if key not in optional.keys] if keys is not None else None
    later = _chain_keys(model, child_tree, child_name) if keys else None
    if not keys or later is None:
        return None
    return children[0], child_name, keys + [key for key in later if key not in keys]


def _chain_keys(model: nn.Module, first_tree: ast.AST, first_name: str) -> list[str] | None:
    """The keys the modules after the first of ``model``'s chain read their dict with before
    any module before them (or they themselves) wrote them; in order. None where one of
    them reads it otherwise than by key (``"k" in features``, ``features.get("k")``) or its
    forward cannot be read."""
    written = set(_written_keys(first_tree, first_name))
    keys: list[str] = []
    for child in list(model.children())[1:]:
        tree = _forward_tree(type(child)) if _user_defined(child) else None
        if tree is None or not tree.args.args[1:]:
            return None
        name = tree.args.args[1].arg
        optional = _OptionalReads(_aliases(tree, name))
        tree = optional.visit(copy.deepcopy(tree))
        handoffs = _helper_handoffs(child, tree, name)
        own = _mapping_keys(tree, name, frozenset(method for method, _, _ in handoffs))
        if own is None and not handoffs:
            return None
        read = list(own or [])
        for _, helper, parameter in handoffs:  # self.weights(features) reads it by key too
            helped = _mapping_keys(helper, parameter)
            if helped is None:
                return None
            read += helped
        keys += [
            key for key in dict.fromkeys(read) if key not in written and key not in keys and key not in optional.keys
        ]
        written |= _written_keys(tree, name)
    return keys


class _OptionalReads(ast.NodeTransformer):
    """A forward's tree with its optional reads of a dict taken out: ``"k" in features`` (as
    False) and ``features.get("k")`` (as None), sentence-transformers' Pooling asking for a
    ``token_weights_sum`` a module before it may have added. What is left is read by key."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        #: the keys asked for so: optional, never drawn (a read by key under ``if "k" in
        #: features`` or ``if features.get("k") is not None``). A key only fetched with
        #: ``.get("k")`` elsewhere, and read by key outside such a test, is required.
        self.keys: set[str] = set()

    def visit_If(self, node: ast.AST) -> ast.AST:
        self.keys.update(self._gotten(node.test))
        return self.generic_visit(node)

    visit_IfExp = visit_While = visit_If

    def _gotten(self, test: ast.AST) -> set[str]:
        return {
            node.args[0].value for node in ast.walk(test)
            if self._is_get(node) and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        }

    def _is_get(self, node: ast.AST) -> bool:
        """Whether ``node`` is ``features.get(...)`` of the dict."""
        return (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in self.names
        )

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        held = node.comparators[0] if len(node.comparators) == 1 else None
        if (  # "k" in features.keys()
            isinstance(held, ast.Call) and isinstance(held.func, ast.Attribute) and held.func.attr == "keys"
            and not held.args
        ):
            held = held.func.value
        if (
            len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
            and isinstance(held, ast.Name) and held.id in self.names
        ):
            if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                self.keys.add(node.left.value)
            return ast.copy_location(ast.Constant(isinstance(node.ops[0], ast.NotIn)), node)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if self._is_get(node):
            return ast.copy_location(ast.Constant(None), node)
        return self.generic_visit(node)


def _written_keys(tree: ast.AST, name: str) -> set[str]:
    """The keys forward writes into its dict argument ``name``: ``features["x"] = ...`` and
    ``features.update({"x": ...})`` (or ``update(x=...)``)."""
    written = set()
    names = _aliases(tree, name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id in names
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)
        ):
            written.add(node.slice.value)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in names
        ):
            for argument in node.args:
                if isinstance(argument, ast.Dict):
                    written.update(k.value for k in argument.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
            written.update(k.arg for k in node.keywords if k.arg is not None)
        elif (copied := _copy_with_entries(node, names)) is not None:
            written.update(copied[1])  # name = {**name, "scale": ...}
    return written


def _chains(node: ast.AST, name: str) -> bool:
    """Whether ``node`` is ``for m in self.children(): name = m(name)`` (or over ``self`` or
    ``self._modules.values()``; or ``for n, m in self.named_children()`` or
    ``self._modules.items()``, sentence-transformers' ``module(input, **module_kwargs)``)."""
    if not isinstance(node, ast.For):
        return False
    iterated = ast.unparse(node.iter)
    if isinstance(node.target, ast.Name) and iterated in ("self.children()", "self", "self._modules.values()"):
        step = node.target.id
    elif (
        isinstance(node.target, ast.Tuple) and len(node.target.elts) == 2 and isinstance(node.target.elts[1], ast.Name)
        and iterated in ("self.named_children()", "self._modules.items()")
    ):
        step = node.target.elts[1].id
    else:
        return False
    return any(
        isinstance(statement, ast.Assign) and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name
        and isinstance(statement.value, ast.Call) and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == step and len(statement.value.args) == 1
        and isinstance(statement.value.args[0], ast.Name) and statement.value.args[0].id == name
        for statement in ast.walk(node)
    )


def infer_input(
    model: nn.Module,
    name: str,
    parameter: inspect.Parameter,
    extra_thresholds: tuple[float, ...] = (),
    lengths: str | None = None,
    tree: ast.AST | None = None,
    siblings: list[str] | None = None,
) -> Inferred:
    """A strategy for the forward argument ``name`` of ``model``; ``extra_thresholds`` are
    values it is compared with elsewhere (the spec's branch predicates); ``lengths`` is
    the argument declared to hold the lengths (``Spec(lengths=...)``), else they are
    recognised by name. ``tree`` stands for forward's source (a mapping's entries are
    read in a copy where each ``batch["x"]`` is a name of its own), and ``siblings`` for
    forward's arguments there (the other entries, under those names)."""
    forward = type(model).forward
    first = _first_of_chain(model, name) if tree is None else None
    if first is not None:
        # a dict of features handed whole along a chain of modules (sentence-transformers'
        # SentenceTransformer: for m in self.children(): features = m(features)), each reading
        # it by key and adding to it: the first module's keys, and those later modules read
        # that no module before them wrote (a pooling module's attention_mask beside the
        # embedding module's input_ids). A chain of tensors is read as before.
        child, child_name, keys = first
        found = _mapping(child, child_name, keys, _forward_tree(type(child)), extra_thresholds, lengths)
        why = found.why.replace("\x00", "")
        return Inferred(found.value, f"handed to the first module of a chain, {type(child).__name__}: {why}", found.dims)
    if builtin_layer(model) and tree is None:
        position = list(inspect.signature(model.forward).parameters).index(name)
        found = infer_builtin_input(model, name, position)
        if found is not None:
            return found
    annotation = _annotation(parameter.annotation, forward)
    source_tree = _forward_tree(type(model)) if tree is None else tree
    # A dict inside a dict of inputs (a multimodal batch's batch["text"]["input_ids"]) too.
    handoffs = _helper_handoffs(model, source_tree, name) if source_tree is not None else []
    keys = _mapping_keys(source_tree, name, frozenset(m for m, _, _ in handoffs)) if source_tree is not None else None
    if handoffs and keys is not None:
        # read by key in forward and handed whole to helper methods that read it by key too
        # (pytorch-forecasting's DeepAR: self.encode(x) reads x["encoder_cont"]): each
        # helper with the keys only it reads
        helped = [(tree_, param, _mapping_keys(tree_, param)) for _, tree_, param in handoffs]
        # entries forward adds before handing it on ({**batch, "scale": ...}): not inputs
        added = _written_keys(source_tree, name)
        if all(found_keys for _, _, found_keys in helped):
            handoffs = []
            for tree_, param, found_keys in helped:
                own = [k for k in found_keys if k not in keys and k not in added]
                handoffs.append((tree_, param, own))
                keys = [*keys, *own]
        else:
            keys = None
    if keys:
        found = _mapping(model, name, keys, source_tree, extra_thresholds, lengths, siblings, helpers=handoffs)
        return found if tree is not None else Inferred(found.value, found.why.replace("\x00", ""), found.dims)
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
    columns = _embedded_columns(model, source_tree, name) if source_tree is not None else None
    if columns is None and source_tree is not None:
        columns = _picked_columns(model, source_tree, name)
    if columns is None and source_tree is not None:
        columns = _field_offsets(model, source_tree, name)
    if columns is not None:
        return columns
    flow = _flow(source_tree, name, model) if source_tree is not None else None
    # forward's own source, and every helper, parent forward or function it hands the
    # argument to, under the names the argument has there
    scopes = [(source_tree, frozenset({name})), *(flow.scopes if flow is not None else [])]
    thresholds = _in_scopes(_thresholds, scopes)
    thresholds += [t for t in extra_thresholds if t not in thresholds]
    where = f" compared with {', '.join(map(repr, thresholds))} in forward" if thresholds else ""

    # Choices: checked before the control-like names, as "mode" is one of those and a
    # mode compared with strings is not a float.
    choices = _annotated_choices(annotation)
    if choices is not None:
        return Inferred(dst.controls(choices=choices[0]), choices[1])
    strings = _in_scopes(_string_constants, scopes)
    # a key into a ModuleDict (self.heads[task]): its keys are the values it takes
    keys = [
        key for tree, names in scopes for n in sorted(names) for container_name in _keyed_containers(tree, n)
        if isinstance(container := _submodule(model, container_name), nn.ModuleDict) for key in container.keys()
    ]
    if keys:
        strings = list(dict.fromkeys([*strings, *keys]))
        said = "annotated str, a key" if annotation is str else "a key"
        return Inferred(
            dst.controls(choices=strings),
            f"{said} into a ModuleDict in forward: {', '.join(map(repr, strings))}",
        )
    # an index into a ModuleList or Sequential (self.ops[choice]): each member, here or in
    # a custom layer it is handed to
    layers = [(tree, names, "") for tree, names in scopes] + [
        layer for layer in _handed_to_layers(model, flow) if "*" not in layer[2]
    ]
    indexed = [
        (len(container), full)
        for tree, names, prefix in layers for n in sorted(names)
        for container_name in _keyed_containers(tree, n, one_hot=True)
        if isinstance(
            container := _submodule(model, full := f"{prefix}.{container_name}" if prefix else container_name),
            (nn.ModuleList, nn.Sequential),
        ) and len(container)
    ]
    if indexed and not strings and annotation in (int, inspect.Parameter.empty):
        # the largest container: a smaller one is reached only under a condition
        # (if task < 2: self.aux[task]), which the thresholds then split
        size, container_name = max(indexed)
        return _index_control(size, f"{container_name} ({size} modules)", annotation, thresholds, where)
    # an index into a tuple or list the model holds (self.SCALES[scale]): each of its
    # values, and none past the end (the smallest, where several are indexed)
    held = [
        (len(values), full)
        for tree, names, prefix in layers for n in sorted(names)
        for container_name in _keyed_containers(tree, n)
        if isinstance(
            values := _held_value(model, full := f"{prefix}.{container_name}" if prefix else container_name), (tuple, list)
        ) and values
    ]
    if held and not strings and annotation in (int, inspect.Parameter.empty):
        size, container_name = min(held)
        return _index_control(size, f"{container_name} ({size} values)", annotation, thresholds, where)
    architecture = _int_list(annotation)
    if architecture:
        return _architecture(model, name, source_tree, qualname, annotation)
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

    # forward and its helpers ("" for the model's own containers), and the forward of each
    # custom layer the argument is handed to (self.dec(h, num_steps)), under its name there
    counted = [(tree, names, "") for tree, names in scopes] + [
        layer for layer in _handed_to_layers(model, flow) if "*" not in layer[2]  # a layer by its own name
    ]
    iterated, layer = next(
        ((found, prefix) for tree, names, prefix in counted for n in sorted(names)
         if (found := _iterated_as_count(tree, n))),
        (None, ""),
    )
    if iterated is not None and annotation not in (bool, float):
        compared = f" and compared with {', '.join(map(repr, thresholds))}" if thresholds else ""
        # as many as the longest container it walks (four steps: 0 to 4), so every step runs
        walked = [
            len(container) for tree, names, prefix in counted for n in sorted(names)
            for container_name in _counted_containers(tree, n)
            if isinstance(
                container := _submodule(model, f"{prefix}.{container_name}" if prefix else container_name),
                (nn.ModuleList, nn.Sequential),
            )
        ]
        place = f"in {layer}'s forward" if layer else "in forward"
        if (
            not walked and not layer and source_tree is not None and not _in_range(source_tree, name)
            and (sliced := _slice_bound(model, source_tree, flow.tainted))
        ):
            # the end of a slice of the model's own weights (self.w1[:active]): every width
            walked, place = [sliced[0]], f"{place}, slicing {sliced[1]} ({sliced[0]} along it)"
        return _count(f"a count: used as {iterated}{compared} {place}", thresholds, max(walked, default=None))

    named = _CONTROL_NAME.search(name) is not None
    if named and not thresholds and annotation is inspect.Parameter.empty and source_tree is not None and any(
        (layer := _resolve_module(model, consumer)) is not None and not _user_defined(layer)
        and _input_for_module(layer, 0) is not None
        for consumer in _flow(source_tree, name, model, strict=True).consumers
    ):
        # a layer is handed the argument itself (FiLM's self.film(condition), a hypernetwork's
        # self.hyper(cond)) and forward compares it with nothing: features named like a control
        named = False
    if named or annotation in (bool, float) or annotation is int:
        as_tensor = annotation not in (bool, int, float)
        if annotation is bool:
            return Inferred(dst.controls(dtype=bool), "annotated bool")
        if annotation is int:
            sliced = None if thresholds or flow is None else _slice_bound(model, source_tree, flow.tainted)
            if sliced is not None:
                # how many of a weight's rows or columns run, computed from the argument (a
                # once-for-all net's k = min(max(active_channels, 1), ...); self.w1[:k])
                size, weight = sliced
                return _count(f"annotated int, the end of a slice of {weight} ({size} along it)", [], size)
            hi = int(max([*thresholds, 2])) + 1
            lo = int(min([*thresholds, 0])) - (1 if thresholds and min(thresholds) <= 0 else 0)
            return Inferred(
                dst.controls(dtype=int, min_value=lo, max_value=hi, thresholds=tuple(thresholds)),
                f"annotated int{where}",
            )
        lo, hi = 0.0, 1.0
        if thresholds and not all(0.0 <= t <= 1.0 for t in thresholds):
            lo, hi = float(min(thresholds)) - 1.0, float(max(thresholds)) + 1.0
        positive = not thresholds and _POSITIVE_NAME.search(name) is not None
        if positive:
            # a temperature divides: 0 is no value of it (logits / 0 is inf)
            lo, hi = 0.1, 2.0
            where = "; named like a temperature, something forward divides by: drawn from 0.1 to 2"
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
    consumers = flow.consumers if flow is not None else []
    if len(consumers) > 1 and source_tree is not None:
        # A layer that takes what another layer made of the argument (z, _ = self.rec(x);
        # self.fc(z)) says nothing of the argument's shape: only those it reaches as itself,
        # or through layers that keep its shape, count.
        direct_flow = _flow(source_tree, name, model, opaque_modules=True)
        direct = set(direct_flow.consumers)
    else:
        direct_flow, direct = None, set(consumers)
    strict = None
    if consumers and source_tree is not None:
        # The places whose layout a layer fixes, where the argument reaches them as it is.
        strict = _flow(source_tree, name, model, strict=True, same_layout=True)
        placed = (
            _initial_state(model, strict, consumers[0]) or _bag_offsets(model, strict)
            or _attention_mask_slot(model, source_tree, name, strict)
        )
        if placed is not None:
            return placed
        first = _resolve_module(model, consumers[0])
        slot = _entry_parameter(first, flow.entries.get(consumers[0], 0)) if first is not None else None
        flipped = _inverted_into(source_tree, name, slot) if isinstance(first, _ONE_SEQUENCE) else None
        if flipped is not None:
            return Inferred(
                dst.attention_masks(batch_size="batch", max_length="time", dtype=torch.bool),
                f"handed to {_consumer_name(consumers[0])} as its {slot} inverted ({flipped}): True at padding there "
                "(PyTorch's convention), so True at tokens here, padding on the right",
            )
        if isinstance(first, ATTENTION_MODULES) and slot is not None and "mask" in slot:
            # changed on the way otherwise (mask.bool(), mask == 0, arithmetic): a mask, whose
            # polarity (True at tokens or at padding) is not guessed from the code between
            raise Uninferable(
                f"cannot infer forward argument {name!r} of {qualname} (it reaches {_consumer_name(consumers[0])} as its "
                f"{slot}, changed on the way: a mask, which way it marks padding is not read from the code); write "
                f"dyncheck.Spec({qualname}, inputs={{{name!r}: dyncheck.strategies.attention_masks(dtype=torch.bool)}}) "
                "for True at tokens, or attention_masks(dtype=torch.bool, marks='padding') for True at padding"
            )
    reshaped = None
    # The layers it reaches as itself first; then, where none of those gives a shape, those
    # that take what another layer made of it (a custom norm's output), said so in the note:
    # resolution calls the model on it and probes other sizes when it raises (a recurrent
    # layer over raw weights, then a readout of another width).
    ordered = [(i, e, False) for i, e in enumerate(consumers) if e in direct or not i]
    ordered += [(i, e, True) for i, e in enumerate(consumers) if e not in direct and i]
    for index, expression, indirect in ordered:
        module = _resolve_module(model, expression)
        entry, member = flow.entries.get(expression, 0), flow.members.get(expression)
        if direct_flow is not None and expression in direct_flow.entries:
            # where it enters as itself, not where what another layer made of it does
            entry, member = direct_flow.entries[expression], direct_flow.members.get(expression)
        if index == 0 and (reshaped := reshaped_first(module)) is not None:
            # what it reshapes the input into is what later layers take: worked back from the
            # layer after it where that can be done (a ViT's patch embedding), else refused
            found = unreshaped_input(reshaped, [module, model])
            if found is None:
                break
            reshaped = None
        else:
            found = (
                _input_for_module(module, depth=0, entry=entry, member=member) if module is not None
                else members_input(model, expression, 0, entry, member)
            )
            if found is not None and found.tokens and module is not None and "*" in expression:
                # one of a list of tables (self.embeddings[i](x[:, i])): below the smallest vocabulary
                found = members_input(model, expression, 0, entry, member) or found
        if found is not None and found.tokens and expression in flow.picked:
            found = _smallest_table(model, flow, found)
        if found is not None:
            why = f"first consumed by {_consumer_name(expression)} ({found.note})"
            if indirect:
                # not indices, nor an edge list, whose values reach the next layers only through
                # what they pick (PyG's GCN: x = conv(x, edge_index), then conv's input read for it)
                _refuse_index_like(model, source_tree, name, qualname)
                why += f"{INDIRECT_NOTE}{_consumer_name(consumers[0])} made of it"
            shape = found.shape
            beside = _lengths_argument(model, name, lengths, siblings)
            if beside is not None and found.sequence is not None:
                shape, layout = _padded(model, found, flow, consumers[index + 1:], scopes)
                why += f"; a padded sequence, as forward takes {beside}{layout}"
            elif found.tokens:
                # read where the ids are embedded (a swap in the call's argument is undone below),
                # unless forward moves their axes on the way there otherwise
                moved = expression not in flow.transposed and _moved_on_the_way(source_tree, flow, expression)
                inside = None if moved else _token_layout_inside(model, expression, flow.entries.get(expression, 0), shape)
                shape, layout = inside or _token_layout(model, shape, flow, consumers[index + 1:], scopes)
                why += layout
            elif found.sequence == "features-last" and expression not in flow.reduced:
                sequence = _sequence_layer(model, consumers[index + 1:])
                attends = None if sequence is not None else _attention_in_code(scopes, flow.tainted)
                if sequence is not None:
                    # Features a Linear reads before a sequence layer: a sequence too (drawn as
                    # vectors, the layer would read the batch as one unbatched sequence).
                    shape, layout = _padded(model, found, flow, consumers[index + 1:], scopes)
                    why += f"{SEQUENCE_NOTE}{sequence} takes one{layout}"
                elif attends is not None and len(found.shape) == 2:
                    # attention written out in forward (q @ k.transpose(-2, -1)): over the steps of
                    # a sequence (drawn as vectors, it attended over the samples of the batch)
                    shape = (found.shape[0], "time", *found.shape[1:])
                    why += f"; a sequence, as forward attends over its steps ({attends})"
                elif len(found.shape) == 2 and (stepped := _stepped_in_code(flow)) is not None:
                    # a recurrence written out over what the layer made of the whole sequence
                    # (U = self.lin(x); c = f(U[t], c) for t in range(x.size(0)): SRU's): drawn
                    # as vectors, its steps were the samples of the batch
                    shape = ("time", *found.shape) if stepped[0] == 0 else (found.shape[0], "time", *found.shape[1:])
                    why += f"; a sequence: a loop carrying a state steps through axis {stepped[0]} ({stepped[1]})"
                elif (
                    len(found.shape) == 2 and not flow.transposed
                    and (stepped := _stepped_in_layers(model, flow, consumers[index + 1:])) is not None
                ):
                    # the recurrence in a custom layer the input reaches after the Linear
                    # (norse's SequentialState(Linear, LIF, ...)): drawn as vectors, the layer's
                    # loop walked the batch as time and batch_invariance failed. Time-major
                    # only (a loop over axis 1 may walk chunks or heads a layer made), and
                    # kept by resolution only where each sample's outputs are its own.
                    step, layer = stepped
                    shape = ("time", *found.shape)
                    why += f"; a sequence: {layer}, which it reaches, carries a state through axis 0 ({step})"
                elif (
                    len(found.shape) == 2 and expression not in flow.transposed
                    and (scan := _named_scan(model, source_tree, name)) is not None
                ):
                    # a scan written in code over what the layer made of the whole sequence
                    # (minGRU's parallel form: seq_len = x.shape[1], cumsum and logcumsumexp
                    # over dim 1, out[:, -seq_len:]): drawn as vectors, it scanned over the
                    # features. Resolution keeps it where the model runs so, each sample its own.
                    shape = (found.shape[0], "time", *found.shape[1:])
                    why += f"{NAMED_SCAN_NOTE}{scan[0]}), cuts it by that length ({scan[1]}) and scans over it ({scan[2]})"
            swapped = _swap(shape, flow.transposed.get(expression))
            if swapped is not None:
                shape = swapped
                why += f"; it reaches {expression} through transpose{flow.transposed[expression]}"
            restored = _unreduced(shape, flow.reduced.get(expression))
            if restored is not None:
                shape = restored
                why += (
                    f"; a loop hands {expression} one step of axis {flow.reduced[expression]} at a time"
                    if expression in flow.stepped else f"; it reaches {expression} reduced over axis {flow.reduced[expression]}"
                )
            shared = _shared_features(model, name, shape, flow.concatenated.get(expression), siblings)
            if shared is not None:
                shape, note = shared
                why += f"; {note}"
            picked = (direct_flow or flow).picked
            if expression in picked and all(consumer in picked for consumer in direct):
                # one column of its last axis (x_cat[..., 0]), at every layer that takes it:
                # drawn without that axis, a [batch, time] table of ids lost its steps on the
                # way into a GRU, which then ran the batch as one sequence (a false
                # batch_invariance failure). Not where a layer takes it whole too (the first
                # token's ids, ids[..., 0], beside the sequence's)
                column = picked[expression]
                columns = 1 + max(picked.values())
                shape = (*shape, columns)
                why += (
                    f"; it reaches {_consumer_name(expression)} as column {column} of its last axis ([..., {column}]): "
                    f"{columns} column{'s' if columns > 1 else ''}, as many as forward picks"
                )
            if _tensor_list(annotation):
                return _sequence_list(found.make(shape), shape, why, name, qualname)
            packed = _packed(annotation, name, model, consumers, scopes)
            if packed:
                return _packed_sequences(found.make(shape), shape, f"{why}; {packed}", name, qualname)
            if not found.tokens:
                # token ids by name, read through code the flow cannot follow (a weight
                # indexed by them): the model's vocabulary says more than the next layer
                tokens = infer_tokens(model, name)
                if tokens is not None:
                    return tokens
                if not indirect and (strict is None or not _taken_as_features(model, strict, expression)):
                    # (an indirect reading was refused above already) features a layer takes as
                    # they are are no indices, whatever values computed from them reach (PyG's
                    # GATConv: x into its Linear, and logits made of it bundled in a NamedTuple
                    # with the edges' indices)
                    _refuse_indices(model, source_tree, name, qualname)
            return Inferred(found.make(shape), why, found.dims)
    tokens = infer_tokens(model, name)
    if tokens is not None:
        return tokens
    rows = _weight_rows(model, source_tree, name, direct_flow or flow)
    if rows is not None and not _tensor_list(annotation):
        size, weight = rows
        if source_tree is not None and _stepped(source_tree, name):
            # a CRF's tags[i] in a loop over range(seq_length): one index per step and sample
            return Inferred(
                dst.tensors(shape=("time", "batch"), dtype=torch.long, min_value=0, max_value=size - 1),
                f"it picks rows of {weight} ({weight}[{name}...], {size} rows) one step at a time (a loop over "
                f"range(...) reads {name}[i]): one index per step and sample, 0 to {size - 1}",
            )
        return Inferred(
            dst.tensors(shape=("batch",), dtype=torch.long, min_value=0, max_value=size - 1),
            f"it picks rows of {weight} ({weight}[{name}], {size} rows): one index per sample, 0 to {size - 1}",
        )
    if annotation is inspect.Parameter.empty and _FORWARD_COUNT_NAME.search(name):
        return _count(f"a count, by its name{where and ';' + where}", thresholds)
    if annotation in (float, inspect.Parameter.empty) and _PROBABILITY_NAME.search(name):
        # teacher_forcing_ratio, compared with random.random(): a probability
        return Inferred(
            dst.controls(thresholds=tuple(t for t in thresholds if 0 <= t <= 1)),
            f"a probability, by its name{where and ';' + where}; drawn as floats from 0 to 1",
        )
    if (
        not consumers and source_tree is not None and tree is None
        and parameter.default is inspect.Parameter.empty and not _reads(source_tree, name)
    ):
        # a signature shared across a family of models (the Time-Series-Library forecasters'
        # forward(x_enc, x_mark_enc, x_dec, x_mark_dec)), some of which use only x_enc
        return Inferred(st.none(), "forward never reads it: passed as None")
    _refuse_index_like(model, source_tree, name, qualname)
    # the sizes left for the user to fill in (a number here was pasted as it was, and was wrong)
    hint = "sequence_lists(feature_shape=(...,))" if _tensor_list(annotation) else "tensors(shape=(\"batch\", ...))"
    reason = (
        "no layer in forward consumes it"
        if not consumers
        else f"its first consumer, {_consumer_name(consumers[0])}, reshapes it ({type(reshaped).__name__}) before any "
        "layer that gives a shape"
        if reshaped is not None
        else f"its first consumers ({', '.join(_consumer_name(c) for c in consumers[:3])}) give no input shape"
    )
    masking = _masking_width(model, source_tree, name)
    if masking is not None and not _tensor_list(annotation):
        # an action mask beside a policy's logits: as wide as what it masks
        width, masked = masking
        reason += f"; it masks {masked} ({width} features) through masked_fill"
        hint = f"tensors(shape=(\"batch\", {width}), dtype=torch.bool)"
    raise Uninferable(
        f"cannot infer forward argument {name!r} of {qualname} ({reason}); "
        f"write dyncheck.Spec({qualname}, inputs={{{name!r}: "
        f"dyncheck.strategies.{hint}}})",
        consumers=tuple(m for c in consumers if (m := _resolve_module(model, c)) is not None),
        reshaped=reshaped is not None,
    )


def _masking_width(model: nn.Module, tree: ast.AST | None, name: str) -> tuple[int, str] | None:
    """(the width, how it reads) of what forward masks with ``name`` through ``masked_fill``
    (``self.pi(h).masked_fill(action_mask == 0, float("-inf"))``, also on a name that holds
    a submodule's output), when that submodule's type says its width; None otherwise."""
    if tree is None:
        return None
    held = {
        target.id: expression
        for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and (expression := _self_module(node.value.func)) is not None
        for target in node.targets if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
            "masked_fill", "masked_fill_"
        ) and node.args and any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.args[0]))):
            continue
        receiver = node.func.value
        expression = (
            _self_module(receiver.func) if isinstance(receiver, ast.Call)
            else held.get(receiver.id) if isinstance(receiver, ast.Name) else None
        )
        width = output_width(_resolve_module(model, expression)) if expression else None
        if width is not None:
            return width, f"self.{expression}(...)"
    return None


def _initial_state(model: nn.Module, strict: _Flow, first: str) -> Inferred | None:
    """The argument as a recurrent layer's initial hidden state, when it is handed to one as
    its ``hx`` as it is (or through ``.to(...)``, ``.contiguous()`` and other methods that keep
    its shape; not ``h.unsqueeze(0)``). That layout, ``[num_layers * directions, batch,
    hidden_size]`` (``[batch, hidden_size]`` for a cell), is the layer's whatever else reads the
    argument first: a seq2seq decoder's attention reads ``hidden.permute(1, 0, 2)`` before its
    GRU takes ``hidden``, and read as that attention's input the state was drawn ``[batch,
    time, hidden]``, which runs only where both are 1. ``strict`` is the argument's flow as it
    is (strict, its shape kept); ``first`` its first consumer."""
    found = _handed_as(model, strict, "state")
    if found is None:
        return None
    expression, layer = found
    said = "first consumed by" if expression == first else "handed as the initial state to"
    return Inferred(layer.make(layer.shape), f"{said} {_consumer_name(expression)} ({layer.note})")


def _bag_offsets(model: nn.Module, strict: _Flow) -> Inferred | None:
    """The argument as the offsets of an ``nn.EmbeddingBag``'s bags, when it is handed to one
    as those (``self.embedding(text, offsets)``, the text classification tutorials'
    layout, also inside a submodule): drawn as None, EmbeddingBag's other convention, where
    its input ``[batch, time]`` is a batch of bags of equal length, one row each. Offsets
    drawn beside such an input are refused by the layer ("if input is 2D, then offsets has to
    be None"); ragged bags, a flat input and offsets that depend on its length, are not
    drawn (docs/known-limits.md)."""
    found = _handed_as(model, strict, "offsets")
    if found is None:
        return None
    expression, _ = found
    return Inferred(
        st.none(),
        f"handed to {_consumer_name(expression)} as its bags' offsets: drawn as None, so the bags are "
        "the rows of its input [batch, time], all of one length (ragged bags are not drawn: for code that needs "
        "the offsets, check a wrapper whose forward(bags: list[torch.Tensor]) concatenates the bags and makes their "
        "offsets, each bag then drawn and cut on its own)",
    )


#: Why an argument found by :func:`packs_as_lengths` is drawn as lengths.
PACKED_LENGTHS_NOTE = (
    "handed to pack_padded_sequence as its lengths: one per sample, each between 1 and the padded length 'time'"
)


#: A length's name for one value per sample, short form (RecBole's ``item_seq_len``,
#: ``src_len``); not a bound (``max_len``) nor the one shared length (``seq_len``).
_LEN_NAME = re.compile(r"^(?!(max|min)_)\w+_len$")


#: Calls whose arguments are sizes or counts, not one index per row (``x.new_zeros(b, n - 1, d)``).
_SIZE_TAKING = frozenset({
    "range", "zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "linspace", "new_zeros",
    "new_ones", "new_empty", "new_full", "narrow", "view", "reshape", "expand", "repeat", "tensor", "split",
})


def last_steps_as_lengths(module: nn.Module, name: str) -> str | None:
    """The line where ``module``'s forward picks each row's last valid step with its argument
    ``name``, a length's short name: ``name - 1`` handed to a function beside the outputs
    (``gather_indexes(output, item_seq_len - 1)``, RecBole's sequential recommenders), used as
    an index beside another (``output[torch.arange(b), lengths - 1]``), or reshaped for a
    gather (``(item_seq_len - 1).view(-1, 1, 1)``); None where it does not. Such an argument
    holds sequence lengths, not indices into another input. A count is not one: annotated
    ``int`` (or ``float``, ``bool``), or taken 1 from for a ``range(...)``, a slice's bound or
    a row of a table (``self.table[src_len - 1]``)."""
    if not _LEN_NAME.search(name) or name == "seq_len":
        return None
    parameter = inspect.signature(type(module).forward).parameters.get(name)
    if parameter is not None and parameter.annotation in (int, float, bool, "int", "float", "bool"):
        return None
    tree = _forward_tree(type(module))
    if tree is None:
        return None
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub)
            and isinstance(node.left, ast.Name) and node.left.id == name and _number(node.right) == 1
        ):
            continue
        parent = parents.get(id(node))
        called = parent.func.attr if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) else (
            parent.func.id if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) else None
        )
        beside_outputs = (
            isinstance(parent, ast.Call) and node in parent.args and len(parent.args) >= 2 and called not in _SIZE_TAKING
        )
        paired_index = isinstance(parent, ast.Tuple) and isinstance(parents.get(id(parent)), ast.Subscript)
        reshaped = (
            isinstance(parent, ast.Attribute) and parent.attr in ("view", "reshape", "unsqueeze", "expand", "long")
        )
        if beside_outputs or paired_index or reshaped:
            return ast.unparse(node)
    return None


def packs_as_lengths(module: nn.Module, name: str, tree: ast.AST | None = None, depth: int = 0) -> bool:
    """Whether ``module``'s forward hands its argument ``name``, as it is (``.cpu()`` and
    ``.to(...)`` kept), to ``pack_padded_sequence`` as the lengths, itself or in a
    submodule's forward it hands the argument to (``self.encoder(src, src_len)``: a name
    the lengths' names do not cover)."""
    tree = _forward_tree(type(module)) if tree is None else tree
    if tree is None or depth > 3 or _mapping_keys(tree, name) or _taken_apart(tree, name):
        return False  # a dict or tuple of inputs holds the lengths (batch["lengths"]), it is not them
    flow = _flow(tree, name, module, strict=True, same_layout=True)
    if flow.packed_lengths:
        return True
    for expression in flow.consumers:
        inner = _resolve_module(module, expression)
        if inner is None or not _user_defined(inner):
            continue
        parameter = _entry_parameter(inner, flow.entries.get(expression, 0))
        if parameter is not None and packs_as_lengths(inner, parameter, None, depth + 1):
            return True
    return False


def _handed_as(model: nn.Module, strict: _Flow, role: str) -> tuple[str, _Found] | None:
    """(consumer, what it expects) for the first layer the argument's flow ``strict`` (as it
    is, its shape kept) hands it to in the place ``role`` names: ``"state"`` (a recurrent
    layer's ``hx``) or ``"offsets"`` (an EmbeddingBag's), directly or inside a submodule's
    forward."""
    for expression in strict.consumers:
        module = _resolve_module(model, expression)
        if module is None:
            continue
        found = _input_for_module(
            module, depth=0, entry=strict.entries.get(expression, 0), member=strict.members.get(expression),
            role=role,
        )
        if found is not None and getattr(found, role):
            return expression, found
    return None


#: Names of a positive float a model divides by (a sampling temperature, a noise scale).
_POSITIVE_NAME = re.compile(r"(^|_)(temperature|temp|tau|sigma|std)$")


#: torch's attention modules over one sequence, whose key padding mask can only be that sequence's.
_ONE_SEQUENCE = (nn.MultiheadAttention, nn.TransformerEncoder, nn.TransformerEncoderLayer)


def _attention_mask_slot(model: nn.Module, tree: ast.AST, name: str, strict: _Flow) -> Inferred | None:
    """The argument as a mask of one of torch's attention modules, when forward hands it, as
    it is, to one in a mask's place and reads it nowhere else (``self.transformer(src, tgt,
    src_mask, tgt_mask, None, src_padding_mask, ...)``, the translation tutorials' layout,
    every mask a required argument): drawn as None, no mask, which each of those places
    accepts (``tokens.eq(0)`` is not the tokens, and a mask forward also reads itself is not
    replaced by None). Which sequence a padding mask goes with, and that the memory's repeats
    the source's, is not guessed, so the masks are not drawn (a padding mask an optional
    argument gives is: see ``target._padding_argument``)."""
    read = _read_unguarded(model, tree, name, strict.self_name or "self")
    for expression in strict.consumers[:1]:
        module = _resolve_module(model, expression)
        if not isinstance(module, ATTENTION_MODULES):
            return None
        slot = _entry_parameter(module, strict.entries.get(expression, 0))
        if slot in ("key_padding_mask", "src_key_padding_mask") and isinstance(module, _ONE_SEQUENCE):
            # handed as it is to the key padding mask of an attention over one sequence: a
            # key padding mask by torch's convention (True at padding), whatever forward
            # also does with it (a masked mean over ~mask)
            return Inferred(
                dst.attention_masks(batch_size="batch", max_length="time", dtype=torch.bool, marks="padding"),
                f"handed to {_consumer_name(expression)} as its {slot}: the key padding mask of the sequence "
                "(PyTorch's convention): True at padding on the right, False at tokens",
            )
        if read:
            return None  # forward reads the argument itself too ((~mask).float() as weights)
        if slot is not None and "mask" in slot:
            return Inferred(
                st.none(),
                f"handed to {_consumer_name(expression)} as its {slot}: drawn as None, no mask (the masks of "
                "torch's attention layers are not drawn; give them with Spec(inputs=...))",
            )
        return None
    return None


def _inverted_into(tree: ast.AST | None, name: str, slot: str | None) -> str | None:
    """The source of ``~name`` (or ``name.logical_not()``, ``torch.logical_not(name)``) where
    forward hands it by keyword as a key padding mask (``self.layer(h,
    src_key_padding_mask=~mask)``): the argument is then True at tokens. None otherwise."""
    if tree is None or slot not in ("key_padding_mask", "src_key_padding_mask"):
        return None

    def inverted(node: ast.AST) -> bool:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return isinstance(node.operand, ast.Name) and node.operand.id == name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "logical_not":
            target = node.func.value if not node.args else node.args[0]
            return isinstance(target, ast.Name) and target.id == name
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == slot and inverted(keyword.value):
                    return ast.unparse(keyword.value)
    return None


def _taken_apart(tree: ast.AST, name: str) -> bool:
    """Whether forward unpacks ``name`` (``x, lengths = batch``) or picks a member of it by a
    constant (``batch[1]``): a tuple of inputs, not one."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id == name
            and any(isinstance(t, (ast.Tuple, ast.List)) for t in node.targets)
        ):
            return True
        if (
            isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == name
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)
        ):
            return True
    return False


def _read_unguarded(model: nn.Module, tree: ast.AST, name: str, self_name: str) -> bool:
    """Whether forward reads ``name`` anywhere but in a call of one of torch's attention
    layers or where a None test shields the read (``x is None or x.dim() == 2``, ``if x is
    not None: ...``): a read that None would break. A test that demands a value (``assert x
    is not None``, ``if x is None: raise ...``) is such a read. ``self_name`` is forward's
    first parameter."""
    skipped: set[int] = set()

    def skip(node: ast.AST) -> None:
        skipped.update(id(n) for n in ast.walk(node))

    def none_test(node: ast.AST, op: type) -> bool:  # ``name is None`` (op Is) or ``name is not None``
        return (
            isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], op)
            and isinstance(node.left, ast.Name) and node.left.id == name
            and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None
        )

    def raises(statements: list[ast.stmt]) -> bool:
        return any(isinstance(n, ast.Raise) for statement in statements for n in ast.walk(statement))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            expression = _self_module(node.func, {self_name: ""})
            if expression is not None and isinstance(_resolve_module(model, expression), ATTENTION_MODULES):
                for argument in (*node.args, *(k.value for k in node.keywords)):
                    skip(argument)
        elif isinstance(node, ast.BoolOp):
            # ``x is None or <reads>`` / ``x is not None and <reads>``: the test and what follows it
            guard = ast.Is if isinstance(node.op, ast.Or) else ast.IsNot
            first = next((i for i, v in enumerate(node.values) if none_test(v, guard)), None)
            if first is not None:
                for value in node.values[first:]:
                    skip(value)
        elif isinstance(node, (ast.If, ast.IfExp)):
            body = node.body if isinstance(node.body, list) else [node.body]
            orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
            if none_test(node.test, ast.IsNot):
                skip(node.test)
                for statement in body:
                    skip(statement)
            elif none_test(node.test, ast.Is) and not (isinstance(node, ast.If) and raises(node.body)):
                skip(node.test)
                for statement in orelse:
                    skip(statement)
    return any(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and id(n) not in skipped
        for n in ast.walk(tree)
    )


#: Tensor methods and torch functions whose index argument picks rows of another tensor.
_INDEXING = frozenset((
    "index_add", "index_add_", "index_select", "index_copy", "index_copy_", "index_put", "index_put_",
    "index_fill", "index_fill_", "scatter", "scatter_", "scatter_add", "scatter_add_", "scatter_reduce",
    "scatter_reduce_", "gather",
))


def _refuse_index_like(model: nn.Module, source_tree: ast.AST | None, name: str, qualname: str) -> None:
    """Refuse the argument where it holds indices (:func:`_refuse_indices`), or is named as
    an edge list whose use is not read (:func:`_refuse_edge_list_by_name`)."""
    _refuse_indices(model, source_tree, name, qualname)
    _refuse_edge_list_by_name(name, qualname)


def _taken_as_features(model: nn.Module, strict: _Flow, expression: str, depth: int = 0) -> bool:
    """Whether the argument reaches torch's own layer (or a functional one) ``expression``
    names as itself, in ``strict``'s flow: through a custom layer, only where that layer's
    forward hands it on so too (``self.conv(x, edge_index)`` hands ``edge_index`` to a
    layer's forward that only picks by it: not features)."""
    if expression not in strict.consumers or depth > 4:
        return False
    module = _resolve_module(model, expression)
    if module is None:
        return False
    if not _user_defined(module):
        return True
    parameter = _entry_parameter(module, strict.entries.get(expression, 0))
    tree = _forward_tree(type(module))
    if parameter is None or tree is None:
        return False
    inner = _flow(tree, parameter, module, strict=True, same_layout=True)
    return any(_taken_as_features(module, inner, consumer, depth + 1) for consumer in inner.consumers)


def _refuse_indices(model: nn.Module, source_tree: ast.AST | None, name: str, qualname: str) -> None:
    """Raise :class:`Uninferable` naming the Spec when the argument holds indices into
    another input (a graph's ``edge_index``: ``x[src]``), which reach a layer only through
    what they pick: in forward and the helpers it reaches, itself or through index
    arithmetic (``torch.cat([ei, ei.flip(0)], 1)``, ``ei - 1``), and in the forward of a
    custom layer it is handed to (a GAT layer's); what a submodule returns from it is not it
    (``x, keep = self.patch_drop(x)``)."""
    if source_tree is None:
        return
    plain = _flow(source_tree, name, model, opaque_modules=True)
    whole = [(source_tree, frozenset({name})), *plain.scopes]
    for tree, names, expression in _handed_to_layers(model, plain):
        whole.append((tree, names))
        layer = _resolve_module(model, expression)
        if tree is not None and layer is not None and len(names) == 1:
            # and the helpers that layer hands it to (PyG's GCNConv: propagate(x, edge_index))
            whole += _flow(tree, next(iter(names)), layer, opaque_modules=True).scopes
    indexing = next((use for scope, names in whole if (use := _index_use(scope, names))), None)
    if indexing is not None:
        # an edge list read as its two rows (src, dst = edge_index; edge_index[0]), else one
        # index per row of the input (a graph-id vector, torch_geometric's `batch`)
        rows = any(scope is not None and _taken_apart(scope, n) for scope, names in whole for n in names)
        if any(scope is not None and _stepped(scope, n) for scope, names in whole for n in names):
            # one index per step, stepped through by a loop (a CRF's tags[i], tag ids per
            # step and sample): indices within each sample, no graph
            raise Uninferable(
                f"cannot infer forward argument {name!r} of {qualname} (it holds indices into another "
                f"input, one per step: {indexing}); write dyncheck.Spec({qualname}, inputs={{{name!r}: "
                f"dyncheck.strategies.tensors(shape=('time', 'batch'), dtype=torch.int64, max_value=3)}}) "
                "with its axes in the order forward steps through them, and max_value below the size it indexes"
            )
        shape = "(2, 'edges')" if rows else "('batch',)"
        # ids that sum or pool rows into groups (index_add, scatter): a batch of graphs numbers
        # its graphs in order and skips none (drawn at random, a graph between two others had
        # no nodes, and a readout of its nodes gave NaN)
        grouped = not rows and _GROUPING.search(indexing) is not None
        ordered = ".map(lambda ids: ids.unique(return_inverse=True)[1].sort().values)" if grouped else ""
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {qualname} (it holds indices into another "
            f"input: {indexing}); write dyncheck.Spec({qualname}, inputs={{{name!r}: "
            f"dyncheck.strategies.tensors(shape={shape}, dtype=torch.int64, max_value=3){ordered}}}, "
            f"dims={{'batch': (4, 8)}}, skip={{'batch_invariance': 'samples are coupled through "
            f"{name}'}}), its shape and max_value below the smallest size it indexes"
            + ("; the map numbers the groups in order, none skipped, as a batch of graphs does" if grouped else "")
        )


def _stepped(tree: ast.AST, name: str) -> bool:
    """Whether forward picks ``name[i]`` by the variable of a ``for i in range(...)`` loop
    or comprehension (``tags[i - 1]``): a sequence of steps, not an edge list's two rows or
    a permutation. A loop over the batch (``range(len(x))``, ``range(x.shape[0])``,
    ``range(x.size(0))``, ``range(batch_size)``) picks one index per sample, and is not one."""
    def steps(loop: ast.For | ast.comprehension) -> str | None:
        """The variable of a loop over range(...) not over the batch, else None."""
        if (
            isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call)
            and isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "range"
            and not any(_over_batch(argument) for argument in loop.iter.args)
        ):
            return loop.target.id
        return None

    def picked(body: list[ast.AST], variable: str) -> bool:
        """Whether ``body`` (what runs for each value of ``variable``) reads ``name[variable...]``."""
        return any(
            isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == name
            and not isinstance(node.slice, (ast.Tuple, ast.Slice))
            and any(isinstance(n, ast.Name) and n.id == variable for n in ast.walk(node.slice))
            for part in body for node in ast.walk(part)
        )

    for node in ast.walk(tree):
        # each loop's own body, or comprehension's own element: a name reused by another loop
        # (`for i in range(x.shape[0])` beside `[h(x) for i in range(self.heads)]`) is another index
        if isinstance(node, ast.For) and (variable := steps(node)) is not None and picked(node.body, variable):
            return True
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            produced = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for index, generator in enumerate(node.generators):
                variable = steps(generator)
                later = [part for other in node.generators[index + 1:] for part in (other.iter, *other.ifs)]
                if variable is not None and picked([*produced, *generator.ifs, *later], variable):
                    return True
    return False


#: PyTorch Geometric's name for a graph's edge list, ``[2, edges]`` node indices.
_EDGE_LIST_NAME = "edge_index"


def _refuse_edge_list_by_name(name: str, qualname: str) -> None:
    """Where inference refuses an argument anyway and no index use of it was seen, but it is
    named as PyTorch Geometric names an edge list (its use is inside a layer's message
    passing, code generated at run time): the refusal's Spec says what such a list is,
    node indices of shape ``(2, 'edges')``, rather than a float tensor over the batch."""
    if name != _EDGE_LIST_NAME:
        return
    raise Uninferable(
        f"cannot infer forward argument {name!r} of {qualname} (named like a graph's edge list, node indices "
        f"[2, edges]; no layer gives its shape and its use as indices is not read); write dyncheck.Spec({qualname}, "
        f"inputs={{{name!r}: dyncheck.strategies.tensors(shape=(2, 'edges'), dtype=torch.int64, max_value=3)}}, "
        f"dims={{'batch': (4, 8)}}, skip={{'batch_invariance': 'samples are coupled through {name}'}}), "
        "its max_value below the smallest number of nodes"
    )


def _over_batch(node: ast.AST) -> bool:
    """Whether a ``range`` bound reads the batch size: ``len(x)``, ``x.shape[0]``,
    ``x.size(0)`` or a name like ``batch_size``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "len":
            return True
        if (
            isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "shape"
            and isinstance(sub.slice, ast.Constant) and sub.slice.value == 0
        ):
            return True
        if (
            isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "size"
            and sub.args and isinstance(sub.args[0], ast.Constant) and sub.args[0].value == 0
        ):
            return True
        if isinstance(sub, ast.Name) and BATCH_BOUND.search(sub.id):
            return True
    return False


def _index_use(tree: ast.AST | None, names: frozenset[str]) -> str | None:
    """Where ``names`` (and what forward unpacks or assigns from them) pick elements of
    another tensor -- ``x[src]``, ``out.index_add_(0, dst, ...)`` -- as source text; None
    when they are not used as indices."""
    if tree is None:
        return None
    tainted = set(names)
    for node in ast.walk(tree):  # src, dst = edge_index; row = edge_index[0]
        if isinstance(node, ast.Assign) and _passes(node.value, tainted):
            targets = node.targets
            kind = _sorts(node.value)
            if kind == "argsort":
                continue  # a permutation of the batch, not indices it holds
            if kind == "sort" and len(targets) == 1 and isinstance(targets[0], ast.Tuple) and len(targets[0].elts) == 2:
                targets = [targets[0].elts[0]]  # the sorted values are it; the permutation is not
            tainted.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))

    def data(receiver: ast.AST) -> bool:
        # another tensor forward computes, not the model's own (self.table.weight[ids] is
        # an embedding lookup: token ids, which the vocabulary bounds); what a layer of the
        # model returns is computed (self.fc(x).gather(1, picks))
        root, computed = receiver, False
        while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
            if isinstance(root, ast.Call):
                func = root.func
                computed = computed or (
                    isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
                )
                root = func
            else:
                root = root.value
        own = isinstance(root, ast.Name) and root.id == "self" and not computed
        if (
            isinstance(receiver, ast.Call) and getattr(receiver.func, "attr", None) in _NEW_TENSORS
            and not _mentions_data(getattr(receiver.func, "value", receiver.func), tainted)
            and any(_mentions_data(size, tainted) for size in receiver.args)
        ):
            # a tensor made for them, sized by their values (out.new_zeros(int(batch.max()) +
            # 1, d).index_add(0, batch, h): a sum per graph); not x.new_zeros(x.shape)
            return True
        return not own and not _mentions_data(receiver, tainted)

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _passes(node.slice, tainted) and data(node.value):
            return ast.unparse(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _INDEXING:
            picked = _index_argument(node)
            if picked is not None and _passes(picked[0], tainted) and data(picked[1]):
                return ast.unparse(node)
    return None


#: Index uses that gather rows into groups by id (a graph-id vector's pooling).
_GROUPING = re.compile(r"\b(?:index_add_?|index_reduce_?|scatter\w*|segment\w*)\((?!\s*-?[1-9])")
#: Calls that make a new tensor of the sizes they are given: what indices are put into.
_NEW_TENSORS = frozenset({"new_zeros", "new_ones", "new_full", "new_empty", "zeros", "ones", "full", "empty"})


def _sorts(value: ast.AST) -> str | None:
    """``"sort"`` or ``"argsort"`` where ``value`` sorts what it is called on
    (``lengths.sort(0, descending=True)``, ``x.argsort()``): the indices it gives are a
    permutation, as a sort by length before packing makes (allennlp's
    ``sort_batch_by_length``), not indices the argument holds. None otherwise."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ("sort", "argsort"):
        return value.func.attr
    return None


def _index_argument(call: ast.Call) -> tuple[ast.AST, ast.AST] | None:
    """(the index argument, the tensor it picks from) of an indexing call: ``dst`` and ``out``
    in ``out.index_add_(0, dst, msg)``; ``idx`` and ``x`` in ``torch.gather(x, 1, idx)``. The
    values put in or read (``msg``, ``src`` of ``scatter_reduce``) are not indices."""
    func = call.func
    assert isinstance(func, ast.Attribute)
    name = "indices" if func.attr.startswith("index_put") else "index"
    position = 0 if func.attr.startswith("index_put") else 1
    source: ast.AST | None = func.value
    receiver = ast.unparse(func.value)
    if receiver in ("torch", "torch.Tensor", "Tensor"):
        # the function form (torch.gather(x, 1, idx), torch.Tensor.index_select(x, 0, idx)):
        # the tensor is the first argument, or input=
        source = next((k.value for k in call.keywords if k.arg in ("input", "self")), None)
        if source is None:
            if not call.args:
                return None
            source, position = call.args[0], position + 1
    keyword = next((k.value for k in call.keywords if k.arg == name), None)
    if keyword is not None:
        return keyword, source
    return (call.args[position], source) if len(call.args) > position else None


def _aliases(tree: ast.AST, name: str) -> set[str]:
    """``name`` and the names forward gives it whole (``text = batch__text``)."""
    names = {name}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Name) and node.value.id == name
        ):
            names.add(node.targets[0].id)
    return names


def _helper_handoffs(model: nn.Module, tree: ast.AST, name: str) -> list[tuple[str, ast.AST, str]]:
    """The methods of the model's own class that forward hands ``name`` to whole
    (``self.encode(x)``), each with its source tree and the parameter ``name`` enters as."""
    found = []
    for node in ast.walk(tree):
        called = _self_method(node)
        method = inspect.getattr_static(type(model), called, None) if called is not None else None
        if called is None and _super_forward(node) and _plain_super(node.func.value, type(model)):
            # a subclass's forward that hands its dict on to its parent's (neuralforecast's
            # models, a copy with an entry replaced): the parent's forward reads it by key
            called, method = _SUPER_FORWARD, _parent_forward(type(model))
        if not inspect.isfunction(method):
            continue
        for position, argument in enumerate(node.args):
            if isinstance(argument, ast.Name) and argument.id == name:
                helper = function_tree(method)
                params = [a.arg for a in helper.args.args][1:] if helper is not None else []
                if position < len(params) and all(entry[0] != called for entry in found):
                    found.append((called, helper, params[position]))
    return found


#: How :func:`_helper_handoffs` names a handoff to the parent class's forward.
_SUPER_FORWARD = "super().forward"


def _super_forward(node: ast.AST) -> bool:
    """Whether ``node`` is ``super().forward(...)`` (or ``super(Cls, self).forward(...)``)."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "forward"
        and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "super"
    )


def _plain_super(call: ast.Call, cls: type) -> bool:
    """Whether ``call`` is ``super()``, or ``super(Cls, self)`` naming the class that defines
    ``cls.forward`` (the same parent): not one that skips a level of the hierarchy."""
    if not call.args:
        return True
    owner = next((c for c in cls.__mro__ if "forward" in vars(c)), None)
    return isinstance(call.args[0], ast.Name) and owner is not None and call.args[0].id == owner.__name__


def _parent_forward(cls: type) -> Any:
    """The forward ``super().forward`` calls from ``cls.forward``: the next one in the MRO
    after the class that defines ``cls.forward``."""
    owners = [c for c in cls.__mro__ if "forward" in vars(c)]
    return vars(owners[1])["forward"] if len(owners) > 1 else None


def _self_method(node: ast.AST) -> str | None:
    """The name in a call ``self.<name>(...)``; None for any other node."""
    if (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    ):
        return node.func.attr
    return None


def _mapping_keys(tree: ast.AST, name: str, handed: frozenset[str] = frozenset()) -> list[str] | None:
    """The string keys ``name`` is read with (``batch["x"]``, or through a name it is given
    whole, ``text = batch["text"]`` then ``text["input_ids"]``), when forward reads it in
    no other way (entries it writes before reading them, ``.update(...)`` and handing it
    back, ``return features``, are no other way): a dict of inputs, as a training loop's
    batch. None otherwise."""
    names = _aliases(tree, name)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: list[tuple[int, int, str]] = []
    written: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load)):
            continue
        parent = parents.get(id(node))
        if (
            node.id == name and isinstance(parent, ast.Assign) and parent.value is node and len(parent.targets) == 1
            and isinstance(parent.targets[0], ast.Name) and parent.targets[0].id in names
        ):
            continue  # handed to an alias whole (text = batch["text"]), read through it
        if isinstance(parent, ast.Call) and node in parent.args and (
            _self_method(parent) in handed or (_SUPER_FORWARD in handed and _super_forward(parent))
        ):
            continue  # handed whole to a helper method that reads it by key (see _helper_handoffs)
        copy_of = parents.get(id(parent))
        copied = _copy_with_entries(copy_of, names)
        if copied is not None and copied[0] is node:
            # name = {**name, "y": ...}: a copy with entries of its own, rebound to the name
            # (read on through it)
            for key in copied[1]:
                written.setdefault(key, (copy_of.end_lineno, copy_of.end_col_offset))
            continue
        if isinstance(parent, ast.Return) or (
            isinstance(parent, ast.Attribute) and parent.attr == "update" and parent.value is node
        ):
            # handed back, or given entries of its own: sentence-transformers' features dict,
            # each module adding its outputs to the inputs it read
            continue
        key = getattr(parent, "slice", None) if isinstance(parent, ast.Subscript) and parent.value is node else None
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        if not isinstance(parent.ctx, ast.Load):
            # features["embedding"] = ...: an entry forward adds, stored after the statement's
            # value is read (features["h"] = self.lin(features["h"]) reads it first)
            statement = parent
            while statement is not None and not isinstance(statement, ast.stmt):
                statement = parents.get(id(statement))
            at = (statement.end_lineno, statement.end_col_offset) if statement is not None else (node.lineno, 0)
            written.setdefault(key.value, at)
            continue
        found.append((node.lineno, node.col_offset, key.value))
    read = {}
    for line, column, key in sorted(found):
        read.setdefault(key, (line, column))
    # in source order, each an input where it is read before forward first writes it
    keys = [key for key, at in read.items() if key not in written or at < written[key]]
    return keys or None


def _copy_with_entries(statement: ast.AST | None, names: set[str]) -> tuple[ast.Name, list[str]] | None:
    """(the dict copied, the keys the copy sets) of ``name = {**name, "k": ...}`` or ``name =
    dict(name, k=...)``, ``name`` one of ``names``; None for any other statement."""
    if not _rebinds(statement, names):
        return None
    value = statement.value
    if isinstance(value, ast.Dict):
        source = next((
            v for k, v in zip(value.keys, value.values) if k is None and isinstance(v, ast.Name) and v.id in names
        ), None)
        keys = [k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    elif (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict"
        and value.args[:1] and isinstance(value.args[0], ast.Name) and value.args[0].id in names
    ):
        source, keys = value.args[0], [k.arg for k in value.keywords if k.arg is not None]
    else:
        return None
    return None if source is None else (source, keys)


def _rebinds(statement: ast.AST | None, names: set[str]) -> bool:
    """Whether ``statement`` assigns its value to one of ``names`` alone."""
    return (
        isinstance(statement, ast.Assign) and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id in names
    )


class _Entries(ast.NodeTransformer):
    """``batch["x"]`` (or ``b["x"]`` after ``b = batch``) rewritten as the name ``batch__x``,
    so each entry is followed alone."""

    def __init__(self, name: str, names: dict[str, str], aliases: set[str] | None = None) -> None:
        self.name, self.names = name, names
        self.aliases = aliases or {name}

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if (
            isinstance(node.value, ast.Name) and node.value.id in self.aliases
            and isinstance(node.slice, ast.Constant) and node.slice.value in self.names
        ):
            return ast.copy_location(ast.Name(self.names[node.slice.value], ast.Load()), node)
        return self.generic_visit(node)


_A_DICT = "a dict of inputs, read by key: "


def _spelled(text: str, name: str, names: dict[str, str]) -> str:
    """``text`` with the rewrite's names for the entries of ``name`` (``batch__x``, quoted
    or not) spelled as forward writes them, ``batch['x']``."""
    for key, internal in names.items():
        spelled = f"{name}[{key!r}]"
        text = re.sub(rf"'{re.escape(internal)}'|\b{re.escape(internal)}\b", lambda _: spelled, text)
    return text


def _dict_refusal(
    model: nn.Module, name: str, keys: list[str], entries: dict[str, Any], refused: dict[str, str]
) -> str:
    """The refusal of a dict of inputs: why its first refused entry cannot be inferred, and
    a Spec that draws the whole dict, each entry inferred filled in and each refused one
    left as ``...``."""

    def shown(key: str) -> str:
        value = entries.get(key)
        if key in refused or value is None:
            return f"{key!r}: ..."
        function = getattr(getattr(value, "function", None), "__name__", None)
        prefix = "dyncheck.strategies." if function in dst.__all__ else "hypothesis.strategies."
        return f"{key!r}: {prefix}{value!r}"

    first, *others = refused
    also = f" (nor {', '.join(f'{name}[{key!r}]' for key in others)})" if others else ""
    return (
        f"{refused[first]}{also}; a dict of inputs: write dyncheck.Spec({type(model).__qualname__}, inputs={{{name!r}: "
        f"hypothesis.strategies.fixed_dictionaries({{{', '.join(shown(key) for key in keys)}}})}})"
    )


def _mapping(
    model: nn.Module,
    name: str,
    keys: list[str],
    tree: ast.AST,
    extra: tuple[float, ...],
    lengths: str | None,
    siblings: list[str] | None = None,
    helpers: list[tuple[ast.AST, str, list[str]]] | None = None,
) -> Inferred:
    """A dict of inputs (``forward(self, batch)`` reading ``batch["x"]``): each entry
    inferred as an argument of its own would be, drawn as ``fixed_dictionaries``. An entry
    read only in a helper method forward hands the dict to (``helpers``: its tree, the
    parameter the dict enters as, the keys only it reads) is inferred from that method's code."""
    from dyncheck.infer.tokens import infer_attention_mask

    names = {key: f"{name}__" + re.sub(r"\W", "_", key) for key in keys}
    rewritten = _Entries(name, names, _aliases(tree, name)).visit(copy.deepcopy(tree))
    elsewhere: dict[str, ast.AST] = {}  # key -> the helper that reads it, rewritten
    for helper, param, helper_keys in helpers or ():
        helper_names = {key: names[key] for key in helper_keys}
        rewritten_helper = _Entries(param, helper_names, _aliases(helper, param)).visit(copy.deepcopy(helper))
        elsewhere.update(dict.fromkeys(helper_keys, rewritten_helper))
    # Spec(lengths="batch['n_valid']") names an entry: read under its name in the rewrite.
    declared = lengths_slot(lengths) if lengths is not None else None
    if declared is not None and declared[0] == name and declared[1] in names:
        lengths = names[declared[1]]
    # Lengths beside an entry: another entry, or an argument (or an entry) further out.
    beside = [*names.values(), *(siblings or [])]
    entries, notes = {}, {}
    unmasked = None
    refused: dict[str, str] = {}  # key -> why, said at once with the entries inferred beside it
    for key in keys:
        entry = inspect.Parameter(names[key], inspect.Parameter.POSITIONAL_OR_KEYWORD)
        where = elsewhere.get(key, rewritten)
        try:
            found = infer_input(model, names[key], entry, extra, lengths, tree=where, siblings=beside)
        except Uninferable as exc:
            why = _spelled(str(exc), name, names).split(";")[0]
            if key != "attention_mask":
                refused[key] = why
            else:  # the mask of the token ids, inferred below, if any
                unmasked = why
            found = None
        entries[key] = found.value if found is not None else None
        notes[key] = _spelled(found.why, name, names) if found is not None else ""
    if refused:
        # The whole dict, the entries inferred filled in: pasted with one entry only, the
        # strategy replaced the dict and every check raised KeyError on the others.
        raise Uninferable(_dict_refusal(model, name, keys, entries, refused)) from None
    if "attention_mask" in entries:
        # As for an argument: batch["attention_mask"] beside batch-first token ids is their
        # mask (1 at tokens, 0 at right padding), as a tokenizer's batch holds it.
        tokens = {key: value for key, value in entries.items() if key != "attention_mask"}
        mask = infer_attention_mask({"attention_mask": None}, tokens, {})  # type: ignore[dict-item]
        if mask is not None:
            entries["attention_mask"], notes["attention_mask"] = mask.value, mask.why
        elif unmasked is not None:
            raise Uninferable(_dict_refusal(model, name, keys, entries, {"attention_mask": unmasked})) from None
    parts = []
    for key, why in notes.items():
        if why.startswith(_A_DICT):  # a dict inside: its entries' notes under both keys
            why = why.removeprefix(_A_DICT).replace("\x00[", f"\x00[{key!r}][")
            parts.append(why.removeprefix("\x00"))
        else:
            parts.append(f"[{key!r}] {why}")
    # A NUL before each entry's note until the outermost dict joins them (a note may hold "; ").
    return Inferred(st.fixed_dictionaries(entries), _A_DICT + "\x00" + "; \x00".join(parts))


def _tensor_list(annotation: Any) -> bool:
    """Whether ``annotation`` says a list of tensors (``list[Tensor]``, ``List[Tensor]``,
    ``Sequence[Tensor]``, or a union with one: NaViT's ``List[Tensor] | List[List[Tensor]]``):
    variable-length sequences for ``pack_sequence``/``pad_sequence``."""
    import collections.abc
    import types

    import torch

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_tensor_list(member) for member in typing.get_args(annotation))
    return origin in (list, collections.abc.Sequence) and typing.get_args(annotation) == (torch.Tensor,)


def _embedded_columns(model: nn.Module, tree: ast.AST, name: str) -> Inferred | None:
    """An argument whose columns each go to their own Embedding of a container, as tabular
    models embed categorical columns (``[e(x_cat[:, i]) for i, e in enumerate(self.embeds)]``,
    or ``self.embeds[i](x_cat[:, i])`` over ``range(len(self.embeds))``): int64 ``[batch,
    members]``, every column below the smallest vocabulary. None for any other argument."""
    found = _columns(model, tree, name)
    if found is None:
        return None
    members, vocabulary, container, bags = found
    if bags:
        # DLRM's sparse features [batch, fields, bag]: field k of each sample a bag of ids,
        # picked by the loop's index into an EmbeddingBag of its own (2-D: one bag a row)
        return Inferred(
            dst.tensors(shape=("batch", members, "time"), dtype=torch.long, min_value=0, max_value=vocabulary - 1),
            f"each of its columns is a bag of ids for its own member of {container} ({members} EmbeddingBags): "
            f"[batch, {members}, time], each id below the smallest vocabulary ({vocabulary})",
        )
    return Inferred(
        dst.tensors(shape=("batch", members), dtype=torch.long, min_value=0, max_value=vocabulary - 1),
        f"each of its columns is embedded by its own member of {container} ({members} Embeddings): "
        f"integer categories, one column a member, each below the smallest vocabulary ({vocabulary})",
    )


def embedded_columns_found(module: nn.Module, tree: ast.AST, name: str) -> _Found | None:
    """:func:`_embedded_columns` as what a custom layer takes (rtdl's ``CategoricalEmbeddings``,
    handed the categorical columns by the model around it)."""
    found = _columns(module, tree, name)
    if found is None or found[3]:
        return None
    members, vocabulary, container, _ = found
    return _Found(
        ("batch", members),
        lambda shape: dst.tensors(shape=shape, dtype=torch.long, min_value=0, max_value=vocabulary - 1),
        f"{type(module).__name__}: each column by its own member of {container} ({members} Embeddings), "
        f"integer categories below the smallest vocabulary ({vocabulary})",
    )


#: Reads of a tensor's size, rank, dtype or device: not of its values.
_SIZE_READS = frozenset({"shape", "ndim", "dtype", "device", "size", "dim"})


def _first_rebinding_end(tree: ast.AST, name: str) -> int | None:
    """The last line of the first statement that assigns ``name`` anew (``x = x +
    self.bias``), or None: reads up to it are of the argument."""
    return min((
        (statement.lineno, statement.end_lineno or statement.lineno) for statement in ast.walk(tree)
        if isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        and any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) for n in ast.walk(statement))
    ), default=(None, None))[1]


def _columns(model: nn.Module, tree: ast.AST, name: str) -> tuple[int, int, str, bool] | None:
    """(members, the smallest vocabulary, the container, whether its members are
    EmbeddingBags) for :func:`_embedded_columns`."""
    # Only when the columns are all forward reads of its values: continuous columns beside
    # them (x[:, 2:].float()), or the whole of it read elsewhere, give it another width; its
    # shape and number of dimensions (checked before the loop, as rtdl does) are not values.
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    # until forward assigns the name anew (x = torch.stack([...]); x = x + self.bias)
    rebound = _first_rebinding_end(tree, name)
    uses = sum(
        isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
        and (rebound is None or n.lineno <= rebound)
        and not (isinstance(parents.get(id(n)), ast.Attribute) and parents[id(n)].attr in _SIZE_READS)
        for n in ast.walk(tree)
    )
    # local names holding a container's length (n_features = len(self.embeddings))
    lengths = {
        node.targets[0].id: node.value.args[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) and node.value.func.id == "len"
        and node.value.args
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            loops, bodies = [node], node.body
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops = node.generators
            bodies = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        else:
            continue
        for loop in loops:
            found = _columns_loop(loop.target, loop.iter, lengths)
            if found is None:
                continue
            index, member, container = found
            calls = [
                call for body in bodies for call in ast.walk(body)
                if isinstance(call, ast.Call) and call.args and _column_of(call.args[0], name, index)
                and (
                    (isinstance(call.func, ast.Name) and call.func.id == member)
                    or (member is None and _self_module(call.func) == f"{container}.*")
                )
            ]
            embeddings = _resolve_module(model, container) if calls and uses == len(calls) else None
            members = list(embeddings.children()) if embeddings is not None else []
            bags = bool(members) and all(isinstance(m, nn.EmbeddingBag) for m in members)
            if not members or not (bags or all(isinstance(m, nn.Embedding) for m in members)):
                continue
            return len(members), min(m.num_embeddings for m in members), container, bags
    return None


def _columns_loop(
    target: ast.AST, iterated: ast.AST, lengths: dict[str, ast.AST] | None = None,
) -> tuple[str, str | None, str] | None:
    """(the index's name, the member's name or None, the container's name) of a loop over a
    container's members by index: ``for i, e in enumerate(self.embeds)`` or ``for i in
    range(len(self.embeds))``, or ``range(n)`` where ``lengths`` says ``n = len(self.embeds)``."""
    if not (isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name) and iterated.args):
        return None
    if (
        iterated.func.id == "enumerate" and isinstance(target, ast.Tuple) and len(target.elts) == 2
        and all(isinstance(e, ast.Name) for e in target.elts) and len(iterated.args) == 1 and not iterated.keywords
    ):
        container = _self_module(iterated.args[0])
        return (target.elts[0].id, target.elts[1].id, container) if container else None
    counted = iterated.args[-1]
    if isinstance(counted, ast.Name) and counted.id in (lengths or {}):
        counted = ast.Call(ast.Name("len", ast.Load()), [lengths[counted.id]], [])
    if (
        iterated.func.id == "range" and isinstance(target, ast.Name) and isinstance(counted, ast.Call)
        and isinstance(counted.func, ast.Name) and counted.func.id == "len" and counted.args
    ):
        container = _self_module(counted.args[0])
        return (target.id, None, container) if container else None
    return None


def _picked_columns(model: nn.Module, tree: ast.AST, name: str) -> Inferred | None:
    """A table whose every use in forward picks columns by number (``x[:, 0]``,
    ``x[:, 2:5]``), some into Embeddings of their own (``self.emb_a(x[:, 0].long())``),
    as hand-written tabular models take categorical ids beside continuous values: ``[batch,
    columns]`` floats from 0 to below the smallest vocabulary among them, which a cast
    truncates to valid ids. None for any other argument, where no picked column reaches an
    Embedding, where one reaches it as a window of columns, or where every pick does (token
    ids: a CLS step and a window, ``ids[:, 0]`` beside ``ids[:, 1:6]``, or token and segment
    ids stacked as ``[batch, 2, time]``: the table is told by a continuous column beside)."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    picks: list[tuple[int, int, ast.AST]] = []  # (first column, end, the pick)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.attr in _SIZE_READS:
            continue
        span = _column_span(parent) if isinstance(parent, ast.Subscript) and parent.value is node else None
        if span is None:
            return None  # read whole, or otherwise: not a table of picked columns
        picks.append((*span, parent))
    vocabularies, embedded = [], 0
    for start, end, pick in picks:
        outer = pick
        while isinstance(parents.get(id(outer)), ast.Attribute) and parents[id(outer)].attr in ("long", "int", "float", "to"):
            outer = parents[id(parents[id(outer)])]  # the cast's call
        call = parents.get(id(outer))
        if isinstance(call, ast.Call) and call.args and call.args[0] is outer:
            layer = _resolve_module(model, _self_module(call.func) or "")
            if isinstance(layer, nn.Embedding):
                if end != start + 1:
                    return None  # a window of ids, not one category
                vocabularies.append(layer.num_embeddings)
                embedded += 1
    if not vocabularies or embedded == len(picks):
        return None
    columns = max(end for _, end, _ in picks)
    vocabulary = min(vocabularies)
    return Inferred(
        dst.tensors(shape=("batch", columns), min_value=0.0, max_value=float(vocabulary - 1)),
        f"a table of {columns} columns picked by number, {embedded} of them embedded by Embeddings of their own: "
        f"values from 0 to {vocabulary - 1} (below the smallest vocabulary, {vocabulary}, where cast to ids)",
    )


def _field_offsets(model: nn.Module, tree: ast.AST, name: str) -> Inferred | None:
    """Categorical fields looked up in one shared table, each shifted to its own rows by an
    offsets array the model holds (pytorch-fm's ``FeaturesEmbedding``: ``self.embedding(x +
    x.new_tensor(self.offsets).unsqueeze(0))``, or ``x + self.offsets`` of a buffer): ``[batch,
    fields]`` integers, each below the smallest field's rows, so that every field's id stays
    in its own part of the table. None for any other argument: read otherwise than so (its
    size aside), or offsets that are not ``0`` then ascending within the table."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    # until forward binds the name anew (x = x + offsets: then x holds the table's rows)
    rebound = _first_rebinding_end(tree, name)
    shifts = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)):
            continue
        if rebound is not None and node.lineno > rebound:
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.attr in _SIZE_READS | _SIZE_ONLY:
            continue  # its size, or its dtype and device for a tensor made there (x.new_tensor(offsets))
        if not (isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add) and parent.left is node):
            return None
        shifts.append(parent)
    if len(shifts) != 1:
        return None
    shift = shifts[0]
    offsets = _offsets_array(model, shift.right)
    if offsets is None:
        return None
    # the shifted ids go to an Embedding: handed to it there, or through a name they are bound to
    taken = parents.get(id(shift))
    if isinstance(taken, ast.Assign) and len(taken.targets) == 1 and isinstance(taken.targets[0], ast.Name):
        bound, after = taken.targets[0].id, taken.end_lineno or taken.lineno
        taken = next((
            parents.get(id(n)) for n in sorted(
                (n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == bound and isinstance(n.ctx, ast.Load)),
                key=lambda n: (n.lineno, n.col_offset),
            )
            if n.lineno > after
        ), None)
        operand: ast.AST | None = next((a for a in getattr(taken, "args", [])[:1] if isinstance(a, ast.Name)), None)
    else:
        operand = shift
    if not (isinstance(taken, ast.Call) and operand is not None and taken.args[:1] == [operand]):
        return None
    table = _resolve_module(model, _self_module(taken.func) or "")
    if not isinstance(table, nn.Embedding):
        return None
    rows = [*offsets[1:], table.num_embeddings]
    sizes = [b - a for a, b in zip(offsets, rows)]
    if offsets[0] != 0 or min(sizes) < 1:
        return None
    smallest = min(sizes)
    return Inferred(
        dst.tensors(shape=("batch", len(offsets)), dtype=torch.long, min_value=0, max_value=smallest - 1),
        f"{len(offsets)} fields, each shifted to its own rows of {_consumer_name(_self_module(taken.func) or '')} "
        f"by the model's offsets {offsets}: integers below the smallest field's {smallest} rows",
    )


def _offsets_array(model: nn.Module, node: ast.AST) -> list[int] | None:
    """The integers of a 1-D offsets array the model holds that ``node`` reads
    (``self.offsets``, as a buffer or a numpy array, through ``x.new_tensor(...)``,
    ``torch.as_tensor(...)``, ``.unsqueeze(0)`` or ``[None]``); None for anything else."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "unsqueeze":
            node = node.func.value
        elif isinstance(node, ast.Subscript) and _leading_axis_added(node.slice):
            node = node.value  # offsets[None], offsets[None, :]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("new_tensor", "as_tensor", "tensor", "from_numpy") and len(node.args) == 1
        ):
            node = node.args[0]
        else:
            break
    path = _self_module(node) if isinstance(node, ast.Attribute) else None
    if path is None:
        return None
    owner_path, _, attribute = path.rpartition(".")
    owner = _resolve_module(model, owner_path) if owner_path else model
    value = getattr(owner, attribute, None) if owner is not None else None
    try:
        values = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    if values.dim() != 1 or values.numel() < 2 or values.dtype.is_floating_point or values.dtype == torch.bool:
        return None
    found = [int(v) for v in values.tolist()]
    return found if all(a < b for a, b in zip(found, found[1:])) else None


def _leading_axis_added(index: ast.AST) -> bool:
    """Whether a subscript only puts one axis before all of a 1-D array's (``[None]``,
    ``[None, :]``): not a pick (``[1]``), nor an axis after it (``[None, :, None]``)."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    kinds = [
        "new" if isinstance(p, ast.Constant) and p.value is None
        else "all" if isinstance(p, ast.Slice) and p.lower is None and p.upper is None and p.step is None
        else "other"
        for p in parts
    ]
    return kinds in (["new"], ["new", "all"])


def _column_span(node: ast.Subscript) -> tuple[int, int] | None:
    """(first column, end) of ``x[:, k]`` or ``x[:, a:b]`` with constant bounds; None otherwise."""
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
    if len(parts) != 2 or not (
        isinstance(parts[0], ast.Slice) and parts[0].lower is None and parts[0].upper is None and parts[0].step is None
    ):
        return None
    column = parts[1]
    if isinstance(_number(column), int) and _number(column) >= 0:
        return _number(column), _number(column) + 1
    if isinstance(column, ast.Slice) and column.step is None:
        lower = 0 if column.lower is None else _number(column.lower)
        upper = _number(column.upper) if column.upper is not None else None
        if isinstance(lower, int) and isinstance(upper, int) and 0 <= lower < upper:
            return lower, upper
    return None


def _column_of(node: ast.AST, name: str, index: str) -> bool:
    """Whether ``node`` is column ``index`` of ``name``: ``name[:, index]`` or ``name[...,
    index]``, cast or not (``.long()``, ``.int()``, ``.to(...)``)."""
    while (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("long", "int", "to")
    ):
        node = node.func.value
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == name):
        return False
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
    every = len(parts) == 2 and (
        (isinstance(parts[0], ast.Slice) and parts[0].lower is None and parts[0].upper is None and parts[0].step is None)
        or (isinstance(parts[0], ast.Constant) and parts[0].value is Ellipsis)
    )
    return every and isinstance(parts[1], ast.Name) and parts[1].id == index


def _packed(
    annotation: Any, name: str, model: nn.Module, consumers: Sequence[str], scopes: Sequence[tuple[Any, Any]],
) -> str | None:
    """Why the argument is a ``PackedSequence``, or None: its annotation; forward reading a
    field only a pack has (``packed.batch_sizes``, ``packed._replace(...)``); or, where a
    recurrent layer takes it, a name like ``packed`` or a forward that pads the layer's
    output back (``pad_packed_sequence``) and packs nothing itself."""
    if annotation is nn.utils.rnn.PackedSequence:
        return "annotated PackedSequence"
    if annotation is not inspect.Parameter.empty:
        return None
    recurrent = next((e for e in consumers if isinstance(_resolve_module(model, e), nn.RNNBase)), None)
    if recurrent is not None and _PACKED_NAME.search(name):
        return f"named like packed sequences, and {_consumer_name(recurrent)} takes them"
    fields, packs, pads = _pack_use(scopes)
    if fields:
        return f"forward reads its {fields[0]}, which only a PackedSequence has"
    if recurrent is not None and pads and not packs:
        return (
            f"{_consumer_name(recurrent)} takes it as it is, and forward pads the output back with "
            "pad_packed_sequence without packing anything itself"
        )
    return None


#: The fields of a PackedSequence a tensor does not have (``data`` it has).
_PACK_FIELDS = ("batch_sizes", "sorted_indices", "unsorted_indices", "_replace")


def _pack_use(scopes: Sequence[tuple[Any, Any]]) -> tuple[list[str], bool, bool]:
    """(the pack-only fields read on the argument, whether the code packs sequences itself,
    whether it calls ``pad_packed_sequence``), from forward's source and every helper the
    argument is handed to (``scopes``: each source with the argument's names there)."""
    fields: list[str] = []
    packs = pads = False
    for tree, names in scopes:
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
                if node.attr in _PACK_FIELDS and node.attr not in fields:
                    fields.append(node.attr)
            elif isinstance(node, ast.Call):
                function = node.func
                called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
                packs = packs or called in ("pack_padded_sequence", "pack_sequence")
                pads = pads or called == "pad_packed_sequence"
    return fields, packs, pads


def _packed_sequences(strategy: Any, shape: Any, why: str, name: str, qualname: str) -> Inferred:
    """An argument that takes a ``PackedSequence`` whose consumer takes ``shape`` (the
    sequences padded, or their token ids): ``"batch"`` sequences of their own lengths,
    packed."""
    from dyncheck.examples import strategy_arguments

    if "batch" not in shape or "time" not in shape:
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {qualname} (a PackedSequence; its consumer takes "
            f"{list(shape)}, not sequences); write dyncheck.Spec({qualname}, inputs={{{name!r}: "
            "dyncheck.strategies.packed_sequences(feature_shape=(...))})"
        )
    features = [d for d in shape if d not in ("batch", "time")]
    kwargs = {k: v for k, v in strategy_arguments(strategy).items() if k in ("dtype", "min_value", "max_value")}
    # a pack has no time axis to put first: the layer's batch_first says nothing of it
    why = re.sub(re.escape(TIME_MAJOR_NOTE) + r"[^;]*", "", why)
    return Inferred(
        dst.packed_sequences(feature_shape=tuple(features), **kwargs),
        f"{why}: one sequence of its own length per sample, packed by pack_sequence(..., enforce_sorted=False)",
    )


def _sequence_list(strategy: Any, shape: Any, why: str, name: str, qualname: str) -> Inferred:
    """An argument annotated as a list of tensors whose consumer takes ``shape`` (the
    sequences padded or packed): a list of ``"batch"`` sequences of their own lengths."""
    from dyncheck.examples import strategy_arguments

    features = [d for d in shape if d not in ("batch", "time")]
    if "batch" not in shape or "time" not in shape or [d for d in shape if d != "batch"][0] != "time":
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {qualname} (annotated as a list of tensors; "
            f"its consumer takes {list(shape)}, not sequences); write dyncheck.Spec({qualname}, "
            f"inputs={{{name!r}: hypothesis.strategies.lists(dyncheck.strategies.tensors(shape=...))}})",
            shape=tuple(shape),
        )
    kwargs = {k: v for k, v in strategy_arguments(strategy).items() if k in ("dtype", "min_value", "max_value")}
    return Inferred(
        dst.sequence_lists(feature_shape=tuple(features), **kwargs),
        f"{why}; annotated as a list of tensors: one sequence of its own length per sample",
    )


def _in_range(tree: ast.AST, name: str) -> bool:
    """Whether ``name`` appears in a ``range(...)`` call: a loop count (a decoder's steps,
    whose position table ``self.pos[:steps]`` is no width to run every step of)."""
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
        and any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))
        for node in ast.walk(tree)
    )


#: The most a count that slices a weight is drawn up to: a width of a few dozen channels runs
#: each, a table of 512 positions is not walked step by step.
_SLICED_MOST = 32


def _slice_bound(model: nn.Module, tree: ast.AST, tainted: set[str]) -> tuple[int, str] | None:
    """(the largest size, at most :data:`_SLICED_MOST`, the weight) where an argument, or a
    value computed from it (the names ``tainted`` its flow through ``tree`` found), ends a
    slice of one of the model's own tensors along an axis (``self.w1[:k, :]``,
    ``self.w2[:, :k]``, ``self.weight[:k]``): how many of its rows or columns run. None
    where it ends no such slice."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)):
            continue
        owner = node.value.value
        if not (isinstance(owner, ast.Name) and owner.id == "self"):
            continue
        tensor = getattr(model, node.value.attr, None)
        if not isinstance(tensor, torch.Tensor):
            continue
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for axis, part in enumerate(parts):
            if (
                isinstance(part, ast.Slice) and part.lower is None and isinstance(part.upper, ast.Name)
                and part.upper.id in tainted and axis < tensor.dim()
            ):
                found.append((min(int(tensor.shape[axis]), _SLICED_MOST), f"self.{node.value.attr}"))
    return max(found) if found else None


def _reads(tree: ast.AST, name: str) -> bool:
    """Whether forward's source reads ``name`` anywhere (hands it on, indexes it, calls a
    method of it, passes it to a helper): any load of the name."""
    return any(isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load) for node in ast.walk(tree))


def _smallest_table(model: nn.Module, flow: _Flow, found: _Found) -> _Found:
    """The ids of a table whose columns each go to an Embedding of their own
    (``self.weekday(x[..., 0])``, ``self.store(x[..., 1])``): drawn below the smallest
    vocabulary, not the first table's (each column's own range cannot be drawn)."""
    tables = [
        (module.num_embeddings, expression, candidate) for expression in flow.picked
        if isinstance(getattr(module := _resolve_module(model, expression), "num_embeddings", None), int)
        and (candidate := _input_for_module(module, depth=0, entry=flow.entries.get(expression, 0))) is not None
        and candidate.tokens and candidate.shape == found.shape
    ]
    if len(tables) < 2:
        return found
    size, smallest, candidate = min(tables, key=lambda table: table[0])
    return candidate._replace(
        note=f"{found.note}; its columns go to {len(tables)} tables, ids below the smallest, {smallest}'s {size}"
    )


def _shared_features(
    model: nn.Module, name: str, shape: Any, joined: tuple[tuple[str, ...], int] | None,
    siblings: list[str] | None = None,
) -> tuple[Any, str] | None:
    """``shape`` with this argument's share of the last axis, when the consumer takes it
    concatenated with other forward arguments, or with what a submodule of a known width
    returns, along that axis (``torch.cat([x, y], -1)``, ``torch.cat([self.emb(y), x], -1)``):
    the features the submodules do not take, shared evenly between the arguments when the
    size divides, with a note saying so; None when it is not so concatenated. Raises
    :class:`Uninferable` when the size does not divide."""
    if joined is None or not shape or not isinstance(shape[-1], int):
        return None
    names, axis = joined
    if name not in names or axis not in (-1, len(shape) - 1):
        return None
    modules = [n[len(MODULE_PART):] for n in names if n.startswith(MODULE_PART)]
    names = tuple(n for n in names if not n.startswith(MODULE_PART))
    if not set(names) <= {*inspect.signature(model.forward).parameters, *(siblings or ())}:
        return None  # a part computed in forward: its size is not known here (an entry of
        # a dict of inputs is one of its own, a sibling)
    widths = [output_width(_resolve_module(model, m)) for m in modules]
    if any(w is None for w in widths):
        return None
    size, parts = shape[-1] - sum(widths), len(names)
    others = ", ".join([*(n for n in names if n != name), *(f"self.{m}(...) ({w} features)" for m, w in zip(modules, widths))])
    if size < parts or size % parts:
        # Any split runs (the layer sees only the sum), so calling the model cannot tell
        # which one is meant: the user's spec says.
        lead = "".join(f"{d!r}, " for d in shape[:-1])
        sizes = ["A", f"{size} - A"] if len(names) == 2 else [f"A{i}" for i in range(len(names))]
        shown = ", ".join(f"{n!r}: tensors(shape=({lead}{s}))" for n, s in zip(names, sizes))
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {type(model).__qualname__} (concatenated with {others} "
            f"along the last axis into a layer of {shape[-1]} features, "
            + (f"{size} of them left to {len(names)} arguments, which do not split evenly" if modules
               else f"which do not split evenly between {len(names)}")
            + f"); write dyncheck.Spec({type(model).__qualname__}, inputs={{{shown}}}) with the "
            f"sizes meant, adding up to {size}"
        )
    if modules:
        share = "" if parts == 1 else f"{SHARE_NOTE}{size // parts} of "
        note = f"concatenated with {others} along the last axis: {share}the other {size} of {shape[-1]}"
    else:
        note = f"concatenated with {others} along the last axis: {EVEN_SHARE.format(share=size // parts, total=size)}"
    return (*shape[:-1], size // parts), note


def _unreduced(shape: Any, axis: int | None) -> Any:
    """``shape`` with the axis a reduction took away put back as ``"time"`` (where the
    consumer's input lacks it: a layer over ``x.mean(1)`` says nothing of axis 1); None
    when there is no such axis, or no place or name for it."""
    if axis is None or "time" in shape:
        return None
    index = axis if axis >= 0 else len(shape) + 1 + axis
    if not 0 <= index <= len(shape):
        return None
    return (*shape[:index], "time", *shape[index:])


def _in_scopes(analysis: Any, scopes: list[tuple[Any, frozenset[str]]]) -> list[Any]:
    """What ``analysis(tree, name)`` finds in every scope, in order, without repeats."""
    found: list[Any] = []
    for tree, names in scopes:
        for name in sorted(names):
            found += [value for value in analysis(tree, name) if value not in found]
    return found


def _consumer_name(expression: str) -> str:
    """``fc1``; ``super().forward`` when the model's torch parent consumes it."""
    return expression or "super().forward"


#: The note of an input drawn time-major by :func:`_stepped_in_layers`, which resolution
#: confirms by calling the model (``dyncheck.target._confirm_drawn_sequence``).
STEPPED_LAYER_NOTE = re.compile(r"; a sequence: [^;]+?, which it reaches, carries a state through axis 0 ")


def _stepped_in_layers(model: nn.Module, flow: _Flow, later: list[str]) -> tuple[str, str] | None:
    """(the step, the layer) where one of ``later`` (consumers after the first), a custom
    layer, runs a loop carrying a state through axis 0 of what it is handed (norse's LIF:
    ``for ts in range(x.shape[0]): z, s = step(x[ts], s)``); None where none does."""
    for inner_tree, names, expression in _handed_to_layers(model, flow):
        inner = _submodule(model, expression) if expression in later else None
        if inner_tree is None or inner is None:
            continue
        found = _stepped_in_code(_flow(inner_tree, next(iter(names)), inner))
        if found is not None and found[0] == 0:
            return found[1], _consumer_name(expression)
    return None


def _handed_to_layers(model: nn.Module, flow: _Flow | None) -> list[tuple[ast.AST | None, frozenset[str], str]]:
    """The forwards of the custom layers ``flow``'s argument is handed to, each with the
    name the argument has there and the layer's name in the model."""
    found = []
    for expression in flow.consumers if flow is not None else []:
        inner = _resolve_module(model, expression)
        if inner is not None and _user_defined(inner):
            parameter = _entry_parameter(inner, flow.entries.get(expression, 0))
            if parameter is not None:
                found.append((_forward_tree(type(inner)), frozenset({parameter}), expression))
    return found


#: What a note says of an input given an even share of a layer's features (a guess: the
#: model is called on it at resolution, and the sizes are probed where it raises).
SHARE_NOTE = "an even share, "
#: The whole of that note for an input concatenated with other forward arguments into one
#: layer (resolution tries other splits where this one raises).
EVEN_SHARE = SHARE_NOTE + "{share} of {total} features (give other sizes with Spec(inputs=...))"

#: What the note of an input read from a layer that takes another layer's output of it says.
INDIRECT_NOTE = "; read where a later layer takes what "


def _weight_rows(
    model: nn.Module, source_tree: ast.AST | None, name: str, flow: _Flow | None
) -> tuple[int, str] | None:
    """(rows, the weight's name) where forward, or a custom layer it hands the argument to,
    picks rows of one of the model's own weights by it (``self.A[adapter_ids]``: a mixture of
    adapters, one per sample; or by one of its elements, ``self.A[adapter_ids[0]]``); the
    fewest rows where several are picked from.
    None when it picks none."""
    scopes = [(source_tree, frozenset({name}), "")] if source_tree is not None else []
    scopes += _handed_to_layers(model, flow)
    found = []
    for tree, names, prefix in scopes:
        for node in ast.walk(tree) if tree is not None else ():
            if not isinstance(node, ast.Subscript):
                continue
            index = node.slice.value if isinstance(node.slice, ast.Subscript) else node.slice  # ids, or ids[0]
            if not (isinstance(index, ast.Name) and index.id in names and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
                continue
            weight = f"{prefix}.{node.value.attr}" if prefix else node.value.attr
            value = _attribute(model, weight)
            if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] > 0:
                found.append((int(value.shape[0]), weight))
    return min(found) if found else None


def _index_control(size: int, into: str, annotation: Any, thresholds: list[float], where: str) -> Inferred:
    """An int index into ``into`` (a container of ``size``, as the note names it): each of
    0 to ``size - 1``, split at the thresholds inside that range."""
    said = "annotated int, an index" if annotation is int else "an index"
    inside = tuple(t for t in thresholds if 0 <= t <= size - 1)
    return Inferred(
        dst.controls(dtype=int, min_value=0, max_value=size - 1, thresholds=inside),
        f"{said} into {into}{where or ' in forward'}: each, 0 to {size - 1}",
    )


def _held_value(model: nn.Module, name: str) -> Any:
    """The attribute ``name`` (dotted) of ``model`` that is not a module, parameter or buffer
    (a tuple of scales, a list of sizes); None when there is none."""
    value = _attribute(model, name)
    return None if isinstance(value, (nn.Module, torch.Tensor)) else value


def _attribute(model: nn.Module, name: str) -> Any:
    """``model``'s attribute ``name``, dotted (``l1.A``); None where a part is missing."""
    value: Any = model
    for part in name.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def _int_list(annotation: Any) -> bool:
    """Whether ``annotation`` is a list of ints (``List[int]``, ``list[int]``,
    ``Sequence[int]``, ``tuple[int, ...]``)."""
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    return origin in (list, tuple, Sequence) and arguments == [int]


def _architecture(model: nn.Module, name: str, tree: ast.AST | None, qualname: str, annotation: Any) -> Inferred:
    """A list of ints that forward zips with a container of modules, handing each member its
    element (``for block, choice in zip(self.blocks, arch): h = block(h, choice)``), where
    the member's forward picks one of its own modules by it (``self.ops[choice](x)``): a
    supernet's architecture, one choice per block, each drawn among its block's modules."""
    said = f"annotated {str(annotation).replace('typing.', '')}"
    for node in ast.walk(tree) if tree is not None else ():
        if not (
            isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and getattr(node.iter.func, "id", None) == "zip"
            and isinstance(node.target, ast.Tuple) and len(node.target.elts) == len(node.iter.args)
        ):
            continue
        parts = node.iter.args
        mine = [i for i, a in enumerate(parts) if isinstance(a, ast.Name) and a.id == name]
        owners = [(i, c) for i, a in enumerate(parts) if (c := _self_module(a)) is not None]
        if len(mine) != 1 or len(owners) != 1 or not all(isinstance(t, ast.Name) for t in node.target.elts):
            continue
        element, member = node.target.elts[mine[0]].id, node.target.elts[owners[0][0]].id
        container = _submodule(model, owners[0][1])
        if not isinstance(container, (nn.ModuleList, nn.Sequential)):
            continue
        sizes = []
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == member):
                continue
            position = next((i for i, a in enumerate(call.args) if isinstance(a, ast.Name) and a.id == element), None)
            keyword = next((k.arg for k in call.keywords if isinstance(k.value, ast.Name) and k.value.id == element), None)
            for block in container:
                parameter = _entry_parameter(block, position if position is not None else keyword)
                inner = _forward_tree(type(block)) if parameter is not None else None
                options = [
                    len(own) for own_name in _keyed_containers(inner, parameter)
                    if isinstance(own := _submodule(block, own_name), (nn.ModuleList, nn.Sequential)) and len(own)
                ]
                sizes.append(min(options) if options else None)
            break
        if sizes and len(sizes) == len(container) and all(sizes):
            kind = tuple if typing.get_origin(annotation) is tuple else list
            strategy = st.tuples(*(st.integers(0, size - 1) for size in sizes)).map(kind)
            return Inferred(
                strategy,
                f"{said}, an architecture: one choice per member of {owners[0][1]} ({len(sizes)}), each an "
                f"index into that member's own modules ({', '.join(map(str, sizes))})",
            )
    drawn = (
        "hypothesis.strategies.tuples(hypothesis.strategies.integers(0, N), ...)"
        if typing.get_origin(annotation) is tuple
        else "hypothesis.strategies.lists(hypothesis.strategies.integers(0, N), min_size=K, max_size=K)"
    )
    raise Uninferable(
        f"cannot infer forward argument {name!r} of {qualname} ({said}: which ints and how many are read from "
        "forward only for an architecture, zipped with a ModuleList whose members pick their own modules by "
        f"it); write dyncheck.Spec({qualname}, inputs={{{name!r}: {drawn}}}) with the values and length it takes"
    )


def _count(why: str, thresholds: list[float], walked: int | None = None) -> Inferred:
    """Small ints for a count, widened so each threshold and a value past it are drawn, and
    up to the length of the container it walks (``walked``)."""
    lo, hi = COUNT_RANGE
    if walked is not None and walked > hi:
        hi = walked
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


def _lengths_argument(
    model: nn.Module, name: str, declared: str | None = None, siblings: list[str] | None = None
) -> str | None:
    """The lengths forward argument other than ``name`` (``declared``, else one named like
    lengths), if ``forward`` takes one; ``siblings`` are looked at first (for an entry of a
    dict of inputs: the other entries, then the entries and arguments further out)."""
    try:
        names = [*(siblings or []), *inspect.signature(model.forward).parameters]
    except (TypeError, ValueError):
        names = list(siblings or [])
    if declared is not None:
        return declared if declared in names and declared != name else None
    return next((n for n in names if n != name and _LENGTHS_NAME.search(n)), None)


#: The notes of the two layouts the source alone suggests, which resolution confirms by
#: calling the model (:func:`dyncheck.target._probe_layout`).
TIME_MAJOR_NOTE = "; time-major, as "
SEQUENCE_NOTE = "; a sequence, as "

#: Tensor methods (and attributes) that swap or move axes.
_AXIS_MOVES = frozenset({"transpose", "permute", "t", "swapaxes", "swapdims", "movedim", "moveaxis", "T", "mT"})


def _moved_on_the_way(tree: ast.AST | None, flow: _Flow, expression: str) -> bool:
    """Whether forward moves axes of what it hands the submodule ``expression``: in the call's
    argument (``self.core(src.t())``), or in an assignment before the call to a name that
    argument reads (``src = src.transpose(0, 1)``)."""
    if tree is None:
        return False
    roots = {flow.self_name: ""}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _self_module(n.func, roots) == expression]
    if not calls:
        return False
    call = min(calls, key=lambda n: n.lineno)
    entry = flow.entries.get(expression, 0)
    arguments = [v for k, v in [*enumerate(call.args), *((k.arg, k.value) for k in call.keywords)] if k == entry]

    def moves(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr in _AXIS_MOVES for n in ast.walk(node))

    if any(moves(argument) for argument in arguments):
        return True
    read = {n.id for argument in arguments for n in ast.walk(argument) if isinstance(n, ast.Name)}
    return any(
        isinstance(node, ast.Assign) and node.lineno < call.lineno and moves(node.value)
        and any(isinstance(t, ast.Name) and t.id in read for target in node.targets for t in ast.walk(target))
        for node in ast.walk(tree)
    )


def _token_layout_inside(
    model: nn.Module, expression: str, entry: int | str, shape: _Shape, depth: int = 0
) -> tuple[_Shape, str] | None:
    """:func:`_token_layout` where the embedding is: inside the user-defined submodule
    ``expression`` that forward hands the token ids to (``self.encoder(src, src_len)``, whose
    forward embeds them and packs the embeddings time-major), read in that module's forward
    with the names the ids have there; None when the ids do not enter one, or nothing in it
    says (a submodule that only embeds them: the layers after it, in forward, decide)."""
    module = _resolve_module(model, expression)
    if module is None or depth > 3 or not _user_defined(module):
        return None
    tree = _forward_tree(type(module))
    parameter = _entry_parameter(module, entry)
    if tree is None or parameter is None:
        return None
    flow = _flow(tree, parameter, module)
    scopes = [(tree, frozenset({parameter})), *flow.scopes]
    for index, inner in enumerate(flow.consumers):
        layer = _resolve_module(module, inner)
        if layer is None:
            continue
        deeper = _token_layout_inside(module, inner, flow.entries.get(inner, 0), shape, depth + 1)
        if deeper is not None:
            return deeper
        found = _input_for_module(layer, 0, flow.entries.get(inner, 0), flow.members.get(inner))
        if found is None:
            continue
        if not found.tokens:
            return None
        batch_first, source = _sequence_layout(module, flow, flow.consumers[index + 1:], scopes)
        if not source:
            return None  # nothing in there says (an embedding alone): forward's own layers decide
        if batch_first or shape != ("batch", "time"):
            return shape, ""
        return ("time", "batch"), f"{TIME_MAJOR_NOTE}{source}"
    return None


def _token_layout(
    model: nn.Module, shape: _Shape, flow: _Flow, later: list[str], scopes: list[tuple[Any, frozenset[str]]]
) -> tuple[_Shape, str]:
    """Token ids ``shape`` (``("batch", "time")``) as the sequence layer their embeddings
    reach takes them (a recurrent, attention or transformer layer): ``("time", "batch")``
    when that layer is time-major (``batch_first=False``, PyTorch's word-language-model
    layouts), unless forward moves axes before it (:func:`_sequence_layout`)."""
    batch_first, source = _sequence_layout(model, flow, later, scopes)
    if batch_first or shape != ("batch", "time"):
        return shape, ""
    return ("time", "batch"), f"{TIME_MAJOR_NOTE}{source}"


def _sequence_layout(
    model: nn.Module, flow: _Flow, later: list[str], scopes: list[tuple[Any, frozenset[str]]]
) -> tuple[bool, str]:
    """Whether a sequence is batch-first, and what says so: ``pack_padded_sequence``'s
    ``batch_first`` when the flow reaches one (a packed RNN input ignores the RNN's own
    flag), else the flag of the first sequence layer in ``later`` (consumers: recurrent,
    attention and transformer layers, :func:`_batch_first`), else batch-first. A forward
    that moves axes (``transpose``, ``permute``, ``.T`` ...) before it calls that layer (or
    packs), or in a helper the input passes through, arranges the layout itself:
    batch-first (DeepSpeech transposes ``[batch, time, F]`` for its time-major RNN)."""
    if flow.packs and flow.packs[0] is not None:
        if not flow.packs[0] and _axes_moved_before(scopes, _calls_pack, 0):
            return True, ""
        return flow.packs[0], f"pack_padded_sequence has batch_first={flow.packs[0]}"
    expression = _sequence_layer(model, later)
    if expression is None:
        return True, ""
    layer = _resolve_module(model, expression)
    flag = _batch_first(layer)
    roots = {flow.self_name: ""}
    if not flag and _axes_moved_before(
        scopes, lambda call: _self_module(call.func, roots) == expression, flow.entries.get(expression)
    ):
        return True, ""
    named = _named_layout(type(layer)) if layer is not None and _user_defined(layer) else None
    if named is not None and named[0] == flag:
        return flag, f"{expression}'s forward reads its input's shape as {named[1]}"
    return flag, f"{expression} has batch_first={flag}"


def _calls_pack(call: ast.Call) -> bool:
    """Whether ``call`` is ``pack_padded_sequence(...)`` (by any module path)."""
    func = call.func
    return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == "pack_padded_sequence"


def _axes_moved_before(
    scopes: list[tuple[Any, frozenset[str]]], calls_layer: Callable[[ast.Call], bool], entry: int | str | None
) -> bool:
    """Whether forward (``scopes[0]``) moves an axis on a line before its first call that
    ``calls_layer`` picks, or in that call's argument ``entry`` (a position or keyword: where
    the input enters, ``self.rnn(x.transpose(0, 1))``; a mask transposed beside it does not
    count), or a helper in ``scopes`` moves one anywhere (its order is not known)."""
    forward = scopes[0][0] if scopes else None
    calls = sorted(
        (node for node in (ast.walk(forward) if forward is not None else ())
         if isinstance(node, ast.Call) and calls_layer(node)),
        key=lambda node: node.lineno,
    )
    first = calls[0].lineno if calls else None
    arguments = [
        value for call in calls[:1]
        for key, value in [*enumerate(call.args), *((k.arg, k.value) for k in call.keywords)]
        if entry is None or key == entry
    ]
    inside = {id(n) for value in arguments for n in ast.walk(value)}
    for index, (tree, _) in enumerate(scopes):
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, ast.Attribute) and node.attr in _AXIS_MOVES and (
                index > 0 or first is None or node.lineno < first or id(node) in inside
            ):
                return True
    return False


def _attention_in_code(scopes: list[tuple[Any, frozenset[str]]], tainted: set[str]) -> str | None:
    """Attention written out in forward or a helper, over values computed from the argument:
    scores ``q @ k.transpose(-2, -1)`` (or ``k.mT``, ``torch.matmul``), or
    ``F.scaled_dot_product_attention(q, k, v)``; as source text, or None. (``a @ b.t()``,
    a similarity across the batch, is not it.)"""
    for tree, names in scopes:
        if tree is None:
            continue
        carried = set(tainted) | set(names)
        for node in ast.walk(tree):
            right = None
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                right, left = node.right, node.left
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "matmul"
                  and len(node.args) == 2):
                left, right = node.args
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
                  == "scaled_dot_product_attention" and node.args and _mentions_data(node.args[0], carried)):
                return ast.unparse(node)[:60]
            if right is None or not (_mentions_data(left, carried) and _mentions_data(right, carried)):
                continue
            last_two = (
                isinstance(right, ast.Attribute) and right.attr == "mT"
            ) or (
                isinstance(right, ast.Call) and isinstance(right.func, ast.Attribute) and right.func.attr == "transpose"
                and sorted(_number(a) for a in right.args if isinstance(_number(a), int)) == [-2, -1]
            )
            if last_two:
                return ast.unparse(node)[:60]
    return None


def _stepped_in_code(flow: _Flow) -> tuple[int, str] | None:
    """(the axis, the step) a loop carrying a state steps through in code, of the argument or
    of what forward computes from it (:attr:`_Flow.stepped_in_code`), axis 0 or 1; None when
    none does, or when loops step through both."""
    axes = {axis: step for axis, step in flow.stepped_in_code.items() if axis in (0, 1)}
    return next(iter(axes.items())) if len(axes) == 1 else None


def sequence_axis(model: nn.Module, name: str, error: Exception | None = None) -> tuple[int, str] | None:
    """The axis (0 or 1) of a sequence ``name`` that holds its steps, for an input no layer
    gives a shape and a probe found runs as ``[2, 3, F]``, and what says so: the layout the
    model's own error on vectors names (SRU's "There must be 3 dimensions for (length,
    batch_size, input_size)"), else a loop carrying a state that steps through that axis in
    forward or a custom layer the input is handed to (``U = x @ self.weight``, then
    ``c = f(U[t], c)`` for t in range(x.size(0))). None when neither says."""
    if error is not None:
        named = {}
        for axes in re.findall(r"[(\[]\s*(\w+)\s*,\s*(\w+)\s*,\s*\w+\s*[)\]]", str(error)):
            if _STEPS_NAME.search(axes[0]) and BATCH_BOUND.search(axes[1]):
                named.setdefault(0, axes)
            elif BATCH_BOUND.search(axes[0]) and _STEPS_NAME.search(axes[1]):
                named.setdefault(1, axes)
        if len(named) == 1:  # one layout named, not each under a flag ("... when batch_first=False, else ...")
            (axis, axes), = named.items()
            return axis, f"its error on vectors names the layout ({', '.join(axes)}, ...)"
    tree = _forward_tree(type(model))
    if tree is None:
        return None
    flow = _flow(tree, name, model)
    found = _stepped_in_code(flow)
    for inner_tree, names, prefix in _handed_to_layers(model, flow) if found is None else []:
        inner = _submodule(model, prefix)
        if inner_tree is not None and inner is not None:
            found = _stepped_in_code(_flow(inner_tree, next(iter(names)), inner))
            if found is not None:
                break
    if found is None:
        return None
    return found[0], f"a loop carrying a state steps through axis {found[0]} ({found[1]})"


#: The note of an input drawn as a sequence by :func:`_named_scan`, which resolution confirms
#: by calling the model (``dyncheck.target._confirm_drawn_sequence``).
NAMED_SCAN_NOTE = "; a sequence: forward names its axis 1 ("


def _named_scan(model: nn.Module, tree: Any, name: str) -> tuple[str, str, str] | None:
    """(the line, the slice, the scan) where forward binds a sequence length's name to axis
    1 of the argument itself (``seq_len = x.shape[1]``, before any reassignment of it), cuts
    axis 1 of a tensor it computed by that length (``out[:, -seq_len:]``), and scans over
    axis 1 of what it computes from the argument (:func:`scans_over_steps`): minGRU's
    parallel form. The length and the scan are not enough: a window's length read off
    ``[batch, window]`` beside a cumulative sum over a head's features (non-crossing
    quantiles, increments summed into a forecast) is a vector model; so is each alone."""
    if tree is None:
        return None
    nodes = list(_own_nodes(tree, name))
    for node in nodes:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        named = {
            bound for bound, (tensor, axis) in _sizes_bound(node.targets[0], node.value).items()
            if isinstance(tensor, ast.Name) and tensor.id == name and axis == 1 and _STEPS_NAME.search(bound)
        }
        if not named or _rebound_before(tree, name, node.lineno):
            continue
        cut = next((sub for sub in nodes if _cuts_axis_1(sub, named, name)), None)
        scan = scans_over_steps(model, name) if cut is not None else None
        return (_snippet(node), _snippet(cut), scan) if scan is not None else None
    return None


def _own_nodes(tree: Any, name: str) -> Any:
    """The nodes of forward's body, without those of a nested function or lambda whose own
    parameter is called ``name`` (its ``x`` is not the argument)."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            if name in {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}:
                continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _cuts_axis_1(node: ast.AST, lengths: set[str], name: str) -> bool:
    """Whether ``node`` indexes axis 1 of a tensor other than the argument ``name`` by one of
    ``lengths`` (``out[:, -seq_len:]``, ``h[:, seq_len - 1]``)."""
    if not isinstance(node, ast.Subscript) or (isinstance(node.value, ast.Name) and node.value.id == name):
        return False
    index = node.slice
    if not (isinstance(index, ast.Tuple) and len(index.elts) >= 2):
        return False
    first, second = index.elts[:2]
    if not (isinstance(first, ast.Slice) and first.lower is None and first.upper is None and first.step is None):
        return False
    return any(isinstance(n, ast.Name) and n.id in lengths for n in ast.walk(second))


def _snippet(node: ast.AST, width: int = 60) -> str:
    """``node``'s source for a note, cut at ``width`` characters with an ellipsis."""
    text = ast.unparse(node)
    return text if len(text) <= width else text[:width - 1] + "…"


def _rebound_before(tree: Any, name: str, lineno: int) -> bool:
    """Whether forward assigns ``name`` anew before line ``lineno`` (``x = x.transpose(0, 1)``):
    sizes read after that are not the argument's layout."""
    return any(
        isinstance(other, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and other.lineno < lineno
        and any(name in _bound_names(target) for target in (other.targets if isinstance(other, ast.Assign) else [other.target]))
        for other in ast.walk(tree)
    )


#: Cumulative operations: a scan over a sequence's steps written in code (minGRU's parallel form).
_SCANS = frozenset({"cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"})


def scans_over_steps(model: nn.Module, name: str) -> str | None:
    """A cumulative operation over axis 1 of the argument or of what forward computes from
    it (``a.cumsum(dim=1)``, ``torch.logcumsumexp(v, 1)``), as source text; None where forward
    makes none."""
    tree = _forward_tree(type(model))
    if tree is None:
        return None
    flow = _flow(tree, name, model)
    for scope, names in [(tree, frozenset({name})), *flow.scopes]:
        carried = set(flow.tainted) | set(names)
        for node in ast.walk(scope) if scope is not None else ():
            call = _tensor_call(node, _SCANS)
            if call is None:
                continue
            scanned, arguments, keywords = call
            axis = _number(keywords.get("dim", arguments[0] if arguments else ast.Constant(None)))
            if axis == 1 and _mentions_data(scanned, carried) and not _size_only(scanned):
                return _snippet(node)
    return None


#: Constructions that take only a tensor's size, dtype and device (``torch.ones_like(h)``).
_SIZE_ONLY = frozenset({
    "ones_like", "zeros_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
    "new_ones", "new_zeros", "new_full", "new_empty", "new_tensor",
})


def _size_only(node: ast.AST) -> bool:
    """Whether ``node`` is a tensor made from another's size alone (``torch.ones_like(h)``,
    ``h.new_ones(...)``): a scan over it scans no values of the input."""
    return (
        isinstance(node, ast.Call)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)) in _SIZE_ONLY
    )


def _sequence_layer(model: nn.Module, later: list[str]) -> str | None:
    """The first of ``later`` (consumers) that takes sequences (a recurrent, attention or
    transformer layer, :func:`_batch_first`), as forward names it; None when none does."""
    return next((e for e in later if _batch_first(_resolve_module(model, e)) is not None), None)


def _batch_first(module: nn.Module | None) -> bool | None:
    """The layout flag of a layer that takes sequences either way: a recurrent layer's,
    ``nn.MultiheadAttention``'s, ``nn.Transformer``'s, or a transformer layer's (or stack's)
    attention's; None for any other module."""
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention, nn.Transformer)):
        return module.batch_first
    if isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)) and len(module.layers):
        module = module.layers[0]
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return module.self_attn.batch_first
    if module is not None and _user_defined(module):
        named = _named_layout(type(module))
        return named[0] if named is not None else None
    return None


#: Names of a sequence's length, as forward unpacks its input's shape (``seq_len, batch_size,
#: _ = x.shape``; fairseq's ``tgt_len, bsz, embed_dim = query.size()``).
_STEPS_NAME = re.compile(r"^(t|l|seq|seq_len|seqlen|seq_length|sequence_length|tgt_len|src_len|length|n_steps|num_steps|steps|time|time_steps|n_ctx)$", re.IGNORECASE)


def _named_layout(cls: type) -> tuple[bool, str] | None:
    """A custom layer's layout as its forward names its input's first two axes when it
    unpacks the shape, and the line that says so: False for ``seq_len, batch_size, _ =
    x.shape`` (labml's and fairseq's time-major attention), True for ``batch_size, seq_len,
    _ = x.shape`` (``B, T, C = x.size()``); None when it does not say."""
    tree = _forward_tree(cls)
    if tree is None or len(tree.args.args) < 2:
        return None
    name = tree.args.args[1].arg
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        # the names it binds to the input's axes (flow's reading of n_steps, batch = x.shape[:2])
        axes = {
            axis: bound for bound, (tensor, axis) in _sizes_bound(node.targets[0], node.value).items()
            if isinstance(tensor, ast.Name) and tensor.id == name
        }
        if 0 not in axes or 1 not in axes:
            continue
        if _rebound_before(tree, name, node.lineno):
            return None  # the input rearranged first (x = x.transpose(0, 1)): the names are not its layout
        first, second = axes[0], axes[1]
        if _STEPS_NAME.search(first) and BATCH_BOUND.search(second):
            return False, ast.unparse(node)
        if BATCH_BOUND.search(first) and _STEPS_NAME.search(second):
            return True, ast.unparse(node)
        return None
    return None


def _padded(
    model: nn.Module, found: _Found, flow: _Flow, later: list[str], scopes: list[tuple[Any, frozenset[str]]]
) -> tuple[_Shape, str]:
    """``found``'s shape with a ``"time"`` axis, and a note when it is time-major.

    Feature-last layers (Linear, LayerNorm) take the layout the sequence is packed or run
    with: ``pack_padded_sequence``'s ``batch_first`` when the flow reaches one (a packed
    RNN input ignores the RNN's own flag), else the next sequence layer's, else batch-first.
    Channel-first layers (BatchNorm1d) only take ``(batch, channels, time)``."""
    shape = found.shape
    if found.sequence == "channels-first":
        return (*shape, "time"), ""
    batch_first, source = _sequence_layout(model, flow, later, scopes)
    if batch_first:
        return (shape[0], "time", *shape[1:]), ""
    return ("time", *shape), f" (time-major, as {source})"
