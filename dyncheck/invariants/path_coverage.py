"""coverage: over all examples of a run, every parameter is reached on some path and every
declared branch is taken both ways; the path census and the model's untaken source
branches are reported.

Every example runs in eval and in train mode (a model's paths differ between them: early
exits, LayerDrop, dropout). The census counts each distinct path (the ordered modules that
ran), how often it was taken and its parameters — a per-path summary in the spirit of
``paddle.summary``, which shows only the path of one call. Source branches come from
coverage.py, measured on the ``forward`` code of the model's own classes (user code, or the
installed package the target comes from; never torch's layers or a library's helpers), at
the branch points only (if, while, for, match).
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import os
import re
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.infer import optional_inputs_hint
from dyncheck.infer.source import parse_quietly, quietly
from dyncheck.invariants._base import Context, Invariant, module_name_map, parameter_owners
from dyncheck.invariants.grad_isolation import evaluate_branch, predicate_text
from dyncheck.paths import Layout, PathSet
from dyncheck.tracing import change_in_place, flat_items, same_floats

__all__ = ["Coverage", "Census"]


#: How many frozen parameters of modules that never ran :meth:`Coverage._frozen_reached`
#: changes one by one, at most.
_FROZEN_TRIED = 16
#: ... on this many of the largest examples.
_FROZEN_EXAMPLES = 3


@dataclass
class Census:
    """What the examples of one run did, path by path."""

    paths: Counter[tuple[str, ...]] = field(default_factory=Counter)
    ran: set[str] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)
    #: declared branch module -> [examples where it ran, examples where it did not]
    branches: dict[str, list[int]] = field(default_factory=dict)
    #: declared branch module -> [calls on which its predicate held, calls on which it did not]
    held: dict[str, list[int]] = field(default_factory=dict)


def _numel(parameters: list[nn.Parameter]) -> int:
    """How many values ``parameters`` hold; a lazy one not yet materialised (nn.LazyLinear
    before its first call) holds none yet."""
    return sum(0 if is_lazy(p) else p.numel() for p in parameters)


def _layer(model: nn.Module, name: str) -> str:
    module = model.get_submodule(name)
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


def _package(module_name: str) -> str:
    return module_name.split(".")[0]


def _library_dirs() -> tuple[str, ...]:
    """Where installed packages and the standard library live."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    found = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        found.update(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    return tuple(os.path.join(os.path.abspath(d), "") for d in found if d)


def _is_library(filename: str, library_dirs: tuple[str, ...]) -> bool:
    parts = filename.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or filename.startswith(library_dirs)


def _branch_lines(lines: list[str], first: int) -> set[int]:
    """The lines of a function that are branch points (if/elif, while, for, match and its
    cases), as coverage.py measures arcs: a line with no branch (a one-line ``def forward``,
    a ``with`` or ``try``) is never an untaken branch."""
    import ast
    import textwrap

    try:
        tree = parse_quietly(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.For, ast.AsyncFor, ast.Match)):
            found.add(node.lineno)
        elif isinstance(node, ast.match_case):
            found.add(node.pattern.lineno)
    return {line + first - 1 for line in found}


@dataclass(frozen=True)
class _Function:
    filename: str
    first: int
    last: int
    branches: frozenset[int]
    #: the forward a module of the model runs (an overridden one counts only where it ran)
    called: bool

    def holds(self, filename: str, line: int) -> bool:
        return filename == self.filename and self.first <= line <= self.last


def own_forwards(model: nn.Module, target_module: str = "") -> list[_Function]:
    """The ``forward`` code of the model's own module classes, and the methods of theirs it
    calls: user code, and of installed packages only the target's own (``target_module``'s;
    without it, the model class's).
    torch.nn's layers and a library's internals (output dataclasses, deprecation wrappers)
    are not the model's code."""
    own = {_package(target_module or type(model).__module__)}
    library_dirs = _library_dirs()
    found: dict[tuple[str, int], _Function] = {}
    for module in model.modules():
        runs = getattr(type(module), "forward", None)
        for cls in type(module).__mro__:
            if cls is nn.Module:
                break
            forward = cls.__dict__.get("forward")
            if forward is None or cls.__module__ is None:
                continue
            if _package(cls.__module__) == "torch" and "torch" not in own:
                continue
            # A decorated forward (@deprecate_kwarg, @can_return_tuple) is measured in its
            # own source, not in the decorator's file.
            function = inspect.unwrap(forward)
            try:
                lines, first = inspect.getsourcelines(function)
                filename = os.path.abspath(inspect.getsourcefile(function) or "")
            except (OSError, TypeError):
                continue
            if _is_library(filename, library_dirs) and _package(cls.__module__) not in own:
                continue
            found.setdefault((filename, first), _Function(
                filename, first, first + len(lines) - 1, frozenset(_branch_lines(lines, first)), forward is runs
            ))
        # The module's own methods its forward calls (self.encode(x)), where a branch under
        # forward's control sits as often as in forward itself.
        for method in sorted(m for m in _called_by_forward(type(module)) if "." not in m):
            function = next((vars(c)[method] for c in type(module).__mro__ if method in vars(c)), None)
            if isinstance(function, (staticmethod, classmethod)):
                function = function.__func__
            if not inspect.isfunction(function) or _package(function.__module__ or "") == "torch":
                continue  # torch's own layers' helpers (argument checks) are not the model's code
            try:
                lines, first = inspect.getsourcelines(inspect.unwrap(function))
                filename = os.path.abspath(inspect.getsourcefile(function) or "")
            except (OSError, TypeError):
                continue
            if _is_library(filename, library_dirs) and _package(function.__module__ or "") not in own:
                continue
            found.setdefault((filename, first), _Function(
                filename, first, first + len(lines) - 1, frozenset(_branch_lines(lines, first)), True
            ))
    return list(found.values())


