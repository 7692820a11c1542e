"""Source flow: following one forward argument through assignments, loops and calls to
the submodules that consume it.

``forward`` often hands its arguments on before a layer sees them: to
``super().forward(x, control)``, to ``self._forward_impl(x)``, to another method or to a
module-level function (``return _run(self, x)``, ``_apply(self.fc, x)``). The flow
follows the argument into each such function's source, with the names it has there, and
records the consumers in the order the code calls them.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import re
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.infer.source import _mentions_data, _number, _self_module, _strip_slice, function_tree

#: How many calls deep the flow follows an argument into helpers and parents.
MAX_DEPTH = 6


def _bound_names(target: ast.AST) -> list[str]:
    """The names an assignment target rebinds: ``x``, and those of ``x, (h, c)`` and
    ``x, *rest``; not a subscript's or an attribute's (``out[0] = ...`` rebinds nothing)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _bound_names(element)]
    return []


class _Flow(ast.NodeVisitor):
    """Follows one argument through assignments and records, in source order, the
    ``self.<module>(...)`` calls that consume it.

    ``roots`` are the names that stand for a module, each with the module's name in the
    model: ``self`` is ``""``; a helper's parameter that received ``self.fc`` is ``"fc"``;
    a loop variable over ``self.layers`` is ``"layers.0"`` (its first member)."""

    def __init__(
        self,
        name: str | set[str],
        *,
        model: nn.Module | None = None,
        roots: dict[str, str] | None = None,
        defining: type | None = None,
        namespace: dict[str, Any] | None = None,
        parent: _Flow | None = None,
        self_name: str | None = "self",
        strict: bool = False,
        opaque_modules: bool = False,
        same_layout: bool = False,
    ) -> None:
        self.tainted = {name} if isinstance(name, str) else set(name)
        # the names that hold the argument itself (or a part of it: x[:, t], x.unsqueeze(1)),
        # not values computed from it: what a functional layer counts as its input
        self.itself = set(self.tainted)
        self.roots = dict(roots if roots is not None else {"self": ""})
        self.model = model
        # the class whose method is being read (what ``super()`` starts after), and the
        # globals its names resolve in
        self.defining = defining
        # the parameter that is the module whose method this is (None: a plain function)
        self.self_name = self_name
        self.namespace = namespace or {}
        self.depth = 0 if parent is None else parent.depth + 1
        # functions defined in the code being read, by name
        self.local: dict[str, ast.FunctionDef] = {}
        # strict: the argument itself travels (passed on, indexed, chosen by a conditional),
        # not values computed from it: what an optional argument reaches as itself
        self.strict = strict if parent is None else parent.strict
        # same_layout (with strict): only what keeps the argument's shape passes it on
        # (``h.to(dtype)``, ``h.contiguous()``), not ``h.unsqueeze(0)`` or ``h.transpose(0, 1)``
        self.same_layout = same_layout if parent is None else parent.same_layout
        # opaque_modules: what a submodule returns is new data, not the argument's values
        # (``x, keep = self.patch_drop(x)``: ``keep`` is not the argument)
        self.opaque_modules = opaque_modules if parent is None else parent.opaque_modules
        if parent is not None:
            # One result for the whole flow: a helper's consumers are the caller's.
            self.consumers, self.entries, self.transposed = parent.consumers, parent.entries, parent.transposed
            self.reduced, self.concatenated, self.stepped = parent.reduced, parent.concatenated, parent.stepped
            self.picked = parent.picked
            self.stepped_in_code = parent.stepped_in_code
            self.members = parent.members
            self.packs, self.scopes, self.seen = parent.packs, parent.scopes, parent.seen
            self.packed_lengths = parent.packed_lengths
            self.reductions: dict[str, int] = {}
            self.columns: dict[str, int] = {}
            self.steps: dict[str, int] = {}
            self.walked: set[str] = set()
            self.joins: dict[str, tuple[tuple[str, ...], int]] = {}
            self.module_values: dict[str, str] = {}
            self.same_as: dict[str, str] = {}
            self.sizes: dict[str, tuple[ast.AST, int]] = {}
            self.ranges: dict[str, ast.Call] = {}
            self.weights: dict[str, str] = {}
            self.swaps: dict[str, tuple[int, int]] = {}
            self.branched = 0
            return
        self.consumers: list[str] = []
        # consumer -> where the argument first enters it: a position or a keyword.
        self.entries: dict[str, int | str] = {}
        # consumer -> the two axes swapped in what it receives (``x.transpose(1, 2)``).
        self.transposed: dict[str, tuple[int, int]] = {}
        # consumer -> the axis of the argument reduced away in what it receives
        # (``self.fc(x.mean(1))``, or ``h = x.mean(1)`` first): it takes one axis fewer.
        self.reduced: dict[str, int] = {}
        # consumer -> the column of the argument's last axis it receives (``self.emb(
        # x_cat[..., 0])``, or ``c = x_cat[..., 0]`` first): it takes that axis gone
        self.picked: dict[str, int] = {}
        # the consumers of those that take the argument one step of that axis at a time, in a
        # loop carrying a state (``h = self.cell(x[t], h)`` for t in range(x.size(0)), or for
        # x_t in x.unbind(1))
        self.stepped: set[str] = set()
        # axis -> the first step of the argument, or of what forward computes from it, that a
        # loop carrying a state takes in code, by a counter of that axis of the argument
        # (``U = self.lin(x)``, then ``c = torch.sigmoid(U[t]) * c + U[t]`` for t in
        # range(x.size(0)): a recurrence written out, SRU's)
        self.stepped_in_code: dict[int, str] = {}
        # consumer -> (the parts concatenated into what it receives, the axis): ``self.fc(
        # torch.cat([x, y], dim=-1))`` takes x's and y's features side by side. A part is a
        # name, or ``MODULE_PART`` and a submodule's name for what that submodule returns
        # (``torch.cat([self.label_emb(labels), noise], -1)``).
        self.concatenated: dict[str, tuple[tuple[str, ...], int]] = {}
        # consumer -> the place of the argument in a tuple it receives: ``self.lstm(x, (h0, c0))``
        # hands it h0 as member 0 of its second argument.
        self.members: dict[str, int] = {}
        # local name -> the axis its value reduced away from the argument
        self.reductions: dict[str, int] = {}
        # local name -> the column of the argument's last axis it holds (``c = x[..., 0]``)
        self.columns: dict[str, int] = {}
        # loop variable -> the axis of the argument it counts the steps of
        # (``for t in range(x.size(0))``: ``x[t]`` is one step, that axis gone)
        self.steps: dict[str, int] = {}
        # loop variables that are one step of the argument (``for x_t in x.unbind(1)``)
        self.walked: set[str] = set()
        # local name -> the concatenation it holds (``h = torch.cat([x, y], -1)``)
        self.joins: dict[str, tuple[tuple[str, ...], int]] = {}
        # local name -> the submodule of a known width whose output it holds
        # (``c = self.label_emb(labels)``)
        self.module_values: dict[str, str] = {}
        # local name -> the name whose features it holds, through a layer that keeps the
        # width (``h = self.drop(x)``, ``a = self.norm_a(a)``)
        self.same_as: dict[str, str] = {}
        # local name -> (the tensor, the axis) whose size it holds (``n_steps, batch = x.shape[:2]``)
        self.sizes: dict[str, tuple[ast.AST, int]] = {}
        # local name -> the range() it holds (``time_seq = range(length)``, then ``for t in time_seq``)
        self.ranges: dict[str, ast.Call] = {}
        # ``batch_first`` of each ``pack_padded_sequence`` it reaches (None: not a constant).
        self.packs: list[bool | None] = []
        # one entry for each ``pack_padded_sequence`` the argument reaches as its lengths
        self.packed_lengths: list[bool] = []
        # (function tree, names the argument has there) for every function it was followed
        # into: the constants it is compared with there count as forward's own.
        self.scopes: list[tuple[ast.AST, frozenset[str]]] = []
        self.seen: set[tuple[Any, ...]] = set()
        # local name -> the model's tensor whose shape the weight it holds has (``w = self.mu +
        # sigma * eps``), for a functional layer handed it (``F.linear(x, w)``)
        self.weights: dict[str, str] = {}
        # local name -> the two axes of the argument swapped in what it holds (``x =
        # x.permute(0, 2, 1).contiguous()`` on its own line, then ``self.conv(x)``)
        self.swaps: dict[str, tuple[int, int]] = {}
        # how many statements whose body may not run (if, for, while, try) enclose the one read
        self.branched = 0

    def _carries(self, node: ast.AST) -> bool:
        """Whether ``node`` holds the argument (strict), or values computed from it."""
        if self.opaque_modules:
            if self._module_output(node):
                return False
            node = self._outputs_dropped(node)
        if self.strict:
            return _passes(node, self.tainted, same_layout=self.same_layout)
        return _mentions_data(node, self.tainted)

    def _outputs_dropped(self, node: ast.AST) -> ast.AST:
        """``node`` with what submodules return inside it taken out (``torch.relu(self.l1(x,
        ids))`` carries neither ``x`` nor ``ids``): a copy, or ``node`` when there is none."""
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and n is not node and self._module_output(n)]
        if not calls:
            return node
        memo: dict[int, Any] = {}
        copied = copy.deepcopy(node, memo)
        outputs = {id(memo[id(n)]) for n in calls}

        class Drop(ast.NodeTransformer):
            def visit_Call(self, call: ast.Call) -> ast.AST:
                if id(call) in outputs:
                    return ast.copy_location(ast.Constant(None), call)
                self.generic_visit(call)
                return call

        return Drop().visit(copied)

    def _called_name(self, node: ast.AST) -> str | None:
        """The name of the submodule slot ``node`` (``self.lin(x)``, ``self.lin(x)[0]``) calls,
        or None."""
        while isinstance(node, (ast.Subscript, ast.Starred)):
            node = node.value
        if not isinstance(node, ast.Call) or self.model is None:
            return None
        return _module_name(node.func, self.roots)

    def _module_output(self, node: ast.AST) -> bool:
        """Whether ``node`` is (a part of) what a submodule of the model returns, or would
        (a slot the configuration left at None: ``self.patch_drop = None`` when its rate is 0)."""
        name = self._called_name(node)
        if name is None:
            return False
        module = self._module(name)
        if module is not None:
            # a layer that returns its input's shape (dropout, an activation, a norm) passes it on
            return not isinstance(module, _SHAPE_KEEPING)
        owner, _, attribute = name.rpartition(".")
        parent = self.model if not owner else _resolve_module(self.model, owner)
        if parent is None:
            return False
        return (attribute in parent.__dict__ and parent.__dict__[attribute] is None) or (
            attribute in parent._modules and parent._modules[attribute] is None
        )

    def visit_Assign(self, node: ast.Assign) -> None:
        pairs = _pairwise_assignment(node)
        if pairs is not None:
            # backcast, forecast = target, 0: each name takes its own value (N-BEATS), read as
            # two assignments where no value reads a name the statement binds
            for target, value in pairs:
                self.visit_Assign(ast.copy_location(ast.Assign(targets=[target], value=value), node))
            return
        self.visit(node.value)
        for target in node.targets:
            for name in _bound_names(target):
                self.sizes.pop(name, None)
                self.ranges.pop(name, None)
            self.sizes.update(_sizes_bound(target, node.value))
            counter = _range_call(node.value)
            if isinstance(target, ast.Name) and counter is not None:
                self.ranges[target.id] = counter
        held = _module_name(node.value, self.roots)
        weight = self._weight_path(node.value)
        itself = _passes(node.value, self.itself)
        swapped = self._swap_held(node.value) if itself else None
        for target in node.targets:
            for bound in _bound_names(target):
                self.swaps.pop(bound, None)
            if isinstance(target, ast.Name) and swapped is not None:
                self.swaps[target.id] = swapped
        for target in node.targets:
            for bound in _bound_names(target):
                if itself:
                    self.itself.add(bound)
                else:
                    self.itself.discard(bound)
            if isinstance(target, ast.Name):
                if weight is not None:
                    self.weights[target.id] = weight  # w = self.mu + sigma * eps: a weight of mu's shape
                else:
                    self.weights.pop(target.id, None)
                if held is not None and self._module(held) is not None:
                    self.roots[target.id] = held  # p = self.policy: p.lstm(obs) is self.policy.lstm
                elif target.id in self.roots and target.id != self.self_name:
                    del self.roots[target.id]
        axis = self._reduced_axis(node.value)
        column = self._picked_column(node.value)
        joined = self._joined(node.value)
        part = self._part(node.value) if isinstance(node.value, ast.Call) else None
        module = part[len(MODULE_PART):] if part is not None and part.startswith(MODULE_PART) else None
        same = part if part is not None and module is None else None
        for target in node.targets:
            if isinstance(target, ast.Name):
                for held, value in (
                    (self.reductions, axis), (self.joins, joined), (self.module_values, module), (self.same_as, same),
                    (self.columns, column),
                ):
                    if value is None:
                        held.pop(target.id, None)
                    else:
                        held[target.id] = value
        if self._carries(node.value):
            for target in node.targets:
                if (
                    isinstance(target, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List))
                    and len(target.elts) == len(node.value.elts)
                ):
                    # x, d = values[:, t], deltas[:, t]: each name takes its own member
                    for member, value in zip(target.elts, node.value.elts):
                        if self._carries(value):
                            self.tainted.update(n.id for n in ast.walk(member) if isinstance(n, ast.Name))
                    continue
                self.tainted.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif (
            self.opaque_modules and (name := self._called_name(node.value)) is not None
            and (module := self._module(name)) is not None and not isinstance(module, _SHAPE_KEEPING)
        ):
            # x = self.lin(x): from here the name holds what a layer made of the argument, and
            # a layer that takes it (a norm over lin's width) says nothing of the argument's;
            # so do the names x, (h, c) = self.lstm(x) binds. Not a slot left at None: that
            # call is guarded, and x reaches the next layer as it is.
            for target in node.targets:
                self.tainted.difference_update(_bound_names(target))

    def _swap_held(self, value: ast.AST) -> tuple[int, int] | None:
        """The two axes of the argument swapped in ``value``, which holds the argument itself:
        ``x.permute(0, 2, 1).contiguous()``, or a name holding such a swap. None where there is
        none, or none read here: under a statement that may not run (``if
        self.channels_last:``); one that moves the batch axis (``x.transpose(0, 1)`` to
        time-major: whether the layer after it takes its first axis as the batch's is not
        known here); a swap of a name already swapped (back to the argument's own layout, or
        two swaps composed)."""
        if isinstance(value, ast.Name):
            return self.swaps.get(value.id)  # y = x: what x holds
        value = _kept_layout(value)
        axes = _swapped_axes(value)
        if axes is None or self.branched or min(axes) < 1:
            return None
        receiver = _swapped_receiver(value)
        return None if isinstance(receiver, ast.Name) and receiver.id in self.swaps else axes

    def _joined(self, node: ast.AST) -> tuple[tuple[str, ...], int] | None:
        """(the parts, the axis) of a concatenation ``node`` makes, or a name holds (see
        :meth:`_part`)."""
        if isinstance(node, ast.Name):
            return self.joins.get(node.id)
        if (
            isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div))
            and isinstance(node.left, ast.Name) and node.left.id in self.joins
        ):
            # h = h - h.mean(dim=(0, 1), keepdim=True): arithmetic that broadcasts keeps the
            # concatenation's features (not h @ w)
            return self.joins[node.left.id]
        return _concatenation(node, self._part)

    def _part(self, node: ast.AST) -> str | None:
        """What a concatenation's part is: a name (the name it stands for, when it holds
        another's features through a layer that keeps the width: ``self.drop(x)``, ``a =
        self.norm_a(a)``), or :data:`MODULE_PART` and a submodule's name for the output of
        one whose width its type says (an Embedding, a Linear, a Sequential ending in one),
        called there or held in a name (``c = self.label_emb(labels)``); None for anything
        else."""
        if isinstance(node, ast.Name):
            name = self.same_as.get(node.id, node.id)
            return f"{MODULE_PART}{self.module_values[name]}" if name in self.module_values else name
        if not isinstance(node, ast.Call) or self.model is None:
            return None
        if (
            isinstance(node.func, ast.Attribute) and node.func.attr in _SAME_WIDTH_FUNCTIONS and node.args
            and isinstance(node.func.value, (ast.Name, ast.Attribute))  # F.silu(...), torch.tanh(...)
        ):
            return self._part(node.args[0])  # temb = F.silu(self.t_proj(t)): the projection's width
        expression = _self_module(node.func, self.roots)
        module = _resolve_module(self.model, expression) if expression else None
        if isinstance(module, SAME_WIDTH) and node.args and isinstance(node.args[0], ast.Name):
            return self._part(node.args[0])
        if module is not None and output_width(module) is not None:
            return f"{MODULE_PART}{expression}"
        return None

    def _reduced_axis(self, node: ast.AST) -> int | None:
        """The axis of the argument ``node`` reduces away, when it is a name holding such
        a reduction or a reduction of the argument itself (:func:`_reduction_axis`)."""
        if isinstance(node, ast.Name):
            return self.reductions.get(node.id)
        step = _step_of(node, self.steps)
        if step is not None and _passes(step[0], self.tainted):
            return step[1]
        found = _reduction_axis(node)
        if found is None or not _passes(found[0], self.tainted):
            return None
        return found[1]

    def _picked_column(self, node: ast.AST) -> int | None:
        """The column of the argument's last axis ``node`` is, when it is a name holding one
        or the argument picked so itself (:func:`_last_axis_column`)."""
        if isinstance(node, ast.Name):
            return self.columns.get(node.id)
        found = _last_axis_column(node)
        if found is None or not (isinstance(found[0], ast.Name) and found[0].id in self.tainted):
            return None
        return found[1]

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            if self._carries(node.value) and isinstance(node.target, ast.Name):
                self.tainted.add(node.target.id)

    def _bind_loop(self, target: ast.AST, iterated: ast.AST, body: list[ast.stmt] | None = None) -> None:
        """A loop's variables: members of a module container it walks, and the argument's
        values where what it walks carries them."""
        self.visit(iterated)
        self.roots.update(_loop_members(target, iterated, self.roots))
        paired = self._paired(target, iterated)
        if paired is not None:
            # for value, module in [(x, self.cont), (ids, self.cat)]: the argument's own pair
            self.roots.update(paired[0])
            self.tainted.update(paired[1])
            return
        if isinstance(target, ast.Name) and body is not None and (_carries_state(body) or self._keeps_state(body)):
            # a loop that carries a state from step to step (h = self.cell(x[t], h)) walks
            # steps; one that does not may walk the samples of a batch one by one
            named = self.ranges.get(iterated.id) if isinstance(iterated, ast.Name) else None
            counted = _counted_axis(named or iterated, self.sizes)
            if counted is not None and _passes(counted[0], self.tainted):
                self.steps[target.id] = counted[1]  # for t in range(x.size(0))
            walked = _walked_axis(iterated)
            if walked is not None and _passes(walked[0], self.tainted):
                self.reductions[target.id] = walked[1]  # for x_t in x.unbind(1): one step of x
                self.walked.add(target.id)
        if self._carries(iterated):
            self.tainted.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def _keeps_state(self, body: list[ast.stmt]) -> bool:
        """Whether a loop's body calls a submodule that keeps a state of its own from call to
        call: a module in it whose forward assigns an attribute of itself (snntorch's
        ``Leaky(init_hidden=True)``, ``self.mem = self.beta * self.mem + x``), so each step
        reads what the step before left."""
        for node in (n for statement in body for n in ast.walk(statement)):
            if not isinstance(node, ast.Call):
                continue
            module = self._module(_module_name(node.func, self.roots))
            if module is not None and any(_assigns_itself(type(m)) for m in module.modules()):
                return True
        return False

    def _is_step(self, node: ast.AST) -> bool:
        """Whether ``node`` is one step of the argument a loop takes (``x[t]``, or ``x_t`` of
        ``for x_t in x.unbind(1)``), not a reduction of it."""
        return (isinstance(node, ast.Name) and node.id in self.walked) or _step_of(node, self.steps) is not None

    def _paired(self, target: ast.AST, iterated: ast.AST) -> tuple[dict[str, str], set[str]] | None:
        """For a loop over a literal list of tuples (``for value, module in [(x_cont,
        self.cont), (x_cat, self.cat)]``, rtdl's FT-Transformer): the loop variables bound to
        modules in the first tuple holding the argument, and those holding the argument
        there; None for any other loop, or when no tuple holds the argument."""
        if not (isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts)
                and isinstance(iterated, (ast.List, ast.Tuple)) and iterated.elts
                and all(isinstance(e, ast.Tuple) and len(e.elts) == len(target.elts) for e in iterated.elts)):
            return None
        for element in iterated.elts:
            carried = {t.id for t, value in zip(target.elts, element.elts) if self._carries(value)}
            if carried:
                modules = {
                    t.id: module for t, value in zip(target.elts, element.elts)
                    if (module := _self_module(value, self.roots)) is not None
                }
                return modules, carried
        return None

    def visit_For(self, node: ast.For) -> None:
        self._bind_loop(node.target, node.iter, node.body)
        if isinstance(node.target, ast.Name) and node.target.id in self.steps:
            counter = {node.target.id: self.steps[node.target.id]}
            for part in (n for statement in node.body for n in ast.walk(statement)):
                step = _step_of(part, counter)
                if step is not None and _passes(step[0], self.tainted):
                    self.stepped_in_code.setdefault(step[1], ast.unparse(part))
        self.branched += 1
        for statement in (*node.body, *node.orelse):
            self.visit(statement)
        self.branched -= 1

    def _visit_branch(self, node: ast.AST) -> None:
        """A statement whose body may not run (``if``, ``while``, ``try``): what it binds is
        read as ever, but a swap bound there (:attr:`swaps`) is not taken for the argument's."""
        self.branched += 1
        self.generic_visit(node)
        self.branched -= 1

    visit_If = visit_While = visit_Try = visit_TryStar = _visit_branch

    def _visit_comprehension(self, node: ast.AST) -> None:
        """A comprehension's loops as ``for`` statements (``[h(x) for h in self.heads]``: each
        ``h`` the container's first member), then what it makes of each item."""
        roots, tainted = dict(self.roots), set(self.tainted)
        for generator in node.generators:
            self._bind_loop(generator.target, generator.iter)
            for condition in generator.ifs:
                self.visit(condition)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.visit(part)
        # its variables are its own: a name of the same spelling after it is another
        bound = {n.id for generator in node.generators for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
        for name in bound:
            if name in roots:
                self.roots[name] = roots[name]
            else:
                self.roots.pop(name, None)
            if name not in tainted:
                self.tainted.discard(name)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comprehension

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """A function defined inside forward is not run where it is defined: its body is
        read where it is called, as a helper's."""
        self.local[node.name] = node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        for argument in (*node.args, *(k.value for k in node.keywords)):
            self.visit(argument)
        arguments: list[tuple[int | str, ast.AST]] = [
            *enumerate(node.args), *((k.arg or "**", k.value) for k in node.keywords)
        ]
        entry = next(((key, a) for key, a in arguments if self._carries(a)), None)
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if callee == "pack_padded_sequence" and entry is not None and entry[0] in (0, "input"):
            flag = next((k.value for k in node.keywords if k.arg == "batch_first"), None)
            if flag is None:
                self.packs.append(False)  # torch's default
            elif isinstance(flag, ast.Constant) and isinstance(flag.value, bool):
                self.packs.append(flag.value)
            else:
                self.packs.append(None)
        if callee == "pack_padded_sequence":
            given = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "lengths"), None)
            # the lengths as a flat list or on the CPU (OpenNMT-py's src_len.view(-1).tolist())
            while (
                isinstance(given, ast.Call) and isinstance(given.func, ast.Attribute) and given.func.attr in _AS_LENGTHS
            ):
                given = given.func.value
            if given is not None and self._carries(given):
                self.packed_lengths.append(True)
        # a local function may reach the argument by closure, with no argument passed
        local = isinstance(node.func, ast.Name) and node.func.id in self.local
        followed = self._follow(node) if entry is not None or local else False
        if entry is not None and not followed:
            expression = _self_module(node.func, self.roots)
            if expression is None:
                expression = self._functional(node, entry)
                if expression is not None and entry[0] in (2, "offsets"):
                    entry = ("offsets", entry[1])  # F.embedding_bag(ids, w, offsets): its layer's offsets
            if expression is not None and expression not in self.consumers:
                self._consume(expression, entry)
        self.visit(node.func)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        """``x @ self.weight``: a layer written as a product with the model's own weight."""
        self.generic_visit(node)
        if isinstance(node.op, ast.MatMult) and _passes(node.left, self.itself) and not self._carries(node.right):
            expression = self._weighted("@", node.right)
            if expression is not None and expression not in self.consumers:
                self._consume(expression, (0, node.left))

    def _weight_path(self, node: ast.AST) -> str | None:
        """The name of the model's tensor ``node`` is, or has the shape of: ``self.weight``;
        a local name that holds one; an elementwise mix of tensors of one shape, such as a
        weight sampled per call (``self.mu + F.softplus(self.rho) * torch.randn_like(self.mu)``,
        a Bayesian layer's). None for anything else (a product of two factors has neither's
        shape)."""
        if self.model is None or self._carries(node):
            return None
        if isinstance(node, ast.Name) and node.id in self.weights:
            return self.weights[node.id]
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            path = _self_module(node, self.roots)
            return path if path is not None and _held_tensor(self.model, path) is not None else None
        parts: list[ast.AST]
        if isinstance(node, ast.BinOp) and isinstance(node.op, _ELEMENTWISE):
            parts = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            parts = [node.operand]
        elif isinstance(node, ast.IfExp):
            parts = [node.body, node.orelse]  # sampled in training, the mean in eval
        elif isinstance(node, ast.Call) and (
            getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        ) in _ELEMENTWISE_CALLS:
            parts = [*node.args] if not isinstance(node.func, ast.Attribute) or ast.unparse(
                node.func.value
            ) in _FUNCTIONAL_OWNERS else [node.func.value, *node.args]
        else:
            return None
        found = [(part, self._weight_path(part)) for part in parts]
        paths = [path for _, path in found if path is not None]
        # every part a weight or a number, the weights of one shape
        if not paths or any(path is None and not isinstance(part, ast.Constant) for part, path in found):
            return None
        return paths[0] if len({tuple(_held_tensor(self.model, path).shape) for path in paths}) == 1 else None

    def _functional(self, node: ast.Call, entry: tuple[int | str, ast.AST]) -> str | None:
        """The name of a functional layer over the model's own weight that ``node`` is and
        the argument enters as its input (``F.linear(x, self.weight)``, ``F.conv1d(x,
        self.filters)``, ``torch.matmul(x, self.W)``, ``F.embedding(ids, self.table)``),
        read as the layer it stands for (:func:`functional_layer`); None for any other call."""
        func = node.func
        bag_offsets = isinstance(func, ast.Attribute) and func.attr == "embedding_bag" and entry[0] in (2, "offsets")
        if not (
            isinstance(func, ast.Attribute) and func.attr in _FUNCTIONAL_LAYERS
            and ast.unparse(func.value) in _FUNCTIONAL_OWNERS and (entry[0] in (0, "input") or bag_offsets)
            and _passes(entry[1], self.itself)
        ):
            # only where the argument itself is its input: what such a layer, or anything
            # else, made of it says nothing of its shape
            return None
        kind = func.attr
        if (kind in ("matmul", "mm")) != (ast.unparse(func.value) == "torch"):
            return None  # torch.linear, F.matmul: not these
        weight = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg in ("weight", "other", "mat2")), None
        )
        if weight is None or self._carries(weight):
            return None
        groups = next((k.value for k in node.keywords if k.arg == "groups"), None)
        if kind.startswith("conv") and len(node.args) > 6:
            groups = node.args[6]
        if groups is not None and not (isinstance(groups, ast.Constant) and isinstance(groups.value, int)):
            return None  # the input's channels are the weight's times a number not read here
        return self._weighted("matmul" if kind == "mm" else kind, weight, groups.value if groups is not None else 1)

    def _weighted(self, kind: str, weight: ast.AST, groups: int = 1) -> str | None:
        """``F.<kind>(..., <path>)`` when ``weight`` is a tensor the model holds (a
        parameter or buffer; ``.T``, ``.t()`` and ``.mT`` of one for a product or
        ``F.linear``), else None."""
        transposed = False
        if kind in ("matmul", "@", "linear") and (
            (isinstance(weight, ast.Attribute) and weight.attr in ("T", "mT"))
            or (isinstance(weight, ast.Call) and isinstance(weight.func, ast.Attribute)
                and weight.func.attr == "t" and not weight.args)
        ):
            weight = weight.value if isinstance(weight, ast.Attribute) else weight.func.value
            transposed = True
        path = self._weight_path(weight)
        if path is None or self.model is None or functional_layer(
            self.model, name := _functional_name(kind, path, transposed, groups)
        ) is None:
            return None
        return name

    def _consume(self, expression: str, entry: tuple[int | str, ast.AST]) -> None:
        self.consumers.append(expression)
        self.entries[expression] = entry[0]
        axes = _swapped_axes(_kept_layout(entry[1]))
        if axes is None and isinstance(entry[1], ast.Name):
            axes = self.swaps.get(entry[1].id)
        if axes is not None:
            self.transposed[expression] = axes
        axis = self._reduced_axis(entry[1])
        if axis is not None:
            self.reduced[expression] = axis
            if self._is_step(entry[1]):
                self.stepped.add(expression)
        column = self._picked_column(entry[1])
        if column is not None:
            self.picked[expression] = column
        joined = self._joined(entry[1])
        if joined is not None:
            self.concatenated[expression] = joined
        if isinstance(entry[1], ast.Tuple):
            # one member only: an argument unpacked into all of them (h, c = state) is the tuple
            carried = [i for i, e in enumerate(entry[1].elts) if self._carries(e)]
            if len(carried) == 1:
                self.members[expression] = carried[0]

    # ----------------------------------------------------------------- calls followed

    def _follow(self, node: ast.Call) -> bool:
        """Follow the argument into the function ``node`` calls, when that is a method of
        a module, a parent's method through ``super()``, a plain Python function or one
        defined in forward; True when the call was one of those (it is then not a consumer
        itself)."""
        if self.depth >= MAX_DEPTH:
            return False
        found = self._callee(node.func)
        if found is None:
            return False
        function, bound, defining = found
        if function is None:
            # A torch layer's own forward: the module consumes the argument.
            entry = next(
                ((key, a) for key, a in [*enumerate(node.args), *((k.arg or "**", k.value) for k in node.keywords)]
                 if self._carries(a)),
                None,
            )
            if entry is not None and bound not in self.consumers:
                self._consume(bound, entry)
            return True
        if isinstance(function, ast.FunctionDef):
            # a function defined inside the code being read: a closure over its names
            tree, positional, keywords = function, *_ast_parameters(function)
            roots: dict[str, str] = dict(self.roots)
            self_name, namespace, defining = self.self_name, self.namespace, self.defining
        else:
            tree = function_tree(function)
            if tree is None:
                return True
            try:
                parameters = list(inspect.signature(function).parameters.values())
            except (TypeError, ValueError):
                return True
            roots, namespace, self_name = {}, getattr(function, "__globals__", {}), None
            if bound is not None:
                if not parameters:
                    return True
                self_name = parameters[0].name
                roots[self_name] = bound
                parameters = parameters[1:]
            positional = [
                p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            keywords = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        tainted: set[str] = set()
        itself: set[str] = set()
        # parameters that take the argument with an axis gone (one step of it: ``self.step(x[t], h)``)
        reduced: dict[str, tuple[int, bool]] = {}
        # keywords it takes only through its **kwargs
        through = getattr(getattr(tree, "args", None), "kwarg", None) is not None
        for key, value in [*enumerate(node.args), *((k.arg, k.value) for k in node.keywords)]:
            if isinstance(value, ast.Starred) or key is None:
                continue
            if isinstance(key, int):
                if key >= len(positional):
                    continue
                parameter = positional[key]
            elif key in keywords or through:
                parameter = key
            else:
                continue
            module = _module_name(value, self.roots)
            if module is not None:
                roots[parameter] = module
            elif self._carries(value):
                tainted.add(parameter)
                if _passes(value, self.itself):
                    itself.add(parameter)
                axis = self._reduced_axis(value)
                if axis is not None:
                    reduced[parameter] = (axis, self._is_step(value))
        if isinstance(function, ast.FunctionDef):
            # a closure also sees the argument under the enclosing names it does not shadow
            tainted |= {n for n in self.tainted if n not in positional and n not in keywords}
        if not tainted:
            return True
        key = (tree, frozenset(tainted), tuple(sorted(roots.items())), tuple(sorted(reduced.items())))
        if key in self.seen:
            return True
        self.seen.add(key)
        tree = keyword_entries(tree, tainted)
        self.scopes.append((tree, frozenset(tainted)))
        inner = _Flow(
            tainted,
            model=self.model,
            roots=roots,
            defining=defining,
            namespace=namespace,
            parent=self,
            self_name=self_name,
        )
        inner.local = dict(self.local)
        if isinstance(function, ast.FunctionDef):
            itself |= {n for n in self.itself if n not in positional and n not in keywords}
        inner.itself = itself
        for parameter, (axis, step) in reduced.items():
            inner.reductions[parameter] = axis
            if step:
                inner.walked.add(parameter)
        for statement in tree.body:
            inner.visit(statement)
        return True

    def _module(self, name: str | None) -> nn.Module | None:
        if name is None or self.model is None:
            return None
        return _resolve_module(self.model, name)

    def _callee(self, func: ast.AST) -> tuple[Callable | ast.FunctionDef | None, str | None, type | None] | None:
        """(function, module name its first parameter is bound to, class it is defined
        in) for a call of a method, a ``super()`` method, a plain function or a function
        defined in the code being read (its syntax tree); None for any other call.
        ``function`` is None when the call reaches torch's own layer's forward."""
        if isinstance(func, ast.Attribute) and _is_super(func.value):
            owner = self.roots.get(self.self_name) if self.self_name is not None else None
            module = self._module(owner)
            if module is None:
                return None
            mro = type(module).__mro__
            start = mro.index(self.defining) + 1 if self.defining in mro else 1
            for cls in mro[start:]:
                if func.attr not in cls.__dict__:
                    continue
                function = cls.__dict__[func.attr]
                if _is_torch(cls):
                    # A torch layer's own forward (nn.LSTM's, nn.Sequential's): the
                    # module consumes the argument as that layer; nn.Module's has none.
                    return (None, owner, cls) if func.attr == "forward" and cls is not nn.Module else None
                return (function, owner, cls) if isinstance(function, types.FunctionType) else None
            return None
        if isinstance(func, ast.Attribute):
            owner = _module_name(func.value, self.roots)
            module = self._module(owner)
            if module is None:
                return None
            for cls in type(module).__mro__:
                if func.attr in cls.__dict__:
                    function = cls.__dict__[func.attr]
                    if _is_torch(cls):
                        # ``self.fc.forward(x)``: the layer consumes it, as ``self.fc(x)``.
                        return (None, owner, cls) if func.attr == "forward" and cls is not nn.Module else None
                    if isinstance(function, staticmethod):
                        # ``self.propagate(x, edge_index)`` of a @staticmethod: no self to bind
                        inner = function.__func__
                        return (inner, None, cls) if isinstance(inner, types.FunctionType) else None
                    return (function, owner, cls) if isinstance(function, types.FunctionType) else None
            return None
        if isinstance(func, ast.Name) and func.id in self.local:
            return self.local[func.id], None, self.defining
        if isinstance(func, ast.Name) and func.id not in self.roots:
            function = self.namespace.get(func.id)
            if isinstance(function, types.FunctionType) and not _is_torch(function):
                return function, None, None
        return None


#: Methods whose result is no longer the value they are called on (``x.new_zeros(...)`` is a
#: new tensor of x's dtype and device: an initial state made inside forward is not x).
_READS = frozenset({
    "size", "dim", "numel", "nelement", "item", "tolist", "any", "all", "sum", "mean",
    "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor",
})


def _passes(node: ast.AST, names: set[str], *, same_layout: bool = False) -> bool:
    """Whether ``node`` evaluates to one of ``names`` itself or a part of it: ``x``,
    ``x[0]``, ``x if c else y``, ``(x, y)``, ``x.to(dtype)`` — not ``x.shape`` or ``x + 1``.
    ``same_layout``: only through methods that keep its shape (:data:`_SAME_LAYOUT`)."""
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, (ast.Subscript, ast.Starred)):
        if same_layout and isinstance(node, ast.Subscript) and _adds_axes(node.slice):
            return False  # z[None], z[:, None]: a new axis
        return _passes(node.value, names, same_layout=same_layout)
    if isinstance(node, ast.IfExp):
        return any(_passes(branch, names, same_layout=same_layout) for branch in (node.body, node.orelse))
    if isinstance(node, ast.BoolOp):
        return any(_passes(v, names, same_layout=same_layout) for v in node.values)
    if isinstance(node, (ast.Tuple, ast.List)):
        return any(_passes(e, names, same_layout=same_layout) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr not in _READS:
        if same_layout and node.func.attr not in _SAME_LAYOUT:
            return False
        return _passes(node.func.value, names, same_layout=same_layout)
    return False


#: Methods that hand pack_padded_sequence the lengths they are called on, flat or as a list.
_AS_LENGTHS = frozenset({
    "tolist", "view", "reshape", "flatten", "squeeze", "cpu", "to", "long", "int", "numpy", "detach", "contiguous",
})


#: Methods whose result has the shape of the tensor they are called on.
_SAME_LAYOUT = frozenset({
    "to", "float", "double", "half", "bfloat16", "long", "int", "short", "type", "type_as", "contiguous",
    "clone", "detach", "cpu", "cuda", "requires_grad_", "detach_",
})


def _pairwise_assignment(node: ast.Assign) -> list[tuple[ast.AST, ast.AST]] | None:
    """The (target, value) pairs of ``a, b = x, y`` (one target, a tuple or list of names on
    both sides, as many, no starred one), where no value reads a name bound there (``a, b = b,
    a`` swaps, and is left whole); None for any other assignment."""
    if len(node.targets) != 1:
        return None
    target, value = node.targets[0], node.value
    if not (
        isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts) > 1
        and all(isinstance(t, ast.Name) for t in target.elts)
        and not any(isinstance(v, ast.Starred) for v in value.elts)
    ):
        return None
    bound = {t.id for t in target.elts}
    if any(isinstance(n, ast.Name) and n.id in bound for v in value.elts for n in ast.walk(v)):
        return None
    return list(zip(target.elts, value.elts))


