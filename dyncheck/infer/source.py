"""Reading a model's source: its forward's syntax tree, the constants an argument is
compared with, and how an argument is used (as a count, as a choice)."""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["predicate_thresholds"]


#: function -> (its code, its syntax tree; None: no source to read). Inference reads one
#: forward many times over (each argument, each probe), and reading the source (the file's
#: tokens up to the function's end) cost more than what it found. The trees are read-only:
#: a rewrite works on a copy. A module imported anew has new functions, so new entries; a
#: function whose code is replaced in place (IPython's autoreload) is read again.
_TREES: weakref.WeakKeyDictionary[Callable[..., Any], tuple[Any, ast.FunctionDef | ast.AsyncFunctionDef | None]] = (
    weakref.WeakKeyDictionary()
)


def function_tree(function: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The syntax tree of ``function``'s definition (what decorators wrap; a method's
    function), or None where its source cannot be read."""
    try:
        function = inspect.unwrap(function)
    except ValueError:  # a __wrapped__ chain that loops
        return None
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    try:
        kept = _TREES.get(function)
    except TypeError:  # not weakly referable (a builtin's slot wrapper): read every time
        return _read_tree(function)
    if kept is not None and kept[0] is code:
        return kept[1]
    tree = _read_tree(function)
    _TREES[function] = (code, tree)
    return tree


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """No warnings from compiling a model's or a library's source inside the block (an
    invalid escape ``'\\e'`` in a docstring): they are the source's, and showed in a run's
    warnings summary under dyncheck's checks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def parse_quietly(source: str, **kwargs: Any) -> ast.AST:
    """``ast.parse`` of a model's or a library's source, :func:`quietly`."""
    with quietly():
        return ast.parse(source, **kwargs)


def source_quietly(value: Any) -> str:
    """``inspect.getsource(value)``, :func:`quietly`: for a class, Python parses its whole
    module to find it."""
    with quietly():
        return inspect.getsource(value)


