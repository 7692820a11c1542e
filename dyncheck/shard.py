"""``--dyncheck-shard=K/N``: a deterministic split of dyncheck's items over N machines.

The items are sorted by node id and dealt out round-robin, so the split depends only on
which items the run collects — not on the order targets were given, the machine, or the
seed — and shards 1..N together hold every item exactly once. Dealing (rather than
hashing node ids) keeps the shards within one item of each other in size, and spreads
one target's checks over the machines. Every xdist worker of a shard computes the same
split, so ``-n`` works within a shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["split"]

Item = TypeVar("Item")


def split(items: Sequence[Item], k: int, n: int) -> tuple[list[Item], list[Item]]:
    """``(mine, others)``: the items of shard ``k`` of ``n`` (1-based), both in the order
    given, and the rest."""
    rank = {id(item): position for position, item in enumerate(sorted(items, key=lambda i: i.nodeid))}  # type: ignore[attr-defined]
    mine = [item for item in items if rank[id(item)] % n == k - 1]
    others = [item for item in items if rank[id(item)] % n != k - 1]
    return mine, others