def _kept_layout(node: ast.AST) -> ast.AST:
    """``node`` without the calls after it that keep its layout (``x.permute(0, 2,
    1).contiguous()`` is the permute)."""
    while (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SAME_LAYOUT
        and not node.args and not node.keywords
    ):
        node = node.func.value
    return node


def _swapped_receiver(node: ast.AST) -> ast.AST | None:
    """The tensor a swap (:func:`_swapped_axes`) is made of: ``x`` of ``x.transpose(1, 2)``,
    ``x.mT`` or ``torch.transpose(x, 1, 2)``."""
    if isinstance(node, ast.Attribute):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            return node.args[0] if node.args else None
        return node.func.value
    return None


def _adds_axes(index: ast.AST) -> bool:
    """Whether a subscript's index puts in an axis (``None``) or may (``...``)."""
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    return any(isinstance(part, ast.Constant) and (part.value is None or part.value is Ellipsis) for part in parts)


def _module_name(node: ast.AST, roots: dict[str, str]) -> str | None:
    """The name in the model of the module ``node`` stands for (``self`` is ``""``,
    ``self.blocks[0]`` is ``"blocks.0"``), or None when it is not one."""
    if isinstance(node, ast.Name) and node.id in roots:
        return roots[node.id]
    return _self_module(node, roots)


