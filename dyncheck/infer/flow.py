"""Source flow: following one forward argument through assignments, loops and calls to
the submodules that consume it."""

from __future__ import annotations

import ast

from torch import nn

from dyncheck.infer.source import _mentions, _number, _self_module, _strip_slice


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


def _resolve_module(model: nn.Module, expression: str) -> nn.Module | None:
    try:
        module = model.get_submodule(expression)
    except (AttributeError, KeyError, IndexError):
        return None
    return module if isinstance(module, nn.Module) else None
