"""The literal constants Hypothesis mixes into its draws, fixed for each target.

Hypothesis now and then (about one draw in twenty) draws a literal found in the source of the
*local* modules imported so far in the process instead of a random value. Which modules
those are depends on what ran before in the process (other checks, other tests, the items
xdist happened to give a worker), so one seed could draw other examples, and reach another
verdict, in another process. Inside a dyncheck check the pool is the literals of the
target's own modules (where a threshold such as ``control > 0.5`` is written), the same in
every process.

Hypothesis keeps the pool in a private function; with a Hypothesis that has none (or
another layout), this does nothing.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["constants_of", "target_constants"]

_POOLS: dict[tuple[str, ...], Any] = {}


def _pool(providers: Any, names: tuple[str, ...]) -> Any:
    from hypothesis.internal.constants_ast import Constants, constants_from_module

    pool = _POOLS.get(names)
    if pool is None:
        # Sorted like Hypothesis's own pool, so the order of its draws is no set's order.
        pool = Constants(
            integers=providers.SortedSet(),
            floats=providers.SortedSet(key=providers.float_to_int),
            bytes=providers.SortedSet(),
            strings=providers.SortedSet(),
        )
        for name in names:
            module = sys.modules.get(name)
            if module is not None:
                pool = pool | constants_from_module(module)
        _POOLS[names] = pool
    return pool


@contextlib.contextmanager
def target_constants(module_names: Iterable[str]) -> Iterator[None]:
    """Inside the block, Hypothesis's pool of local constants is the literals of the named
    modules (those already imported), whatever else the process has imported."""
    try:
        from hypothesis.internal.conjecture import providers

        original = providers._get_local_constants
        cache = providers.CONSTANTS_CACHE
        pool = _pool(providers, tuple(sorted(set(module_names))))
    except Exception:  # another Hypothesis: its pool stays as it is
        yield
        return
    providers._get_local_constants = lambda: pool
    cache.cache.clear()  # what it kept was drawn from the process's pool
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.cache.clear()


def constants_of(target: Any) -> contextlib.AbstractContextManager[None]:
    """:func:`target_constants` of a target's own modules: the one its text names and the
    one its model class is defined in."""
    names = {target.text.partition(":")[0]}
    if target.model_class is not None:
        names.add(target.model_class.__module__)
    return target_constants(names)