def _ast_parameters(node: ast.FunctionDef) -> tuple[list[str], list[str]]:
    """(positional parameter names, keyword parameter names) of a function's syntax tree."""
    args = node.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    return positional, [a.arg for a in (*args.args, *args.kwonlyargs)]


def _is_super(node: ast.AST) -> bool:
    """``super()`` or ``super(Cls, self)``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _is_torch(owner: Any) -> bool:
    return (getattr(owner, "__module__", "") or "").split(".")[0] == "torch"


def _swapped_axes(node: ast.AST) -> tuple[int, int] | None:
    """The two axes ``t.transpose(1, 2)``, ``torch.transpose(t, 1, 2)``, ``t.mT``, ``t.t()`` or
    a ``t.permute(...)`` that swaps two axes (``(0, 2, 1)``, ``(1, 0, 2)``) swap; None for
    anything else."""
    if isinstance(node, ast.Attribute) and node.attr in ("mT", "mH"):
        return (-2, -1)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr == "t" and not node.args:
        return (0, 1)  # t() takes tensors of at most two axes
    numbers = [_number(a) for a in node.args]
    if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
        numbers = numbers[1:]
    if node.func.attr in ("transpose", "swapaxes", "swapdims") and len(numbers) == 2:
        if all(isinstance(n, int) for n in numbers) and numbers[0] != numbers[1]:
            return (min(numbers), max(numbers))
    if node.func.attr == "permute" and sorted(n for n in numbers if isinstance(n, int)) == list(range(len(numbers))):
        moved = [axis for axis, n in enumerate(numbers) if n != axis]
        if len(moved) == 2:  # a permutation that swaps two axes: permute(1, 0, 2), permute(0, 2, 1)
            return (moved[0], moved[1])
    return None


#: What a concatenation's part that a submodule returns is named with, before the submodule's name.
MODULE_PART = "self."


def _concatenation(node: ast.AST, part: Callable[[ast.AST], str | None]) -> tuple[tuple[str, ...], int] | None:
    """(the parts, the axis) of ``torch.cat([x, y], dim=-1)`` (also ``torch.concat``, a
    tuple, ``dim`` given by position), each part as ``part`` names it; None for anything
    else, or when a part has no name."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("cat", "concat", "concatenate"):
        return None
    elements = node.args[0]
    if not isinstance(elements, (ast.List, ast.Tuple)):
        return None
    names = [part(element) for element in elements.elts]
    if None in names:
        return None
    keywords = {k.arg: k.value for k in node.keywords}
    axis = _number(keywords.get("dim", keywords.get("axis", node.args[1] if len(node.args) > 1 else ast.Constant(0))))
    if not isinstance(axis, int) or len(names) < 2:
        return None
    return tuple(names), axis


