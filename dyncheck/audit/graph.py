"""The model's paths as a graph: leaf modules as nodes in call order, transitions counted.

Built from the raw paths the checks recorded (the ordered module names of each call, with
how many calls took it). Only leaf modules are nodes (containers only pass the call on),
as in the path descriptions. No torch here: the caller gives names, types and sizes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from dyncheck.audit.report import END, START, Node, Transition

__all__ = ["call_order", "leaf_path", "nodes", "transitions"]


def leaf_path(path: Sequence[str], leaves: set[str]) -> tuple[str, ...]:
    """The leaf modules of ``path``, in call order, repeats kept."""
    return tuple(name for name in path if name in leaves)


def transitions(paths: Sequence[tuple[tuple[str, ...], int]]) -> list[Transition]:
    """Each (module -> next module) step with how many calls took it, START and END
    included; ``paths`` are (leaf path, calls) in path-id order."""
    counts: Counter[tuple[str, str]] = Counter()
    used: dict[tuple[str, str], list[int]] = {}
    for index, (path, calls) in enumerate(paths):
        steps = list(zip((START, *path), (*path, END)))
        for step in steps:
            counts[step] += calls
        for step in dict.fromkeys(steps):
            used.setdefault(step, []).append(index)
    return [Transition(source, target, count, used[(source, target)]) for (source, target), count in counts.items()]


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return False


def call_order(paths: Sequence[tuple[tuple[str, ...], int]], registered: Sequence[str]) -> list[str]:
    """The leaf modules in the order calls run them; modules no call ran are placed after
    the module registered before them.

    Each path says "a ran before b" for its modules' first runs; the commonest paths are
    heard first, and a claim that contradicts earlier ones (a loop) is dropped. Ties go
    to registration order.
    """
    rank = {name: index for index, name in enumerate(registered)}
    before: dict[str, set[str]] = {}
    ran: list[str] = []
    for path, _ in sorted(paths, key=lambda p: -p[1]):
        firsts = list(dict.fromkeys(path))
        ran.extend(m for m in firsts if m not in ran)
        for a, b in zip(firsts, firsts[1:]):
            if b not in before.get(a, set()) and not _reaches(before, b, a):
                before.setdefault(a, set()).add(b)
    incoming = Counter(b for targets in before.values() for b in targets)
    ready = sorted((m for m in ran if not incoming[m]), key=lambda m: rank.get(m, len(rank)))
    order: list[str] = []
    while ready:
        module = ready.pop(0)
        order.append(module)
        for nxt in sorted(before.get(module, ()), key=lambda m: rank.get(m, len(rank))):
            incoming[nxt] -= 1
            if not incoming[nxt]:
                ready.append(nxt)
        ready.sort(key=lambda m: rank.get(m, len(rank)))
    placed = set(order)
    for index, name in enumerate(registered):
        if name in placed:
            continue
        previous = registered[index - 1] if index else None
        order.insert(order.index(previous) + 1 if previous in placed else 0, name)
        placed.add(name)
    return order


def nodes(
    paths: Sequence[tuple[tuple[str, ...], int]],
    leaves: Mapping[str, tuple[str, int]],
    registered: Sequence[str],
    *,
    dead: set[str],
    named: set[str],
) -> list[Node]:
    """One node per leaf module in call order; ``leaves`` maps name -> (type, parameters),
    ``dead`` are modules whose parameters were never used, ``named`` those a finding names."""
    total = sum(calls for _, calls in paths)
    out = []
    for module in call_order(paths, registered):
        runs = [(path.count(module), calls) for path, calls in paths if module in path]
        calls = sum(c for _, c in runs)
        if not calls:
            status = "dead" if module in dead else "never"
        else:
            status = "always" if calls == total else "sometimes"
        kind, parameters = leaves[module]
        out.append(Node(
            module=module,
            type=kind,
            parameters=parameters,
            calls=calls,
            min_runs=min((r for r, _ in runs), default=0),
            max_runs=max((r for r, _ in runs), default=0),
            status=status,
            in_finding=module in named,
        ))
    return out
