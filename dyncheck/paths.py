"""Paths on one line: what a call ran, described by what varies between calls.

A path is the tuple of submodules one call ran, in call order. On a small model it reads
best in full (``fc1 → fc2 → fc3``). A four-layer decoder has about forty leaf modules, so
its full path runs for a screen and every path looks alike; it is described instead
against the run's common structure (:class:`PathSet`):

* by what it skips: ``layers.1, layers.3 skipped`` (LayerDrop);
* by what it runs among the modules that vary: ``only experts.2 → experts.0`` (routing),
  ``block ×3`` (adaptive depth);
* or, when nothing varies, ``all 39 modules (embed → layers.0-3 → norm → head)``.

Names are shortened by the model's own structure: a submodule whose leaves all ran (or all
were skipped) is named once (``layers.1``, not its nine leaves), and indexed siblings are
grouped (``layers.0-3``). Everything here is a function of the paths and of the model's
module names alone, so a description is the same wherever it is computed (on an xdist
worker for one example, or in the summary over the merged census).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the summary describes paths without importing torch
    from torch import nn

__all__ = ["WIDTH", "Layout", "PathSet", "chain", "describe"]

#: The longest description, in characters: a summary line (``    path …  (1,234 calls,
#: 5,678 params)``) and a message's ``path:`` line stay within about 120 characters.
WIDTH = 80

ARROW = " → "


@dataclass(frozen=True)
class Layout:
    """The module names of one model: its leaf modules in definition order, and the
    containers (modules with children), which paths leave out."""

    leaves: tuple[str, ...]
    containers: frozenset[str] = frozenset()
    #: the ModuleLists: never called themselves, so named by their items (``layers.0-3``)
    lists: frozenset[str] = frozenset()

    @classmethod
    def of(cls, model: nn.Module | None) -> Layout | None:
        if model is None:
            return None
        from torch import nn

        leaves, containers, lists = [], set(), set()
        for name, module in model.named_modules():
            if not name:
                continue
            if isinstance(module, nn.ModuleList):
                lists.add(name)
            # A module with children is a container, unless it holds parameters of its own
            # and computes with them (nn.MultiheadAttention: in_proj_weight, its out_proj
            # used through its weight and never called): then it is a step of the path too.
            if any(True for _ in module.children()) and not any(True for _ in module.parameters(recurse=False)):
                containers.add(name)
            else:
                leaves.append(name)
        return cls(tuple(leaves), frozenset(containers), frozenset(lists))

    def leaf_path(self, modules: Iterable[str]) -> tuple[str, ...]:
        """``modules`` without the containers (a Sequential's call says nothing its layers
        do not)."""
        return tuple(m for m in modules if m not in self.containers)


def chain(path: Sequence[str]) -> str:
    """``input_layer → hidden_layer ×3 → output_layer``: every module in call order, runs of
    one module folded."""
    if not path:
        return "(no submodule ran)"
    return ARROW.join(_cycles([_label(name, count) for name, count in _runs(path)]))


def describe(path: Sequence[str], layout: Layout | None = None, *, width: int = WIDTH) -> str:
    """One path on its own: in full when it fits in ``width``, else ``all 39 modules (embed →
    layers.0-3 → norm → head)``, or ``27 of 39 modules (…)`` when some never ran."""
    if layout is not None:
        path = layout.leaf_path(path)
    return PathSet([path], layout, width=width).describe(path)


#: The path of a model with no submodules: itself, never "no submodule ran".
ALONE = "(the model alone: it has no submodules)"


class PathSet:
    """The paths of a run, as the reference each one is described against.

    The modules every path runs the same number of times are the common structure; a path
    is described by the rest (the modules whose count varies between paths):

    * by what it skips, when some path runs every module that varies (LayerDrop, early
      exits: paths are the full one less some blocks);
    * otherwise, or when modules repeat or change order, by what it runs of them (routing,
      adaptive depth).

    Paths are leaf paths (see :meth:`Layout.leaf_path`); ``layout`` gives the definition
    order (for names: ``layers.1-3``) and the model's module count. The call order of the
    modules is merged from the paths themselves, longest first, so it is the same however
    the paths arrive.
    """

    def __init__(self, paths: Iterable[Sequence[str]], layout: Layout | None = None, *, width: int = WIDTH) -> None:
        self.paths = sorted({tuple(p) for p in paths})
        self.layout = layout
        self.width = width
        self.full = all(len(chain(p)) <= width for p in self.paths)
        flow = _merged_order(self.paths)
        self.index = {name: i for i, name in enumerate(flow)}
        known = set(flow)
        defined = [n for n in layout.leaves if n in known] if layout is not None else []
        defined += sorted(known - set(defined), key=_natural)
        self.tree = _Tree(defined, layout.lists if layout is not None else None)
        counts = [Counter(p) for p in self.paths]
        self.varying = {n for n in flow if len({c[n] for c in counts}) > 1}
        # Modules every path runs as often, in another order (experts ranked by gate):
        # they vary too.
        steady = [tuple(n for n in p if n not in self.varying) for p in self.paths]
        for one, other in zip(steady, steady[1:]):
            self.varying.update(a for a, b in zip(one, other) if a != b)
            self.varying.update(b for a, b in zip(one, other) if a != b)
        self._ran_form = self._prefers_ran_form(counts)

    def _prefers_ran_form(self, counts: list[Counter[str]]) -> bool:
        """Whether paths are best told by what they run rather than by what they skip."""
        if not self.varying:
            return False
        if any(c[n] > 1 for c in counts for n in self.varying):
            return True
        if not any(self.varying <= set(p) for p in self.paths):
            return True  # no full path to tell the others against
        return not all(self._in_order(p) for p in self.paths)

    def _in_order(self, path: Sequence[str]) -> bool:
        positions = [self.index[n] for n in path]
        return positions == sorted(positions)

    def outline(self) -> str:
        """``embed → layers.0-3 → norm → head (39 modules)``: every module any path ran, in
        call order; a container is named whole only when its modules all vary or none does."""
        order = list(self.index)
        if not all(self._in_order(p) for p in self.paths):
            # The modules that vary come in no one order (routing by rank): between the
            # modules every path runs, they are listed in definition order.
            rank = {name: i for i, name in enumerate(self.tree.order)}
            order, run = [], []
            for name in [*self.index, None]:
                if name is not None and name in self.varying:
                    run.append(name)
                    continue
                order += sorted(run, key=rank.__getitem__) + ([name] if name is not None else [])
                run = []
        return f"{self._compact(order, self.width + 8, split=self.varying)} ({self._count()})"

    def _compact(self, path: Sequence[str], width: int, split: set[str] | None = None) -> str:
        """``path`` with containers named whole: as deep as still fits in ``width``
        (``transformer.{wte → wpe → h.0-3 → ln_f} → lm_head`` rather than ``transformer →
        lm_head``), else as shallow as it gets."""
        deepest = max((name.count(".") for name in path), default=0) + 1
        for depth in range(deepest, 0, -1):
            labels = _group(self.tree.segments(path, split=split, depth=depth), self.tree)
            if _fits(labels, ARROW, width):
                return _render(labels, ARROW, width)
        return _render(_group(self.tree.segments(path, split=split), self.tree), ARROW, width)

    def _count(self) -> str:
        """``39 modules``, or ``21 of 39 modules`` when the paths do not run them all."""
        known = len(self.index)
        total = max(len(self.layout.leaves), known) if self.layout is not None else known
        return _modules(known) if known == total else f"{known} of {_modules(total)}"

    def differences(self) -> str:
        """What varies between the paths (``layers.0-3``), or ``""``."""
        return _render(_group(self.tree.cover(self.varying), self.tree), ", ", self.width)

    def describe(self, path: Sequence[str]) -> str:
        """``path`` (one of :attr:`paths`, or a new one) on one line; see the module."""
        path = tuple(path)
        if self.layout is not None and not path and not self.layout.leaves and not self.layout.containers:
            return ALONE  # the target is one layer (an nn.LSTM a library subclasses)
        if path not in self.paths:
            return PathSet([*self.paths, path], self.layout, width=self.width).describe(path)
        if self.full:
            return chain(path)
        if not path:
            return "(no submodule ran)"
        if len(self.paths) == 1:
            count = self._count()
            count = count if " of " in count else f"all {count}"
            return f"{count} ({self._compact(path, self.width - len(count) - 3)})"
        skipped = _group(self.tree.cover(set(self.index) - set(path)), self.tree)
        ran = _group(self.tree.segments([n for n in path if n in self.varying]), self.tree)
        if self._ran_form:
            if not ran:
                return self._list(skipped, " skipped")
            return ("only " if skipped else "") + self._join(ran, self.width - (5 if skipped else 0))
        if not skipped:
            count = self._count()
            return f"all {count}" if " of " not in count else f"all {_modules(len(self.index))} seen"
        return self._list(skipped, " skipped")

    def _join(self, labels: list[str], width: int | None = None) -> str:
        return _render(_cycles(labels), ARROW, self.width if width is None else width)

    def _list(self, labels: list[str], suffix: str) -> str:
        return _render(labels, ", ", self.width - len(suffix)) + suffix

    def describe_all(self) -> dict[tuple[str, ...], str]:
        """Every path's description; two paths that read alike (a detail lost to the
        shortening) are told apart by a number."""
        texts = {p: self.describe(p) for p in self.paths}
        seen: Counter[str] = Counter(texts.values())
        number: Counter[str] = Counter()
        for path in self.paths:
            text = texts[path]
            if seen[text] > 1:
                number[text] += 1
                texts[path] = f"{text} (variant {number[text]})"
        return texts


class _Tree:
    """The module hierarchy behind a set of leaf names (``layers.0.attn.q_proj`` lies in
    ``layers.0.attn``, ``layers.0`` and ``layers``)."""

    def __init__(self, order: Sequence[str], lists: frozenset[str] | None = None) -> None:
        self.lists = lists
        self.order = {name: i for i, name in enumerate(order)}
        self.under: dict[str, set[str]] = {}
        self.children: dict[str, dict[str, None]] = {"": {}}
        for leaf in order:
            parts = leaf.split(".")
            for depth in range(1, len(parts)):
                self.under.setdefault(".".join(parts[:depth]), set()).add(leaf)
            for depth in range(1, len(parts) + 1):
                parent = ".".join(parts[: depth - 1])
                self.children.setdefault(parent, {})[".".join(parts[:depth])] = None

    def is_list(self, name: str) -> bool:
        """A ModuleList (without a layout: a container whose children are named by index):
        named by its items, grouped (``layers.0-3``), never as a whole. A list that is
        itself an item of a list (x-transformers' ``layers.2``: norm, block, residual) is
        an item: it is named whole."""
        return self._listlike(name) and not self._listlike(name.rpartition(".")[0])

    def _listlike(self, name: str) -> bool:
        if not name:
            return False
        return name in self.lists if self.lists is not None else self.indexed(name)

    def indexed(self, name: str) -> bool:
        """Whether the children of ``name`` are named by index (a ModuleList, a Sequential)."""
        children = self.children.get(name, {})
        return bool(children) and all(c.rpartition(".")[2].isdigit() for c in children)

    def leaves(self, name: str) -> set[str]:
        return self.under.get(name, {name})

    def cover(self, selected: set[str]) -> list[tuple[str, int]]:
        """The fewest names that make up ``selected`` (containers whose leaves are all in it),
        in definition order."""
        found: list[tuple[str, int]] = []

        def visit(name: str) -> None:
            if name and not self.is_list(name) and self.leaves(name) <= selected:
                found.append((name, 1))
                return
            if name in self.under or not name:
                for child in self.children.get(name, {}):
                    visit(child)

        visit("")
        return found

    def segments(
        self, path: Sequence[str], split: set[str] | None = None, depth: int = 0
    ) -> list[tuple[str, int]]:
        """``path`` as (name, times) in call order: a run of calls inside one container that
        visits all of its leaves, each visit complete, is the container (``block``, 3).
        A container with some of its leaves in ``split`` and some not, or nested less than
        ``depth`` deep (``transformer`` is 1 deep), is never named whole."""
        out: list[tuple[str, int]] = []
        i = 0
        while i < len(path):
            leaf = path[i]
            parts = leaf.split(".")
            for level in range(max(depth, 1), len(parts)):
                name = ".".join(parts[:level])
                if self.is_list(name) or split and 0 < len(self.under[name] & split) < len(self.under[name]):
                    continue
                prefix = name + "."
                j = i
                while j < len(path) and path[j].startswith(prefix):
                    j += 1
                visits: list[set[str]] = []
                for step in path[i:j]:
                    if step == leaf or not visits:
                        visits.append(set())
                    visits[-1].add(step)
                if all(v == self.under[name] for v in visits):
                    out.append((name, len(visits)))
                    i = j
                    break
            else:
                inside = self.under.get(leaf, set())
                j = i + 1
                if inside and len(parts) >= depth and not (split and inside & split):
                    # A step with parameters of its own whose children then run (timm's
                    # BatchNormAct2d: its batch norm, then its act): one visit of it, not
                    # two; unless a child is what varies between paths.
                    while j < len(path) and path[j].startswith(leaf + "."):
                        j += 1
                if j > i + 1:
                    if out and out[-1][0] == leaf and path[i - 1].startswith(leaf + "."):
                        out[-1] = (leaf, out[-1][1] + 1)
                    else:
                        out.append((leaf, 1))
                    i = j
                    continue
                j = i
                while j < len(path) and path[j] == leaf:
                    j += 1
                out.append((leaf, j - i))
                i = j
        return out


_INDEXED = re.compile(r"^(.*)\.(\d+)$")


def _group(labels: list[tuple[str, int]], tree: _Tree) -> list[str]:
    """Consecutive siblings of one list, each once, as a range: ``layers.0-3``."""
    out: list[str] = []
    i = 0
    while i < len(labels):
        name, count = labels[i]
        match = _INDEXED.match(name)
        j = i + 1
        if match and count == 1 and tree.indexed(match.group(1)):
            parent, first = match.group(1), int(match.group(2))
            while j < len(labels) and labels[j] == (f"{parent}.{first + j - i}", 1):
                j += 1
            if j - i > 1:
                out.append(f"{parent}.{first}-{first + j - i - 1}")
                i = j
                continue
        out.append(_label(name, count))
        i += 1
    return out


def _merged_order(paths: Sequence[tuple[str, ...]]) -> list[str]:
    """Every module of ``paths`` in call order: the longest path's order, each other
    module placed after the module that precedes it on its own path."""
    order: list[str] = []
    for path in sorted(paths, key=lambda p: (-len(set(p)), p)):
        previous = None
        for name in dict.fromkeys(path):
            if name not in order:
                order.insert(order.index(previous) + 1 if previous is not None else 0, name)
            previous = name
    return order


def _natural(name: str) -> list[tuple[int, int | str]]:
    """``layers.10`` after ``layers.9``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in name.split(".")]