#: Functions whose output has as many features as their input (``F.silu``, ``torch.tanh``).
_SAME_WIDTH_FUNCTIONS = frozenset({
    "relu", "gelu", "silu", "tanh", "sigmoid", "elu", "leaky_relu", "mish", "softplus", "hardswish", "dropout",
})

#: Layers whose output has as many features as their input.
SAME_WIDTH = (
    nn.Identity, nn.Dropout, nn.LayerNorm, nn.BatchNorm1d, nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
    nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.PReLU, nn.Hardswish, nn.Softmax, nn.LogSoftmax, nn.RMSNorm,
)


def output_width(module: nn.Module | None) -> int | None:
    """The features a submodule's output has on its last axis, when its type says so: a
    Linear's ``out_features``, an Embedding's ``embedding_dim``, or a Sequential's last such
    layer (activations, dropout and norms after it keep the width); None when unknown."""
    if isinstance(module, (nn.Linear, nn.Bilinear)) and not isinstance(module, nn.LazyLinear):
        return module.out_features
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return module.embedding_dim
    if isinstance(module, nn.Sequential):
        for member in reversed(module):
            if not isinstance(member, SAME_WIDTH):
                return output_width(member)
    return None


#: Tensor methods (and torch functions) that reduce an axis given as ``dim``.
_REDUCTIONS = frozenset(
    ("mean", "sum", "amax", "amin", "max", "min", "prod", "logsumexp", "std", "var", "median", "nansum", "nanmean")
)


