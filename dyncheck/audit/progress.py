"""Live progress while the audit's checks run.

On a terminal, the running check's line is redrawn a few times a second (examples done,
distinct paths found, elapsed time) and replaced by its verdict when it ends. Elsewhere
(a pipe, a file, CI=true) each check is one plain line when it ends, so logs stay readable.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, TextIO

__all__ = ["Progress", "interactive"]


def interactive(stream: TextIO) -> bool:
    """Redraw lines in place: a terminal, and not CI (whose logs keep every redraw)."""
    ci = os.environ.get("CI", "").strip().lower()
    if ci and ci not in ("0", "false", "no"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 100 else f"{value:.0f}s"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


class Progress:
    """Writes the progress lines to ``stream`` (the terminal's stderr, kept aside before
    pytest captures output, so the lines show while checks run)."""

    #: seconds between redraws of the running line
    interval = 0.25

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self.stream = stream
        self.live = live
        self.width = 0
        self._item: Any = None
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def target(self, text: str, checks: int) -> None:
        self._write_line(f"auditing {text} ({_plural(checks, 'check')})")

    def start(self, item: Any, width: int) -> None:
        self.width = width
        self._item, self._started = item, time.monotonic()
        if not self.live:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._tick, name="dyncheck-audit-progress", daemon=True)
        self._thread.start()

    def finish(
        self, invariant: str, verdict: str, examples: int, paths: int, seconds: float, detail: str = "",
        failed_at: int | None = None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._item = None
        if verdict == "skipped":
            self._write_line(f"  {invariant:<{self.width}}  {verdict:<8} {detail}")
            return
        line = self._line(invariant, verdict, examples, paths, seconds, failed_at)
        self._write_line(line + (f"  {detail}" if detail else ""))

    def _line(
        self, invariant: str, verdict: str, examples: int, paths: int, seconds: float, failed_at: int | None = None,
    ) -> str:
        # a failure: the example it was found on (the later ones shrank it)
        done = f"example {failed_at}" if failed_at else _plural(examples, "example")
        return (
            f"  {invariant:<{self.width}}  {verdict:<8} {done:>13}  "
            f"{_plural(paths, 'path'):>9}  {_seconds(seconds):>6}"
        )

    def _running(self) -> str:
        item = self._item
        context = getattr(item, "context", None)
        examples = getattr(context, "examples", 0) if context is not None else 0
        paths = len(getattr(context, "paths", ())) if context is not None else 0
        name = getattr(getattr(item, "invariant", None), "name", "")
        return self._line(name, "running", examples, paths, time.monotonic() - self._started)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self.stream.write("\r\x1b[2K" + self._running())
                self.stream.flush()

    def _write_line(self, text: str) -> None:
        with self._lock:
            self.stream.write(("\r\x1b[2K" if self.live else "") + text + "\n")
            self.stream.flush()