class _SourceBranches:
    """Branches of the model's own forward code that no example took, via coverage.py."""

    def __init__(self, model: nn.Module, target_module: str = "") -> None:
        self.functions = own_forwards(model, target_module)
        self.coverage = None
        if self.functions:
            try:
                import coverage
            except ImportError:  # pragma: no cover - coverage is a dependency: only a broken install lacks it
                return
            self.coverage = coverage.Coverage(
                # config_file=False: the project's own coverage settings (omit, plugins) must not
                # hide the model's source from the census.
                branch=True, data_file=None, config_file=False, include=sorted({f.filename for f in self.functions})
            )
            self.coverage._warn_no_data = False  # an example may raise before any line runs

    def __enter__(self) -> _SourceBranches:
        if self.coverage is not None:
            try:
                _start_without_stack(self.coverage)
            except Exception:  # another tracer in the way: measure nothing rather than fail
                self.coverage = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.coverage is not None:
            self.coverage.stop()

    def untaken(
        self, left: Mapping[str, Any] | None = None, forward: _Function | None = None,
        drawn: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """``file:line  source  → never went on to line N`` for each untaken branch. A
        branch of the model's own ``forward`` whose condition reads an argument no example
        gave (``left``: name -> the default it kept, as in ``if mask is None:``) says so,
        with the Spec line that gives it values; one that reads an optional argument every
        example gives because inference drew it (``drawn``: name -> its default, a padding
        mask beside the tokens) says that its default is never given."""
        if self.coverage is None:
            return []
        # What a branch of forward reading each such argument says of it, by name.
        said = {
            **{n: f"is left at its default {d!r}: give it values with Spec(inputs={{{n!r}: ...}})"
               for n, d in (left or {}).items()},
            **{n: f"is inferred and given on every example: its default {d!r} never is"
               for n, d in (drawn or {}).items()},
        }
        found = []
        for filename in sorted({f.filename for f in self.functions}):
            try:
                with quietly():  # the module's own, as coverage.py compiles it
                    analysis = self.coverage._analyze(filename)
                    missing = analysis.missing_branch_arcs()
                executed = set(analysis.executed)
            except Exception:  # coverage.py's analysis API is not public; degrade quietly
                return []
            functions = [
                f for f in self.functions
                if f.filename == filename and (f.called or any(f.first <= n <= f.last for n in executed))
            ]
            shown = os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") else filename
            for line in sorted(missing):
                if not any(f.holds(filename, line) and line in f.branches for f in functions):
                    continue
                code = linecache.getline(filename, line).strip()
                kept = ""
                if forward is not None and forward.holds(filename, line):
                    kept = "".join(
                        f"; {n} {note}" for n, note in said.items() if re.search(rf"\b{re.escape(n)}\b", code)
                    )
                for destination in missing[line]:
                    found.append(f"{shown}:{line}  {code}  → {_where_not(code, destination, executed, filename)}{kept}")
        return found


def _where_not(code: str, destination: int, executed: set[int], filename: str) -> str:
    """What an untaken arc from the line ``code`` to ``destination`` means in words. A line
    that ran anyway, reached another way, is not one that never ran: past an ``if``/``elif``
    whose body always ran (``elif self.method == 'dot':`` on a model built with 'dot'), the
    condition held every time."""
    if destination < 0:
        return "never returned from here"
    line = linecache.getline(filename, destination).strip()
    if destination not in executed:
        return f"never went on to line {destination}: {line}"
    if re.match(r"(el)?if\b", code):
        return f"held every time: never skipped to line {destination}: {line}"
    return f"never went from here to line {destination} (it ran, reached another way): {line}"


def _start_without_stack(measure: Any) -> None:
    """``measure.start()``, without the caller's stack that coverage.py's collector records
    for its own debug output on the first start: ``inspect.stack()`` reads the source of
    every frame and looks up its module among all of torch's, about 40 ms under pytest, once
    per check. Only that record is left empty; where coverage.py no longer makes it so,
    the start is as before."""
    try:
        from coverage import collector
    except ImportError:  # pragma: no cover - coverage.py's layout of another version
        collector = None
    saved = getattr(collector, "short_stack", None)
    if saved is None:
        measure.start()
        return
    collector.short_stack = lambda *args, **kwargs: ""
    try:
        measure.start()
    finally:
        collector.short_stack = saved


def _left_at_default(
    model: nn.Module, context: Context
) -> tuple[dict[str, Any], _Function | None, dict[str, Any]]:
    """The model's forward arguments no example gave (name -> default), where its forward's
    source lies, and the optional arguments inference drew for every example (name ->
    default)."""
    function = inspect.unwrap(type(model).forward)
    try:
        parameters = inspect.signature(function).parameters
        lines, first = inspect.getsourcelines(function)
        filename = os.path.abspath(inspect.getsourcefile(function) or "")
    except (OSError, TypeError, ValueError):
        return {}, None, {}
    given = context.target.spec.inputs
    left = {
        name: p.default for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty and name not in given
    }
    drawn = {
        name: p.default for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty and name in given and name in context.target.inferred_inputs
    }
    return left, _Function(filename, first, first + len(lines) - 1, frozenset(), True), drawn


def _called_elsewhere(model: nn.Module, module_name: str, ran: set[str]) -> list[str]:
    """Where a module that never ran in forward is used instead: the methods (not forward,
    not nn.Module's own) of the classes above it whose source reads it, or the outermost
    container around it that never ran either, through ``self`` (ESM's ``contact_head``,
    run by ``predict_contacts()``); an accessor that only returns or replaces it
    (``get_input_embeddings``) does not count. One line, or none."""
    outermost = module_name
    while "." in outermost and outermost.rpartition(".")[0] not in ran:
        outermost = outermost.rpartition(".")[0]
    if not outermost:
        return []
    parts = outermost.split(".")
    found: list[str] = []
    through: list[str] = []  # methods forward itself calls (Longformer's global attention helper)
    for depth in range(len(parts)):
        owner = model.get_submodule(".".join(parts[:depth]))
        # Called or read into (self.contact_head(...), self.head.weight, self.experts[i]), not
        # only handed back or replaced (get_input_embeddings: return self.wte).
        attribute = re.compile(rf"\bself\.{re.escape('.'.join(parts[depth:]))}\s*[(\[.]")
        for klass in type(owner).__mro__:
            if klass in (nn.Module, object) or klass.__module__.startswith("torch."):
                continue
            for name, function in vars(klass).items():
                if name == "forward" or name.startswith("__") or not inspect.isfunction(function):
                    continue
                try:
                    source = inspect.getsource(function)
                except (OSError, TypeError):
                    continue
                if attribute.search(source):
                    found.append(f"{klass.__name__}.{name}()")
                    # the method that runs (not one a subclass overrides), and the forward of
                    # its module or of one around it calls it (self.inner.special(x))
                    runs = inspect.getattr_static(type(owner), name, None) is function
                    try:
                        reached = runs and _forward_reaches(model, parts, depth, name)
                    except Exception:  # source that cannot be read as expected: not through forward
                        reached = False
                    if reached:
                        through.append(found[-1])
    if not found:
        return []
    if through:
        # Not another entry point: forward reaches the module through a helper, on a branch
        # no example took (the optional-argument hint below says what may switch it on);
        # other methods that use it too (CLIP's encode_text beside set_grad_checkpointing)
        # are said apart.
        others = [method for method in dict.fromkeys(found) if method not in through]
        also = f"; also by {', '.join(others)}, which forward does not call" if others else ""
        return [
            f"{outermost} is used by {', '.join(dict.fromkeys(through))}, which forward calls: on a branch no "
            f"example took{also}; give inputs that take it, or, if none does (a setting fixed when the model is "
            f"built), declare it: Spec(unused={{{outermost!r}: 'used by {through[0]}'}})"
        ]
    return [
        f"{outermost} is used by {', '.join(dict.fromkeys(found))}, not by forward: check that method with a Spec "
        f"whose model calls it, or declare it: Spec(unused={{{outermost!r}: 'used by {found[0]}'}})"
    ]


#: Why inference drew a forward argument as a plain setting (a step count, a mode, a flag).
_SETTING = re.compile(r"^(annotated (int|str|bool)|a string compared|a count|annotated Literal|annotated an Enum)")


#: Float settings of forward that guard the arithmetic, not what runs.
_NUMERIC_NAME = re.compile(r"(^|_)(eps|epsilon|tol|tolerance|atol|rtol)$")


def _settings_hint(model: nn.Module, target: Any) -> list[str]:
    """A line for a report of dead modules: forward's plain settings (ints, strings, flags)
    that choose what runs, with the values the examples gave them: inferred from a few
    values (a step count drawn from 0 to 3 beside four steps, a mode compared with one
    string, whose other side is any other), or left at a default that is not None
    (``num_steps: int = 2``, a slimmable net's ``width_mult: float = 1.0``; not an ``eps``).
    Empty when forward has none."""
    try:
        parameters = inspect.signature(inspect.unwrap(type(model).forward)).parameters
    except (TypeError, ValueError):
        return []
    drawn = [
        f"{name} (drawn as {target.spec.inputs[name]!r})" for name, why in target.inferred_inputs.items()
        if name in parameters and name in target.spec.inputs and _SETTING.match(why)
    ]
    kept = [
        f"{name} (left at its default {p.default!r})" for name, p in parameters.items()
        if name not in target.spec.inputs and (
            type(p.default) in (int, str, bool)
            or type(p.default) is float and not _NUMERIC_NAME.search(name)  # a width multiplier, not an eps
        )
    ]
    settings = [*drawn, *kept]
    if not settings:
        return []
    first = settings[0].split(" ")[0]
    named = getattr(target.spec.model, "__qualname__", type(target.spec.model).__qualname__)  # the factory as named
    return [
        f"forward's settings {', '.join(settings)} may choose what runs: if other values switch the dead modules "
        f"on, give them, e.g. dyncheck.Spec({named}, "
        f"inputs={{{first!r}: dyncheck.strategies.controls(...)}}), or declare the modules Spec(unused=...)"
    ]


def _parsed(function: Any) -> ast.AST | None:
    """The syntax tree of ``function``'s source; None when it cannot be read."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None
    for text in (textwrap.dedent(source), "if True:\n" + source):  # a docstring line at column 0
        try:
            return parse_quietly(text)
        except SyntaxError:
            continue
    return None


@functools.lru_cache(maxsize=256)
def _called_by_forward(klass: type, entry: str = "forward") -> frozenset[str]:
    """What ``entry`` (forward) of ``klass`` calls or hands on through ``self``, directly or
    through its own methods (also its parents' through ``super()``): method names
    (``_compute_global_attn_output_from_hidden``, Longformer's, under a branch; ``self._extra``
    handed to ``checkpoint``) and methods of submodules by their path (``inner.special``).
    Read from the code, not from comments or strings."""
    def defining(function: Any) -> int:
        return next((i for i, c in enumerate(klass.__mro__) if function in vars(c).values()), 0)

    def resolved(name: str, after: int = -1) -> Any:
        for c in klass.__mro__[after + 1:]:
            if name in vars(c):
                function = vars(c)[name]
                if isinstance(function, (staticmethod, classmethod)):
                    function = function.__func__
                return function if inspect.isfunction(function) else None
        return None

    def dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute) or (
            isinstance(node, ast.Subscript) and parts and not isinstance(node.slice, ast.Slice)
        ):
            parts.append(node.attr if isinstance(node, ast.Attribute) else "*")  # self.layers[i].special
            node = node.value
        if not isinstance(node, ast.Name) or not parts:
            return None
        base = "" if node.id == "self" else aliases.get(node.id)
        if base is None:
            return None
        return ".".join([base, *reversed(parts)] if base else reversed(parts))

    targets: set[str] = set()
    seen: set[Any] = set()
    pending = [resolved(entry)]
    while pending:
        function = pending.pop()
        if function is None or function in seen:
            continue
        seen.add(function)
        tree = _parsed(function)
        if tree is None:
            continue
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                value = node.func.value
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
                    pending.append(resolved(node.func.attr, defining(function)))  # the parent's method runs
            if not isinstance(node, ast.Attribute):
                continue
            target = dotted(node, aliases)  # called, or handed on (checkpoint(self._extra, x))
            if target is None:
                continue
            targets.add(target)
            if "." not in target:
                pending.append(resolved(target))
    return frozenset(targets)


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local names that stand for a submodule of ``self``, by its dotted path: an element of
    a container a loop runs over (``for layer in self.layers``, through ``enumerate``,
    ``zip``, ``reversed``, ``.values()``, ``.items()``, a slice: ``layers.*``), or one taken
    from it (``block = self.blocks[i]``) or named (``head = self.head``). Read once per
    function, whatever the scope: a name rebound to something else is a rare false "reached"."""
    def path(node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        return ".".join(reversed(parts)) if isinstance(node, ast.Name) and node.id == "self" and parts else None

    def elements(node: ast.AST) -> list[str | None] | str | None:
        """What one step of a loop over ``node`` binds: a path, or one per tuple member."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("reversed", "list", "tuple", "iter") and len(node.args) == 1:
                return elements(node.args[0])
            if node.func.id == "enumerate" and node.args:
                return [None, elements(node.args[0])]  # type: ignore[list-item]
            if node.func.id == "zip":
                return [elements(a) for a in node.args]  # type: ignore[misc]
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
            value = node.func.value
            owner = "" if isinstance(value, ast.Name) and value.id == "self" else path(value)
            if owner is None:
                return None
            each = f"{owner}.*" if owner else "*"
            if node.func.attr in ("values", "children"):
                return each
            if node.func.attr in ("items", "named_children"):
                return [None, each]  # type: ignore[list-item]
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            return elements(node.value)
        if isinstance(node, ast.Name) and node.id == "self":
            return "*"  # for layer in self: an nn.Sequential's own children
        owner = path(node)
        return f"{owner}.*" if owner is not None else None

    def bind(target: ast.AST, value: Any, found: dict[str, str]) -> None:
        if isinstance(target, ast.Name) and isinstance(value, str):
            found[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, list):
            for member, bound in zip(target.elts, value):
                bind(member, bound, found)

    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension)):
            bind(node.target, elements(node.iter), found)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Subscript) and not isinstance(value.slice, ast.Slice):
                owner = path(value.value)
                if owner is not None:
                    found[node.targets[0].id] = f"{owner}.*"
            elif (owner := path(value)) is not None:
                found[node.targets[0].id] = owner
    return found


def _forward_reaches(model: nn.Module, parts: list[str], depth: int, name: str) -> bool:
    """Whether the forward of the module at ``parts[:depth]``, or of one around it, reaches
    the method ``name`` of that module: directly, or through methods of submodules it calls,
    and the ones those call in turn (``self.inner.special(x)``, where ``special`` calls
    ``self._project`` or ``self.deep.helper``)."""
    wanted = ".".join([*parts[:depth], name])
    for above in range(depth + 1):
        prefix = ".".join(parts[:above])
        if wanted in _reached(model, prefix, "forward", set()):
            return True
    return False


def _reached(model: nn.Module, path: str, entry: str, seen: set[tuple[str, str]]) -> set[str]:
    """The methods (by full dotted name in ``model``) that ``entry`` of the module at
    ``path`` reaches through ``self`` and its submodules' methods, a few levels down."""
    if (path, entry) in seen or len(seen) > 64:
        return set()
    seen.add((path, entry))
    module = model.get_submodule(path)
    found: set[str] = set()
    for target in _called_by_forward(type(module), entry):
        for each in _each_element(module, target):
            full = f"{path}.{each}" if path else each
            found.add(full)
            inner, _, method = each.rpartition(".")
            if inner:
                try:
                    model.get_submodule(f"{path}.{inner}" if path else inner)
                except AttributeError:
                    continue
                found |= _reached(model, f"{path}.{inner}" if path else inner, method, seen)
    return found


def _each_element(module: nn.Module, target: str) -> list[str]:
    """``target`` with each ``*`` (an element of a container a loop ran over) replaced by
    the names of that container's children: ``layers.*.special`` -> ``layers.0.special``, ..."""
    if "*" not in target:
        return [target]
    if target.startswith("*"):  # the module's own children
        head, rest, container = "", target[1:], module
    else:
        head, _, rest = target.partition(".*")
        try:
            container = module.get_submodule(head)
        except AttributeError:
            return []
    return [
        each for name, _ in container.named_children()
        for each in _each_element(module, f"{head}.{name}{rest}" if head else f"{name}{rest}")
    ]


def _under(name: str, prefixes: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``prefixes`` or lies inside one (``Spec(unused=...)``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _declared_unused(model: nn.Module, spec: Any) -> dict[str, str]:
    """``Spec(unused=...)`` by the names the census uses (a shared module's first name)."""
    canonical = module_name_map(model)
    return {canonical.get(name, name): reason for name, reason in spec.unused.items()}


def _names(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _examples(count: int) -> str:
    return f"{count:,} example{'' if count == 1 else 's'}"


def _searched(count: int) -> str:
    return f" and a directed search of {count:,} more" if count else ""


def _lifted(model: nn.Module, parameter: nn.Parameter, owners: tuple[str, ...]) -> tuple[str, ...]:
    """The modules that run where a frozen parameter is read: an ``nn.ParameterDict`` or
    ``nn.ParameterList`` is never called, its parent reads it (peft AdaLoRA's
    ``self.ranknum[adapter]`` in forward), so a frozen parameter there counts as run where
    its parent ran, as one held by the parent itself would. A trainable one is known by its
    gradient, and keeps its container."""
    if parameter.requires_grad:
        return owners
    lifted = []
    for owner in owners:
        while owner and isinstance(model.get_submodule(owner), (nn.ParameterDict, nn.ParameterList)):
            owner = owner.rpartition(".")[0]
        lifted.append(owner)
    return tuple(lifted)


class Coverage(Invariant):
    name = "coverage"
    summary = (
        "every parameter is reached on some path and every declared branch is taken both ways; "
        "reports the path census and the model's untaken source branches"
    )

    #: A directed search for modules and branch sides no example reached looks at up to
    #: this many times the run's examples before calling them dead or unexercised, and at
    #: least ``search_floor`` examples: after 1 example and a search of 10, an expert a
    #: router picks one time in ten was called dead.
    search_factor = 10
    search_floor = 200

    def check(self, context: Context, example: Example) -> None:
        self._observe(context, example)
        if not context.memo["coverable"]:
            return context.nothing_to_compare(
                "the model has no parameters and declares no branches (Spec(branches=...)): nothing to cover"
            )
        context.compared()

    def _observe(self, context: Context, example: Example) -> list[set[str]]:
        """Run ``example`` in eval and in train mode and add both calls to the census;
        returns the modules each call ran. Models differ between the two (early exits,
        dropout, LayerDrop, batch norm), and the other checks see both: a census of one
        would contradict them. Each mode runs on a fresh copy."""
        census: Census = context.memo.setdefault("census", Census())
        # the largest few examples (the first are the simplest: all zeros, a batch of one, a
        # sequence of one step), on which _frozen_reached changes frozen parameters
        largest = context.memo.setdefault("largest", [])
        size = sum(t.numel() for t in flat_items(example.args) if isinstance(t, torch.Tensor))
        largest[:] = sorted([*largest, (size, len(census.paths) + sum(census.paths.values()), example)],
                            key=lambda entry: entry[:2], reverse=True)[:_FROZEN_EXAMPLES]
        ran = []
        for mode in ("eval", "train"):
            model = context.fresh_model()
            if "source" not in context.memo:
                context.memo["source"] = _SourceBranches(model, context.target.text.partition(":")[0])
                context.memo["coverable"] = bool(context.target.spec.branches) or any(True for _ in model.parameters())
            canonical = module_name_map(model)
            model.train(mode == "train")
            try:
                with context.memo["source"]:
                    trace = context.run(model, example)
            except ModelError as exc:
                exc.stage = f"{exc.stage} in {mode} mode"
                raise
            census.paths[trace.path] += 1
            census.ran.update(trace.modules)
            census.reached.update(trace.reached)
            for declared, predicate in context.target.spec.branches.items():
                # Whether the module ran, not whether its predicate held: that agreement is
                # grad_isolation's check; this one asks that both sides were exercised. The
                # predicate is counted too, for the words when one side never ran.
                module_name = canonical.get(declared, declared)
                census.branches.setdefault(module_name, [0, 0])[0 if module_name in trace.modules else 1] += 1
                try:
                    holds, _ = evaluate_branch(predicate, example, type(model).forward)
                except Exception:  # noqa: BLE001 - grad_isolation reports a predicate that raises
                    continue
                census.held.setdefault(module_name, [0, 0])[0 if holds else 1] += 1
            ran.append(set(trace.modules))
        return ran

    def _frozen_reached(self, context: Context, census: Census) -> None:
        """Frozen parameters (``requires_grad=False``, which no gradient reaches) of modules
        that never ran, that the output moves with all the same: a module used through a
        method of its own, not called (rotary embeddings' ``rotate_queries_or_keys`` with
        their fixed ``freqs``). Each is changed on a fresh copy and a few of the
        examples run again (in eval mode, under their seeds); those that move an output are
        added to ``census.reached``. One parameter at a time, at most ``_FROZEN_TRIED`` of them;
        once per check."""
        if context.memo.get("frozen_checked"):
            return
        context.memo["frozen_checked"] = True
        copy = context.fresh_model()
        canonical = module_name_map(copy)
        candidates: list[tuple[str, ...]] = []
        for parameter, names, owners in parameter_owners(copy):
            owners = tuple(canonical.get(o, o) for o in _lifted(copy, parameter, owners))
            if parameter.requires_grad or any(o in census.ran or o == "" for o in owners) or set(names) & census.reached:
                continue
            candidates.append(names)
        candidates = candidates[:_FROZEN_TRIED]
        examples = [example for _, _, example in context.memo.get("largest", [])]
        if not candidates or not examples:
            return

        def output(model: nn.Module, example: Example) -> Any:
            model.eval()
            with torch.no_grad():
                return context.run(model, example, record=False, grad=False).output

        for example in examples:
            base = output(context.fresh_model(), example)
            if not same_floats(base, output(context.fresh_model(), example)):
                continue  # the output moves by itself (sampling in eval): nothing to tell
            for names in list(candidates):
                model = context.fresh_model()
                with torch.no_grad():
                    change_in_place(model.get_parameter(names[0]))
                try:
                    moved = not same_floats(base, output(model, example))
                except ModelError:
                    moved = True  # it raises with other values: it is read
                if moved:
                    census.reached.update(names)
                    candidates.remove(names)

    def _missing(self, context: Context, census: Census) -> set[str]:
        """Modules with parameters that never ran, and declared branches seen one way only
        (as ``name:ran`` / ``name:skipped``)."""
        self._frozen_reached(context, census)
        model = context.fresh_model()
        canonical = module_name_map(model)
        unused = _declared_unused(model, context.target.spec)
        missing = set()
        for parameter, names, owners in parameter_owners(model):
            owners = tuple(canonical.get(o, o) for o in _lifted(model, parameter, owners))
            if not any(o in census.ran or o == "" for o in owners) and not set(names) & census.reached:
                if not _under(owners[0], unused):
                    missing.add(owners[0])
        for module_name, (ran, skipped) in census.branches.items():
            # a side the predicate took while the module did not follow: no search helps
            held, not_held = census.held.get(module_name, [0, 0])
            if not ran and not held:
                missing.add(f"{module_name}:ran")
            if not skipped and not not_held:
                missing.add(f"{module_name}:skipped")
        return missing

    def _search(self, context: Context, census: Census) -> int:
        """Look for examples reaching what the run did not (rare experts, rare branches);
        everything found joins the census. Returns how many examples were looked at."""
        from hypothesis.errors import NoSuchExample

        from dyncheck.examples import quiet, search

        budget = max(self.search_factor * context.examples, self.search_floor)
        looked = 0
        # Under a time budget the search gets what the examples left of it.
        remaining = context.budget.remaining() if context.budget is not None else None
        if remaining is not None and remaining <= 0:
            return 0
        stop = None if remaining is None else time.monotonic() + remaining

        def reaches(wanted: set[str]) -> Any:
            # A pure condition of the example (find replays what it found): does it run a
            # wanted module, or take a wanted side of a declared branch?
            def condition(example: Example) -> bool:
                nonlocal looked
                if stop is not None and time.monotonic() > stop:
                    return False  # out of time: look no further (find ends at its max_examples)
                looked += 1
                for ran in self._observe(context, example):
                    for item in wanted:
                        name, _, side = item.partition(":")
                        if (side == "skipped" and name not in ran) or (side != "skipped" and name in ran):
                            return True
                return False

            return condition

        while (wanted := self._missing(context, census)) and looked < budget:
            if stop is not None and time.monotonic() > stop:
                break
            try:
                search(context.target, reaches(wanted), quiet(budget))
            except NoSuchExample:
                break
        return looked

    def finish(self, context: Context) -> None:
        census: Census | None = context.memo.get("census")
        if census is None:
            return
        searched = self._search(context, census) if self._missing(context, census) else 0
        model = context.fresh_model()
        canonical = module_name_map(model)
        owners = [
            (p, names, tuple(dict.fromkeys(canonical.get(o, o) for o in _lifted(model, p, owners))))
            for p, names, owners in parameter_owners(model)
        ]
        ran = census.ran | {""}
        unused = _declared_unused(model, context.target.spec)
        dead: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for parameter, names, module_names in owners:
            if any(m in ran for m in module_names) or set(names) & census.reached:
                continue
            if not is_lazy(parameter) and parameter.numel() == 0:
                continue  # nothing to learn (vit-pytorch's cls_token of no tokens, pool='mean')
            if not _under(module_names[0], unused):
                dead.setdefault(module_names[0], []).append((names[0], parameter))
        # Declared unused, and forward does use it: the declaration no longer holds.
        used: dict[str, str] = {}
        for declared in unused:
            modules = sorted(m for m in census.ran if _under(m, (declared,)))
            read = sorted(n for n in census.reached if _under(n, (declared,)) and not _under(n, modules))
            parts = [f"{_names(modules)} ran"] if modules else []
            parts += [f"{_names(read)} got a gradient"] if read else []
            if parts:
                used[declared] = " and ".join(parts)
        if unused:
            quiet_modules = sorted(set(unused) - set(used))
            if quiet_modules:
                context.note(
                    "unused",
                    lambda _: "declared unused (Spec(unused=...)), not counted dead: "
                    + "; ".join(f"{m} ({unused[m]})" for m in quiet_modules),
                )
        total = _numel([p for p, _, _ in owners])

        layout = Layout.of(model)
        entries: dict[tuple[str, ...], dict[str, Any]] = {}
        for path, count in sorted(census.paths.items()):
            leaf_path = layout.leaf_path(path)
            if leaf_path in entries:  # the same leaves, through other containers
                entries[leaf_path]["count"] += count
                continue
            on_path = [m for m in dict.fromkeys(path)]
            parameters = [p for p, _, mods in owners if any(m in on_path for m in mods) or "" in mods]
            layers = []
            for name in on_path:
                own = [p for p, _, mods in owners if name in mods]
                if own or not any(True for _ in model.get_submodule(name).children()):
                    layers.append([name, _layer(model, name), _numel(own)])
            entries[leaf_path] = {
                "modules": list(leaf_path),
                "count": count,
                "params": _numel(list({id(p): p for p in parameters}.values())),
                "layers": layers,
            }
        census_paths = PathSet(entries, layout)
        described = census_paths.describe_all()
        for leaf_path, entry in entries.items():
            entry["path"] = described[leaf_path]
        paths = sorted(entries.values(), key=lambda entry: (-entry["count"], entry["path"]))
        source = context.memo["source"].untaken(*_left_at_default(model, context)) if "source" in context.memo else []
        dead_rows = [
            {
                "module": module_name,
                "layer": _layer(model, module_name) if module_name else type(model).__name__,
                "params": _numel([p for _, p in params]),
                "names": [f"{n} {list(p.shape)}" for n, p in params],
            }
            for module_name, params in dead.items()
        ]
        # Parameter counts by the modules that own them: the summary counts a path this
        # check's own calls did not take (another check's) from these.
        grouped: dict[tuple[str, ...], int] = {}
        for parameter, _, module_names in owners:
            grouped[module_names] = grouped.get(module_names, 0) + _numel([parameter])
        context.report["census"] = {
            "examples": context.examples,
            "total_params": total,
            "paths": paths,
            "owners": [[list(module_names), numel] for module_names, numel in grouped.items()],
            "dead": dead_rows,
            "source": source,
        }

        findings: list[str] = []
        details: list[str] = []
        if dead_rows:
            count = sum(row["params"] for row in dead_rows)
            findings.append(
                f"{count:,} of {total:,} parameters are dead: no example ran their module or reached them "
                f"in {_examples(context.examples)}{_searched(searched)}."
            )
            for row in dead_rows:
                details.append(
                    f"{row['module']} ({row['layer']}) never ran: {', '.join(row['names'])} "
                    f"({row['params']:,} parameters)"
                )
                details.extend(f"  {line}" for line in _called_elsewhere(model, row["module"], ran))
            # cross-attention runs only with encoder_hidden_states: name such arguments
            details.extend(optional_inputs_hint(model, context.target.spec, census.ran))
            # a step count or a mode that picks what runs, drawn from few values or left at its default
            details.extend(_settings_hint(model, context.target))
        for declared, where in used.items():
            findings.append(
                f"{declared} is declared unused in forward ({unused[declared]!r}), but forward used it in "
                f"{_examples(context.examples)}{_searched(searched)}: {where}. Remove "
                f"{declared!r} from Spec(unused=...)."
            )
        for module_name, (ran_count, skipped_count) in census.branches.items():
            if ran_count and skipped_count:
                continue
            side = "never ran" if not ran_count else "always ran"
            predicate = context.target.spec.branches.get(module_name)
            condition = predicate_text(predicate) if predicate else "its predicate"
            held, not_held = census.held.get(module_name, [0, 0])
            other = not_held if ran_count else held
            if other:
                # the inputs did take the predicate the other way: the module ignores it
                findings.append(
                    f"The declared branch {module_name} {side} in {_examples(context.examples)}{_searched(searched)}, "
                    f"although `{condition}` was {'false' if ran_count else 'true'} on {other:,} of its calls: it "
                    f"{'runs' if ran_count else 'never runs'} whatever its predicate says (grad_isolation names an "
                    "example)."
                )
                continue
            findings.append(
                f"The declared branch {module_name} {side} in {_examples(context.examples)}{_searched(searched)}: the inputs "
                f"never made `{condition}` {'true' if not ran_count else 'false'}, so one side of it is untested."
            )
        if findings:
            if census_paths.full or len(paths) == 1:
                details.append("paths seen: " + "; ".join(f"{p['path']} ({p['count']})" for p in paths))
            else:
                details.append(f"paths seen: {len(paths)} through {census_paths.outline()}, by what varies:")
                details.extend(f"  {p['path']} ({p['count']})" for p in paths[:8])
                if len(paths) > 8:
                    details.append(f"  ... {len(paths) - 8} more (--dyncheck-explain lists all in the summary)")
            details.extend(f"source: {line}" for line in source)
            headline = findings[0] if len(findings) == 1 else f"{len(findings)} coverage problems:"
            if len(findings) > 1:
                details = [f"- {f}" for f in findings] + details
            raise InvariantViolation(headline, details)