#: torch's layers whose output keeps its input's features (or channels): the input's shape
#: (dropout, activations, norms), the spatial sizes pooled, a transformer's ``d_model``.
_SHAPE_KEEPING = (
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.ReLU, nn.ReLU6, nn.GELU,
    nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish, nn.Softplus, nn.Hardswish,
    nn.Hardtanh, nn.PReLU, nn.Softmax, nn.LogSoftmax, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
    nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._MaxPoolNd, nn.TransformerEncoder, nn.TransformerDecoder, nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer, nn.Transformer,
)


#: Module class -> whether its forward assigns an attribute of the module (decided once per class).
_ASSIGNS_ITSELF: dict[type, bool] = {}


def _assigns_itself(cls: type) -> bool:
    """Whether ``cls``'s own forward (not torch's) updates an attribute of the module from
    its own earlier value and the call's data: ``self.mem = self.beta * self.mem + x`` or
    ``self.mem += x``, a state kept from call to call (a neuron keeping its membrane, as
    snntorch's ``init_hidden=True`` ones do). Not an attribute only written (the attention
    weights kept to be looked at), one rebuilt from the input alone (a cached table), or a
    counter (``self.calls += 1``). By the source."""
    known = _ASSIGNS_ITSELF.get(cls)
    if known is None:
        # the forward it runs: its own or a base class's (a subclass that changes only how
        # the state is reset), not torch's
        owner_class = next((klass for klass in cls.__mro__ if "forward" in vars(klass)), cls)
        forward = vars(owner_class).get("forward")
        tree = function_tree(forward) if isinstance(forward, types.FunctionType) and not _is_torch(owner_class) else None
        owner = tree.args.args[0].arg if tree is not None and tree.args.args else None
        known = False
        for node in ast.walk(tree) if owner is not None else ():
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AugAssign):
                targets, value = [node.target], ast.BinOp(node.target, node.op, node.value)
            else:
                continue
            # spikes, self.mem = step(x, self.mem): each name a tuple binds
            targets = [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
            for target in targets:
                if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == owner):
                    continue
                reads_itself = any(
                    isinstance(n, ast.Attribute) and n.attr == target.attr and isinstance(n.value, ast.Name)
                    and n.value.id == owner and isinstance(n.ctx, ast.Load)
                    for n in ast.walk(value)
                ) or any(
                    # through a method of its own that reads it (snntorch's
                    # self.mem = self.state_function(input_), which reads self.mem)
                    isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and isinstance(n.func.value, ast.Name) and n.func.value.id == owner
                    and target.attr in _read_by_method(cls, n.func.attr)
                    for n in ast.walk(value)
                )
                data = any(isinstance(n, ast.Name) and n.id != owner for n in ast.walk(value))
                known = known or (reads_itself and data)
        _ASSIGNS_ITSELF[cls] = known
    return known


def _read_by_method(cls: type, name: str) -> set[str]:
    """The attributes of the module that ``cls``'s method ``name`` (its own, not torch's) reads."""
    for klass in cls.__mro__:
        if name in vars(klass):
            function = vars(klass)[name]
            tree = function_tree(function) if isinstance(function, types.FunctionType) and not _is_torch(klass) else None
            if tree is None or not tree.args.args:
                return set()
            owner = tree.args.args[0].arg
            return {
                n.attr for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name)
                and n.value.id == owner
            }
    return set()


