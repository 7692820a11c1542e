"""A time budget per check: generation stops when it is spent, and the summary says so.

``--dyncheck-time-budget=SECONDS`` (ini ``dyncheck_time_budget``) bounds each check's
generation. Without it, a check whose first examples show a slow model gets an adaptive
budget instead of running the whole example count blindly: when the examples measured so far
project past :data:`ADAPTIVE_SECONDS`, the check stops there. Fast models never meet it, so
their runs stay deterministic in the number of examples.

A budget never skips silently: the check's record says how many examples ran and that the
budget ended it. Once an example has failed, the budget no longer stops anything, so that
Hypothesis can shrink the failure (its own shrinking limits apply).

This module imports neither torch nor hypothesis.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

__all__ = ["ADAPTIVE_SECONDS", "Budget", "parse_seconds"]

#: Without a budget, a check stops where its measured examples project past this.
ADAPTIVE_SECONDS = 300.0
#: Examples measured before the adaptive budget may act.
ADAPTIVE_AFTER = 3

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*$")
_UNIT = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``1.5m``, ``2h`` -> seconds; ValueError for anything else."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration")
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


@dataclass
class Budget:
    """The time one check may spend generating examples.

    ``seconds`` is the user's budget (None: adaptive). :meth:`allows` is asked before each
    example; :meth:`spent` after it with the seconds it took.
    """

    seconds: float | None = None
    max_examples: int = 100
    adaptive_seconds: float = ADAPTIVE_SECONDS
    clock: object = field(default=time.monotonic, repr=False)
    #: why generation stopped early (None while it has not)
    ended: str | None = None
    examples: int = 0
    elapsed: float = 0.0
    failed: bool = False
    _start: float | None = field(default=None, repr=False)

    def allows(self) -> bool:
        """Whether the next example may run."""
        if self.failed:
            return True  # shrinking a failure must replay it
        if self.ended is not None:
            return False
        if self._start is None:
            self._start = self.clock()
            return True
        self.elapsed = self.clock() - self._start
        if self.seconds is not None and self.elapsed >= self.seconds:
            self.ended = f"the time budget of {_format(self.seconds)} ended it after {self.examples} of {self.max_examples} examples"
            return False
        if self.seconds is None and self.examples >= ADAPTIVE_AFTER:
            each = self.elapsed / self.examples
            if each * self.max_examples > self.adaptive_seconds and self.elapsed + each > self.adaptive_seconds:
                self.ended = (
                    f"the adaptive budget of {_format(self.adaptive_seconds)} ended it after {self.examples} of "
                    f"{self.max_examples} examples (about {each:.2g} s each; choose with --dyncheck-time-budget "
                    "or --dyncheck-max-examples)"
                )
                return False
        return True

    def remaining(self) -> float | None:
        """Seconds left for work after the examples (a search): None when unbounded."""
        if self.seconds is None:
            return 0.0 if self.ended is not None else None
        used = self.clock() - self._start if self._start is not None else 0.0
        return max(0.0, self.seconds - used)

    def spent(self, *, failed: bool = False) -> None:
        """One example ran (and whether it failed)."""
        self.examples += 1
        self.failed = self.failed or failed

    def record(self) -> dict | None:
        """What the summary shows, JSON-able; None when the budget did not end the check."""
        if self.ended is None:
            return None
        return {"ended": self.ended, "examples": self.examples, "seconds": round(self.elapsed, 3)}


def _format(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