def _runs(path: Sequence[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for name in path:
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1] + 1)
        else:
            runs.append((name, 1))
    return runs


def _cycles(labels: list[str]) -> list[str]:
    """``labels`` with a run of one group of them repeated folded into ``(fc1 → fc2) ×6``: a
    cell unrolled by hand, a spiking net's layers step after step. At each place the repeat
    that covers the most labels (the shortest group of those), two labels a group at least;
    a repeat inside a group is folded too (``(encoder → (cell → out) ×3) ×2``: a search per
    sample, each sample's steps)."""
    folded: list[str] = []
    index = 0
    while index < len(labels):
        best = (0, 0)
        for size in range(2, (len(labels) - index) // 2 + 1):
            group = labels[index:index + size]
            times = 1
            while labels[index + times * size:index + (times + 1) * size] == group:
                times += 1
            if times >= 2 and size * times > best[0] * best[1]:
                best = (size, times)
        size, times = best
        if times:
            folded.append(f"({ARROW.join(_cycles(labels[index:index + size]))}) ×{times}")
            index += size * times
        else:
            folded.append(labels[index])
            index += 1
    return folded


def _label(name: str, count: int) -> str:
    return name if count == 1 else f"{name} ×{count}"


def _modules(count: int) -> str:
    return f"{count} module{'s' if count != 1 else ''}"


def _render(labels: list[str], separator: str, width: int) -> str:
    """``labels`` joined; when that is too long, consecutive names under one container
    written once (``model.decoder.layers.{0, 2-3}``); when still too long, cut with a count."""
    text = separator.join(labels)
    if len(text) <= width:
        return text
    return _fit(_fold(labels, separator), separator, width)


def _fits(labels: list[str], separator: str, width: int) -> bool:
    """Whether :func:`_render` shows every label."""
    return any(len(separator.join(form)) <= width for form in (labels, _fold(labels, separator)))


def _fold(labels: list[str], separator: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(labels):
        end, prefix = i + 1, ""
        for j in range(i + 2, len(labels) + 1):
            common = _common_prefix(labels[i:j])
            if not common:
                break
            end, prefix = j, common
        if prefix:
            inner = separator.join(label[len(prefix) + 1:] for label in labels[i:end])
            out.append(f"{prefix}.{{{inner}}}")
        else:
            out.append(labels[i])
        i = end
    return out


def _common_prefix(labels: list[str]) -> str:
    """The dotted container all ``labels`` lie in (each keeps a name of its own)."""
    names = [label.split(" ")[0].split(".") for label in labels]
    common: list[str] = []
    for parts in zip(*(n[:-1] for n in names)):
        if any(p != parts[0] for p in parts):
            break
        common.append(parts[0])
    return ".".join(common)


def _fit(labels: list[str], separator: str, width: int) -> str:
    """``labels`` joined, or as many as fit followed by ``… (N more)``."""
    text = separator.join(labels)
    if len(text) <= width:
        return text
    for keep in range(len(labels) - 1, 0, -1):
        text = f"{separator.join(labels[:keep])}{separator}… ({len(labels) - keep} more)"
        if len(text) <= width:
            return text
    if len(labels) > 1:  # never cut a name: one, and the count of the rest
        return f"{labels[0]}{separator}… ({len(labels) - 1} more)"
    head, brace, inner = labels[0].partition("{")
    if brace:  # one container's names: as many as fit, and the count of the rest
        items = inner[:-1].split(separator)
        for keep in range(len(items) - 1, 0, -1):
            text = f"{head}{{{separator.join(items[:keep])}{separator}… ({len(items) - keep} more)}}"
            if len(text) <= width:
                return text
    return _shorten(labels[0], width)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"