def _carries_state(body: list[ast.stmt]) -> bool:
    """Whether a loop's body carries a value from one step to the next: a name the body
    assigns and reads before it assigns it in the same step (``h = self.cell(x[t], h)``,
    ``spk, mem = self.lif(cur, mem)``, ``h += x[t]``). A state the body starts anew on each
    step is not carried (a beam search per sample: ``h = self.enc(src[b])``, then an inner
    loop over ``h``), nor is a running concatenation that only gathers each step's result
    (``out = torch.cat([out, y])``: what ``outs.append(y)`` gives)."""
    early, _ = _read_before_set(body, frozenset())
    return bool((early & _assigned(body)) - _concatenated(body)) or bool(_grown_and_read(body))


#: Functions that join tensors along an axis: a running ``out = torch.cat([out, y])``.
_JOINS = frozenset({"cat", "concat", "concatenate", "hstack", "vstack", "row_stack", "column_stack", "dstack"})


def _concatenated(body: list[ast.stmt]) -> set[str]:
    """The names a loop's body only gathers each step's result into, or counts with, and
    reads for nothing else: ``out = torch.cat([out, y], 0)`` (``y`` not read from ``out``),
    ``out = y if out is None else torch.cat([out, y])``, ``outs = outs + [y]``, ``outs +=
    [y]``, ``n = n + 1``, ``n += 1``: what the loop gives, not a state the next step
    computes from."""
    forms: dict[str, list[ast.AST]] = {}  # name -> its assignments in the body
    for node in (n for statement in body for n in ast.walk(statement)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            forms.setdefault(node.targets[0].id, []).append(node)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            forms.setdefault(node.target.id, []).append(node)
        elif isinstance(node, (ast.AnnAssign, ast.For, ast.With, ast.NamedExpr)) or (
            isinstance(node, ast.Assign) and len(node.targets) != 1
        ):
            targets = [node.target] if isinstance(node, (ast.AnnAssign, ast.For, ast.NamedExpr)) else (
                [i.optional_vars for i in node.items if i.optional_vars is not None] if isinstance(node, ast.With)
                else node.targets
            )
            for target in targets:
                for name in _bound_names(target):
                    forms.setdefault(name, []).append(node)  # assigned otherwise: not gathered
    gathered = set()
    for name, assignments in forms.items():
        if all(_gathers(node, name) for node in assignments):
            inside = {id(n) for node in assignments for n in ast.walk(node)}
            if not any(
                isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id == name and id(n) not in inside
                for statement in body for n in ast.walk(statement)
            ):
                gathered.add(name)
    return gathered


def _gathers(node: ast.AST, name: str) -> bool:
    """Whether an assignment to ``name`` only adds this step's result or a constant to it
    (:func:`_concatenated`'s forms)."""
    if isinstance(node, ast.AugAssign):
        return isinstance(node.op, ast.Add) and (
            isinstance(node.value, (ast.List, ast.Tuple)) and name not in _loads(node.value)
            or isinstance(_number(node.value), (int, float))
        )
    return isinstance(node, ast.Assign) and _gathered_value(node.value, name)


def _gathered_value(value: ast.AST, name: str) -> bool:
    """Whether ``value`` is ``name`` with this step's result joined or added to it."""
    if isinstance(value, ast.IfExp):
        # out = y if out is None else torch.cat([out, y]) (either way round)
        test = value.test
        if not (
            isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == name
            and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Is, ast.IsNot))
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None
        ):
            return False
        fresh, joined = (value.body, value.orelse) if isinstance(test.ops[0], ast.Is) else (value.orelse, value.body)
        return name not in _loads(fresh) and _gathered_value(joined, name)
    if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub)):
        own = [side for side in (value.left, value.right) if isinstance(side, ast.Name) and side.id == name]
        other = value.right if value.left in own else value.left
        if len(own) != 1 or name in _loads(other):
            return False
        # a counter (n = n + 1), or a list grown by a literal (outs = outs + [y])
        return isinstance(_number(other), (int, float)) or (
            isinstance(value.op, ast.Add) and isinstance(other, (ast.List, ast.Tuple))
        )
    if (
        isinstance(value, ast.Call) and isinstance(value.func, (ast.Attribute, ast.Name))
        and (value.func.attr if isinstance(value.func, ast.Attribute) else value.func.id) in _JOINS
        and value.args and isinstance(value.args[0], (ast.List, ast.Tuple))
    ):
        operands = value.args[0].elts
        own = [e for e in operands if isinstance(e, ast.Name) and e.id == name]
        others = [e for e in operands if e not in own] + value.args[1:] + [k.value for k in value.keywords]
        return len(own) == 1 and not any(name in _loads(e) for e in others)
    return False


#: List methods that grow a list in place (a loop's memory of its earlier steps).
_GROWS = frozenset({"append", "extend", "insert", "appendleft"})


def _grown_and_read(body: list[ast.stmt]) -> set[str]:
    """The lists a loop's body grows (``mem.append(y)``) and reads before it grows them
    (``torch.stack(mem)``, ``if mem:``, ``mem[-1]``), made before the loop: earlier steps'
    values carried to later ones (labml's FeedbackTransformer attends over them). A list it
    only grows (``outs.append``), or reads after growing it on each step, is what the loop
    gives, not a state."""
    grown: dict[str, int] = {}  # list -> the line it is first grown on
    positions: set[int] = set()
    for node in (n for statement in body for n in ast.walk(statement)):
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _GROWS
            and isinstance(node.func.value, ast.Name)
        ):
            name = node.func.value.id
            grown[name] = min(grown.get(name, node.lineno), node.lineno)
            positions.add(id(node.func.value))
    # read on a line before the step grows it: what earlier steps left (outs[-1] read after
    # outs.append(...) is this step's own value, a per-sample loop's)
    read = {
        n.id for statement in body for n in ast.walk(statement)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in positions
        and n.id in grown and n.lineno < grown[n.id]
    }
    return read - _assigned(body)


def _read_before_set(body: list[ast.stmt], defined: frozenset[str]) -> tuple[set[str], frozenset[str]]:
    """(the names ``body`` reads before it has surely assigned them, in statement order
    from ``defined``; the names surely assigned after it). An ``if`` assigns surely what
    both branches assign; a loop's body may not run, so what it assigns is not sure after it."""
    early: set[str] = set()
    for statement in body:
        if isinstance(statement, ast.If):
            early |= _loads(statement.test) - defined
            found, taken = _read_before_set(statement.body, defined)
            other, untaken = _read_before_set(statement.orelse, defined)
            early |= found | other
            defined = defined | (taken & untaken)
        elif isinstance(statement, (ast.For, ast.AsyncFor, ast.While)):
            head = statement.test if isinstance(statement, ast.While) else statement.iter
            early |= _loads(head) - defined
            targets = _names(statement.target) if isinstance(statement, (ast.For, ast.AsyncFor)) else set()
            for block in (statement.body, statement.orelse):
                found, _ = _read_before_set(block, defined | targets)
                early |= found
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                early |= _loads(item.context_expr) - defined
                if item.optional_vars is not None:
                    defined = defined | _names(item.optional_vars)
            found, defined = _read_before_set(statement.body, defined)
            early |= found
        elif isinstance(statement, ast.Try):
            found, defined = _read_before_set(statement.body, defined)
            early |= found
            for block in (*(h.body for h in statement.handlers), statement.orelse, statement.finalbody):
                early |= _read_before_set(block, defined)[0]
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined = defined | {statement.name}
        else:
            early |= _loads(statement) - defined
            if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
                early |= {statement.target.id} - defined  # h += x[t] reads h
            defined = defined | _assigned([statement])
    return early, defined


def _assigned(body: list[ast.stmt]) -> set[str]:
    """The names ``body`` assigns anywhere (a statement's targets, a loop's, ``with ... as``,
    ``:=``)."""
    found: set[str] = set()
    for node in (n for statement in body for n in ast.walk(statement)):
        if isinstance(node, ast.Assign):
            found.update(n for target in node.targets for n in _names(target))
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
            found.update(_names(node.target))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            found.update(_names(node.optional_vars))
    return found


def _names(target: ast.AST) -> set[str]:
    """The plain names an assignment target binds (``h``, ``spk, mem``; not ``self.h``)."""
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


#: Names a loop bound over the batch goes by.
BATCH_BOUND = re.compile(r"^(b|bs|bsz|n|batch|batch_size|n_samples|num_samples)$|batch", re.IGNORECASE)


