"""What the benchmark scripts share."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from dyncheck.examples import from_target

__all__ = ["examples"]


def examples(target: Any, count: int) -> list[Any]:
    """``count`` examples of ``target``, the same on every run (derandomized, no database)."""
    found = []

    @settings(max_examples=count, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(from_target(target))
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found