def _read_tree(function: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = parse_quietly(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _forward_tree(cls: type) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return function_tree(cls.forward)


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


#: Reads of a tensor that give its metadata, not its values.
_METADATA = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout", "requires_grad"})
_MEASURES = frozenset({"size", "dim", "ndimension", "numel", "nelement", "get_device"})


#: Builtins that read a value's length or kind, not its values.
_TYPE_QUERIES = frozenset({"len", "isinstance", "type", "hasattr", "callable", "id"})

#: Methods that take only the shape or dtype of their argument, and the values of the
#: tensor they are called on: ``torch.arange(t).expand_as(ids)`` holds positions, not ids.
_SHAPED_LIKE = frozenset({"expand_as", "view_as", "reshape_as", "type_as"})


def _mentions_data(node: ast.AST, names: set[str]) -> bool:
    """Whether ``node`` uses the values of one of ``names``, not only its size, dtype or
    device: ``torch.arange(x.shape[1])`` does not carry ``x`` (a position table indexed
    by it says nothing of ``x``), ``x.view(x.size(0), -1)`` does."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Attribute) and node.attr in _METADATA:
        return False
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MEASURES:
            return any(_mentions_data(a, names) for a in (*node.args, *(k.value for k in node.keywords)))
        if isinstance(node.func, ast.Attribute) and node.func.attr in _SHAPED_LIKE:
            return _mentions_data(node.func.value, names)
        if isinstance(node.func, ast.Name) and node.func.id in _TYPE_QUERIES:
            # its size, or what kind of thing it is: isinstance(timestep, float) picks a
            # dtype, not the values (diffusers' UNet)
            return False
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if called == "pack_padded_sequence":
            # the values packed are its input's; the lengths (a mask's row sums, mask.sum(1))
            # only say how many steps of each row (a BiLSTM-CRF tagger's mask is no LSTM input)
            given = node.args[:1] or [k.value for k in node.keywords if k.arg == "input"]
            return any(_mentions_data(a, names) for a in given)
    return any(_mentions_data(child, names) for child in ast.iter_child_nodes(node))


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
                node = parse_quietly(source[start:end], mode="eval").body
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
        return parse_quietly(source)
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
            and _bound_by(node.args[0 if len(node.args) == 1 else 1], name)
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


def _bound_by(node: ast.AST, name: str) -> bool:
    """``name``, or ``min(name, ...)`` (``range(min(num_steps, len(self.steps)))``)."""
    if isinstance(node, ast.Name):
        return node.id == name
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "min"
        and any(isinstance(a, ast.Name) and a.id == name for a in node.args)
    )


def _counted_containers(tree: ast.AST | None, name: str) -> list[str]:
    """The containers of ``self`` a count ``name`` walks (by their names in the model): the
    ones a loop over ``range(name)`` indexes by its variable (``self.steps[i]``), and the ones
    sliced to it (``self.blocks[:name]``)."""
    if tree is None:
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For) and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name)
            and node.iter.func.id == "range" and 1 <= len(node.iter.args) <= 3
            and _bound_by(node.iter.args[0 if len(node.iter.args) == 1 else 1], name)
        ):
            variable = node.target.id
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Subscript) and isinstance(inner.slice, ast.Name)
                    and inner.slice.id == variable and (owner := _self_module(inner.value)) is not None
                ):
                    found.append(owner)
        if (
            isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)
            and isinstance(node.slice.upper, ast.Name) and node.slice.upper.id == name
            and (owner := _self_module(node.value)) is not None
        ):
            found.append(owner)
    return list(dict.fromkeys(found))


def _keyed_containers(tree: ast.AST | None, name: str, *, one_hot: bool = False) -> list[str]:
    """The containers of ``self`` that ``name`` picks a member of (``self.heads[name]``), or
    the result of a member of (``torch.stack([head(h) for head in self.heads])[name]``: one
    result per member, stacked or listed in their order); with ``one_hot``, also the
    container whose member count a one-hot weight of ``name`` spans."""
    if tree is None:
        return []
    return list(dict.fromkeys([
        *(
            owner for node in ast.walk(tree)
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and node.slice.id == name
            and (owner := _self_module(node.value) or _member_results(node.value)) is not None
        ),
        *(owner for node in ast.walk(tree) if one_hot and (owner := _one_hot_over(node, name)) is not None),
    ]))


def _one_hot_over(node: ast.AST, name: str) -> str | None:
    """``F.one_hot(torch.tensor(name), len(self.heads))`` (or ``num_classes=``): the
    container of ``self`` whose members ``name`` picks one of by a one-hot weight."""
    if not (
        isinstance(node, ast.Call) and node.args
        and (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)) == "one_hot"
    ):
        return None
    picked = node.args[0]
    if isinstance(picked, ast.Call) and picked.args:  # torch.tensor(task)
        picked = picked.args[0]
    count = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "num_classes"), None)
    if not (isinstance(picked, ast.Name) and picked.id == name and isinstance(count, ast.Call)):
        return None
    if getattr(count.func, "id", None) == "len" and len(count.args) == 1:
        return _self_module(count.args[0])
    return None


def _member_results(node: ast.AST) -> str | None:
    """``torch.stack([head(h) for head in self.heads])`` (along its first axis), or the list
    itself: the container of ``self`` whose members give one result each, in order
    (``heads``); None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "stack" and node.args:
        dims = [*node.args[1:], *(k.value for k in node.keywords if k.arg == "dim")]
        if len(node.args) + len(node.keywords) - len(dims) != 1 or not all(
            isinstance(d, ast.Constant) and d.value == 0 for d in dims
        ):
            return None  # stacked along another axis: the index picks no member's result
        node = node.args[0]
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
        loop = node.generators[0]
        if not loop.ifs and isinstance(loop.target, ast.Name):
            return _self_module(loop.iter)
    return None


def _strip_slice(node: ast.AST) -> ast.AST:
    """``self.blocks[:n]`` -> ``self.blocks``; anything else unchanged."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return node.value
    return node


def _self_module(node: ast.AST, roots: dict[str, str] | None = None) -> str | None:
    """``self.fc1`` -> ``fc1``; ``self.layers['input']`` -> ``layers.input``. ``roots``
    are the names that stand for a module (default: ``self``, the model itself), each
    with its name in the model: with ``{"layer": "blocks.0"}``, ``layer.fc`` ->
    ``blocks.0.fc``."""
    roots = {"self": ""} if roots is None else roots
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            parts.append(str(node.slice.value))
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Name, ast.BinOp, ast.UnaryOp)):
            # self.steps[i](x) in a loop: any member (flow._resolve_module takes one when the
            # members are alike; which one a variable picks is not read)
            parts.append("*")
            node = node.value
        elif isinstance(node, ast.Name) and node.id in roots and (parts or roots[node.id]):
            return ".".join([*([roots[node.id]] if roots[node.id] else []), *reversed(parts)])
        else:
            return None