def _size_of(node: ast.AST) -> tuple[ast.AST, int] | None:
    """(the tensor, the axis) whose size ``node`` reads: ``x.size(0)``, ``x.shape[1]``,
    ``len(x)`` (axis 0); None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and node.args:
        return node.args[0], 0
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size"
            and len(node.args) == 1 and isinstance(_number(node.args[0]), int)):
        return node.func.value, _number(node.args[0])
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "shape" and isinstance(_number(node.slice), int)):
        return node.value.value, _number(node.slice)
    return None


def _sizes_bound(target: ast.AST, value: ast.AST) -> dict[str, tuple[ast.AST, int]]:
    """The names an assignment binds to sizes of a tensor's axes: ``n = x.shape[0]``,
    ``n_steps, batch = x.shape[:2]`` (or ``x.shape``, ``x.size()``), ``t, b = x.size(0),
    x.size(1)``; each with (the tensor, the axis)."""
    if isinstance(target, ast.Name):
        if isinstance(value, ast.IfExp):
            # length = x.size(0) if x.dim() == 3 else 1 (SRU's): the size where the other is a
            # constant; two sizes (x.size(1) if self.batch_first else x.size(0)) say none
            if isinstance(value.orelse, ast.Constant):
                value = value.body
            elif isinstance(value.body, ast.Constant):
                value = value.orelse
            else:
                return {}
        found = _size_of(value)
        return {target.id: found} if found is not None else {}
    if not isinstance(target, (ast.Tuple, ast.List)):
        return {}
    if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
        return {
            element.id: found for element, member in zip(target.elts, value.elts)
            if isinstance(element, ast.Name) and (found := _size_of(member)) is not None
        }
    shape = value
    start = 0
    if isinstance(shape, ast.Subscript) and isinstance(shape.slice, ast.Slice) and shape.slice.step is None:
        lower = shape.slice.lower
        start = 0 if lower is None else _number(lower)
        shape = shape.value
        if not isinstance(start, int) or start < 0:
            return {}
    if isinstance(shape, ast.Call) and isinstance(shape.func, ast.Attribute) and shape.func.attr == "size" and not shape.args:
        tensor = shape.func.value
    elif isinstance(shape, ast.Attribute) and shape.attr == "shape":
        tensor = shape.value
    else:
        return {}
    if any(isinstance(element, ast.Starred) for element in target.elts):
        return {}
    return {
        element.id: (tensor, start + index) for index, element in enumerate(target.elts) if isinstance(element, ast.Name)
    }


def _counted_axis(node: ast.AST, sizes: dict[str, tuple[ast.AST, int]] | None = None) -> tuple[ast.AST, int] | None:
    """(the tensor, the axis) whose steps ``range(...)`` counts: ``range(x.size(0))``,
    ``range(x.shape[1])``, ``range(len(x))`` (axis 0), or ``range(n)`` for a name ``sizes``
    holds as such a size (``n_steps, batch = x.shape[:2]``); None for anything else."""
    node = _range_call(node)
    if node is None:
        return None
    counted = _range_count(node.args)
    if counted is None:
        return None
    if isinstance(counted, ast.Name) and sizes and counted.id in sizes:
        # a bound named like a batch size (batch_size, B, bsz) walks the samples, not steps
        return None if BATCH_BOUND.search(counted.id) else sizes[counted.id]
    return _size_of(counted)


def _range_call(node: ast.AST) -> ast.Call | None:
    """The ``range(...)`` call ``node`` is: itself, inside ``reversed(...)``, or a
    conditional's first branch that is one (``range(n) if forward else range(n - 1, -1,
    -1)``); None for anything else."""
    if isinstance(node, ast.IfExp):
        return _range_call(node.body) or _range_call(node.orelse)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id == "reversed" and len(node.args) == 1:
        return _range_call(node.args[0])
    return node if node.func.id == "range" and node.args and not node.keywords else None


def _range_count(arguments: list[ast.AST]) -> ast.AST | None:
    """What a range's arguments count the steps of: ``n`` of ``range(n)``, ``range(0, n)``
    and ``range(n - 1, -1, -1)`` (the steps backwards); None for any other range."""
    if len(arguments) == 1:
        return arguments[0]
    if len(arguments) == 2 and _number(arguments[0]) == 0:
        return arguments[1]
    if (
        len(arguments) == 3 and _number(arguments[1]) == -1 and _number(arguments[2]) == -1
        and isinstance(arguments[0], ast.BinOp) and isinstance(arguments[0].op, ast.Sub)
        and _number(arguments[0].right) == 1
    ):
        return arguments[0].left
    return None


def _walked_axis(node: ast.AST) -> tuple[ast.AST, int] | None:
    """(the tensor, the axis) a ``for`` loop walks one step at a time: ``for x_t in
    x.unbind(1)`` or ``torch.unbind(x, 1)``; None for anything else (``for v in views`` may
    walk a list of tensors as well as a tensor's first axis)."""
    call = _tensor_call(node, {"unbind"})
    if call is None:
        return None
    walked, arguments, keywords = call
    axis = _number(keywords.get("dim", arguments[0] if arguments else ast.Constant(0)))
    return (walked, axis) if isinstance(axis, int) else None


def _tensor_call(node: ast.AST, methods: set[str] | frozenset[str]) -> tuple[ast.AST, list[ast.AST], dict] | None:
    """(the tensor, the other positional arguments, the keywords) of ``t.f(...)`` or
    ``torch.f(t, ...)`` for ``f`` among ``methods``; None for any other node."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods):
        return None
    arguments = list(node.args)
    if isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
        if not arguments:
            return None
        tensor, arguments = arguments[0], arguments[1:]
    else:
        tensor = node.func.value
    return tensor, arguments, {k.arg: k.value for k in node.keywords}


def _step_of(node: ast.AST, steps: dict[str, int]) -> tuple[ast.AST, int] | None:
    """(the tensor, the axis) for one step of it taken by a loop's counter at that axis's
    place: ``x[t]``, ``x[:, t]``, ``x[..., t]`` where ``t`` counts that axis (``steps``)."""
    if not isinstance(node, ast.Subscript):
        return None
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    for place, part in enumerate(parts):
        if isinstance(part, ast.Name) and part.id in steps:
            every = all(
                isinstance(p, ast.Slice) and p.lower is None and p.upper is None and p.step is None for p in parts[:place]
            )
            ellipsis = place == 1 and isinstance(parts[0], ast.Constant) and parts[0].value is Ellipsis
            axis = steps[part.id]
            if (every and axis == place and place == len(parts) - 1) or (ellipsis and axis == -1):
                return node.value, axis
    return None


def _last_axis_column(node: ast.AST) -> tuple[ast.AST, int] | None:
    """(what is indexed, the column) for ``t[..., 2]``, through methods that keep the shape
    (``t[..., 0].long()``): one column of the last axis, that axis gone (pytorch-forecasting's
    ``x["encoder_cat"][..., 0]``, one categorical variable of a [batch, time, variables]
    table). None for anything else; ``t[:, 0]`` may be a sequence's first step as well as a
    table's first column, and is left to the calls resolution makes."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SAME_LAYOUT:
        node = node.func.value
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2):
        return None
    first, column = node.slice.elts
    column = _number(column)
    if not (isinstance(first, ast.Constant) and first.value is Ellipsis and isinstance(column, int) and column >= 0):
        return None
    return node.value, column


def _reduction_axis(node: ast.AST) -> tuple[ast.AST, int] | None:
    """(what is reduced, the axis) for ``t.mean(1)``, ``t.sum(dim=-2)``, ``torch.amax(t, 1)``,
    ``t.max(1)[0]`` or ``t.max(dim=1).values``; None for anything else, for a reduction that
    keeps the axis (``keepdim=True``) and for several axes at once."""
    if isinstance(node, ast.Subscript) or (isinstance(node, ast.Attribute) and node.attr == "values"):
        node = node.value
    call = _tensor_call(node, _REDUCTIONS)
    if call is None:
        return None
    reduced, arguments, keywords = call
    keep = keywords.get("keepdim", arguments[1] if len(arguments) > 1 else None)
    if keep is not None and not (isinstance(keep, ast.Constant) and keep.value is False):
        return None
    axis = _number(keywords.get("dim", arguments[0] if arguments else ast.Constant(None)))
    if not isinstance(axis, int):
        return None
    return reduced, axis


def keyword_entries(tree: ast.AST, keys: set[str]) -> ast.AST:
    """``tree`` (a function's definition) with the entries ``keys`` of its ``**kwargs`` read as
    names of their own, so that a flow follows a keyword the function takes only through
    ``**kwargs`` (perceiver-pytorch's ``PreNorm.forward(x, **kwargs)``): ``kwargs["context"]``,
    ``kwargs.get("context")`` and ``kwargs.pop("context")`` read ``context``;
    ``kwargs["context"] = v`` and ``kwargs.update(context=v)`` assign it; a call handed
    ``**kwargs`` is handed ``context=context`` too, unless the function takes the key out
    (``pop``, ``del kwargs["context"]``). ``tree`` itself when it has no
    ``**kwargs`` or every key is a parameter of its own (a copy otherwise)."""
    if not isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)) or tree.args.kwarg is None:
        return tree
    named = {a.arg for a in (*tree.args.posonlyargs, *tree.args.args, *tree.args.kwonlyargs)}
    keys = {key for key in keys if key not in named}
    if not keys:
        return tree
    store = tree.args.kwarg.arg
    # keys it takes out of **kwargs (kwargs.pop("context"), del kwargs["context"]): not
    # handed on with the rest
    removed = {
        key for node in ast.walk(tree) for key in (
            [node.args[0].value] if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == store
                and node.args and isinstance(node.args[0], ast.Constant)
            ) else [
                target.slice.value for target in node.targets
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                and target.value.id == store and isinstance(target.slice, ast.Constant)
            ] if isinstance(node, ast.Delete) else []
        )
    }

    def entry(node: ast.AST) -> str | None:
        """The key ``node`` reads (``kwargs["k"]``, ``kwargs.get("k", ...)``), if one of ``keys``."""
        if (
            isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == store
            and isinstance(node.slice, ast.Constant) and node.slice.value in keys
        ):
            return node.slice.value
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop")
            and isinstance(node.func.value, ast.Name) and node.func.value.id == store
            and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in keys
        ):
            return node.args[0].value
        return None

    class Rewrite(ast.NodeTransformer):
        def visit_Expr(self, node: ast.Expr) -> ast.AST:
            call = node.value
            if (
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "update"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == store
            ):
                assigned = [k for k in call.keywords if k.arg in keys]
                if assigned:
                    statements: list[ast.stmt] = [
                        ast.copy_location(ast.Assign([ast.Name(k.arg, ast.Store())], self.visit(k.value)), node)
                        for k in assigned
                    ]
                    call.keywords = [k for k in call.keywords if k.arg not in keys]
                    if call.keywords or call.args:
                        statements.append(self.generic_visit(node))
                    return statements
            return self.generic_visit(node)

        def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
            key = entry(node)
            if key is not None:
                return ast.copy_location(ast.Name(key, type(node.ctx)()), node)
            return self.generic_visit(node)

        def visit_Call(self, node: ast.Call) -> ast.AST:
            key = entry(node)
            if key is not None:
                return ast.copy_location(ast.Name(key, ast.Load()), node)
            self.generic_visit(node)
            handed = any(k.arg is None and isinstance(k.value, ast.Name) and k.value.id == store for k in node.keywords)
            if handed:
                given = {k.arg for k in node.keywords}
                node.keywords = [
                    *(ast.keyword(key, ast.Name(key, ast.Load())) for key in sorted(keys - given - removed)),
                    *node.keywords,
                ]
            return node

    return ast.fix_missing_locations(Rewrite().visit(copy.deepcopy(tree)))


def _flow(
    tree: ast.AST | None, name: str, model: nn.Module | None = None, *, strict: bool = False,
    opaque_modules: bool = False, same_layout: bool = False,
) -> _Flow:
    """The flow of forward argument ``name`` through ``tree`` (``model``'s forward, read
    by :func:`~dyncheck.infer.source._forward_tree`); with ``model`` it follows the
    argument into methods, ``super()`` and module-level functions. ``strict`` follows the
    argument itself only, not values computed from it (with ``same_layout``, only through
    methods that keep its shape); ``opaque_modules`` follows values computed from it except
    through a submodule's call."""
    roots, defining, namespace, self_name = {"self": ""}, None, {}, "self"
    if tree is not None:
        tree = keyword_entries(tree, {name})
    if model is not None:
        forward = type(model).forward
        defining = next((c for c in type(model).__mro__ if c.__dict__.get("forward") is forward), None)
        namespace = getattr(inspect.unwrap(forward), "__globals__", {})
        if isinstance(tree, (ast.FunctionDef, ast.AsyncFunctionDef)) and tree.args.args:
            self_name = tree.args.args[0].arg
            roots = {self_name: ""}
    flow = _Flow(
        name, model=model, roots=roots, defining=defining, namespace=namespace, self_name=self_name, strict=strict,
        opaque_modules=opaque_modules, same_layout=same_layout,
    )
    for statement in getattr(tree, "body", []) if tree is not None else []:
        flow.visit(statement)
    return flow


def _loop_members(target: ast.AST, iterated: ast.AST, roots: dict[str, str] | None = None) -> dict[str, str]:
    """Loop variables bound to members of a module container, each to the first member:
    ``for layer in self.layers[:n]``, ``for i, layer in enumerate(self.layers)`` and
    ``for block, head in zip(self.blocks, self.heads)``."""
    container = _self_module(_strip_slice(iterated), roots)
    if container is not None:
        return {target.id: f"{container}.0"} if isinstance(target, ast.Name) else {}
    if not (isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name)):
        return {}
    if iterated.func.id == "enumerate" and iterated.args and isinstance(target, ast.Tuple) and len(target.elts) == 2:
        return _loop_members(target.elts[1], iterated.args[0], roots)
    if iterated.func.id == "zip" and isinstance(target, ast.Tuple) and len(target.elts) == len(iterated.args):
        found: dict[str, str] = {}
        for element, argument in zip(target.elts, iterated.args):
            found.update(_loop_members(element, argument, roots))
        return found
    return {}


#: Functional layers read as the torch layer each stands for, by the model's weight they
#: are handed: the input's shape follows from the weight's as from that layer's.
_FUNCTIONAL_LAYERS = frozenset({"linear", "conv1d", "conv2d", "conv3d", "embedding", "embedding_bag", "matmul", "mm"})
_FUNCTIONAL_OWNERS = frozenset({"F", "functional", "nn.functional", "torch.nn.functional", "torch"})
_FUNCTIONAL_NAME = re.compile(
    r"(?:(?:F|torch)\.(\w+)\(\.\.\., ([\w.]+?)(\.T)?(?:, groups=(\d+))?\))|(?:\.\.\. (@) ([\w.]+?)(\.T)?)"
)


def is_functional(expression: str) -> bool:
    """Whether a consumer's name is a functional layer's (:func:`_functional_name`)."""
    return expression.startswith(("F.", "torch.", "... @ "))


_ELEMENTWISE = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
#: calls whose result has the shape of the tensors they are given
_ELEMENTWISE_CALLS = frozenset({
    "softplus", "exp", "sigmoid", "tanh", "abs", "sqrt", "log1p", "randn_like", "rand_like", "mul", "add", "clamp",
    "detach", "float", "contiguous",
})


def _held_tensor(model: nn.Module, path: str) -> torch.Tensor | None:
    """The parameter or buffer ``path`` names in ``model`` (materialised), or None."""
    for get in (model.get_parameter, model.get_buffer):
        try:
            found = get(path)
        except (AttributeError, KeyError, IndexError):
            continue
        return found if isinstance(found, torch.Tensor) and not is_lazy(found) else None
    return None


def _functional_name(kind: str, path: str, transposed: bool, groups: int) -> str:
    """How a functional layer is named among the consumers and in notes, as forward writes
    it: ``F.conv1d(..., encoder.filters)``, ``torch.matmul(..., w.T)``, ``... @ w``."""
    if kind == "@":
        return f"... @ {path}{'.T' if transposed else ''}"
    owner = "torch" if kind == "matmul" else "F"
    return f"{owner}.{kind}(..., {path}{'.T' if transposed else ''}{f', groups={groups}' if groups != 1 else ''})"


def functional_layer(model: nn.Module, expression: str) -> nn.Module | None:
    """The torch layer a functional one named by :func:`_functional_name` stands for, on
    the meta device (shapes only): ``F.linear(x, W)`` is ``nn.Linear(W.shape[1],
    W.shape[0])``, ``x @ W`` is ``nn.Linear(W.shape[0], W.shape[1])``, ``F.conv2d(x, W)``
    a ``Conv2d`` of ``W.shape[1]`` channels (times its groups), ``F.embedding(ids, W)`` a
    table of ``W.shape[0]`` rows. None when ``expression`` names none, or the weight is
    not a tensor of the layer's rank the model holds."""
    found = _FUNCTIONAL_NAME.fullmatch(expression)
    if found is None:
        return None
    if found[5]:  # ... @ w
        kind, path, transposed, groups = "matmul", found[6], bool(found[7]), 1
    else:
        kind, path, transposed, groups = found[1], found[2], bool(found[3]), int(found[4] or 1)
    weight = _held_tensor(model, path)
    if weight is None:
        return None
    return _stand_in(kind, tuple(weight.shape)[::-1] if transposed else tuple(weight.shape), groups)


@functools.lru_cache(maxsize=256)
def _stand_in(kind: str, shape: tuple[int, ...], groups: int) -> nn.Module | None:
    """One stand-in layer per kind and weight shape (the same object each time it is asked,
    shared by every model: inference reads its shapes and never changes it)."""
    convolutions = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d}
    with torch.device("meta"):
        if kind in ("linear", "matmul", "embedding", "embedding_bag") and len(shape) == 2 and min(shape) > 0:
            if kind == "embedding":
                return nn.Embedding(*shape)
            if kind == "embedding_bag":
                return nn.EmbeddingBag(*shape)
            return nn.Linear(shape[1], shape[0]) if kind == "linear" else nn.Linear(*shape)
        if kind in convolutions and len(shape) == int(kind[4]) + 2 and min(shape) > 0 and shape[0] % groups == 0:
            return convolutions[kind](shape[1] * groups, shape[0], shape[2:], groups=groups)
    return None


def _resolve_module(model: nn.Module, expression: str) -> nn.Module | None:
    """The submodule ``expression`` names; ``steps.*`` (a member picked by a variable,
    ``self.steps[i]``) is the first member when every member is alike (one class, the same
    parameter shapes), so any of them takes the same input; a functional layer's stand-in
    (:func:`functional_layer`); else None."""
    if is_functional(expression):
        return functional_layer(model, expression)
    head, star, rest = expression.partition("*")
    if star:
        container = _resolve_module(model, head.rstrip(".")) if head.rstrip(".") else model
        members = list(container.children()) if container is not None else []
        if not members or any(not _alike(members[0], m) for m in members[1:]):
            return None
        first = next(name for name, _ in container.named_children())
        return _resolve_module(model, f"{head}{first}{rest}")
    try:
        module = model.get_submodule(expression)
    except (AttributeError, KeyError, IndexError):
        return None
    return module if isinstance(module, nn.Module) else None


def _alike(a: nn.Module, b: nn.Module) -> bool:
    """One class, and parameters of the same names and shapes but for their first axis (a
    layer's outputs: heads of 3 and of 1 classes on the same 12 features take one input)."""
    if type(a) is not type(b):
        return False
    mine = [(n, tuple(p.shape[1:])) for n, p in a.named_parameters() if not is_lazy(p)]
    theirs = [(n, tuple(p.shape[1:])) for n, p in b.named_parameters() if not is_lazy(p)]
    return mine == theirs
