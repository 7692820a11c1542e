"""What the audit keeps from one in-process pytest run of dyncheck's checks.

A plugin object handed to ``pytest.main(plugins=[...])``: it reads the reports pytest
makes anyway (each check's ``user_properties`` record, its verdict, duration and failure
message) and, since the run is in this process, the paths each check's context saw with
the first example of each, so the audit can time every path afterwards.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from dyncheck.settings import SETTINGS_KEY

if TYPE_CHECKING:
    from dyncheck.audit.progress import Progress
    from dyncheck.settings import Settings

__all__ = ["CheckRun", "Collector"]


@dataclass
class CheckRun:
    """One (target, invariant) item as the audit saw it."""

    target: str
    invariant: str
    verdict: str = "not run"
    reason: str | None = None
    seconds: float = 0.0
    #: the item's summary record (examples, paths by description, finding, census...)
    record: dict[str, Any] = field(default_factory=dict)
    #: the failure message dyncheck printed (for failed and known-bug checks)
    message: str | None = None
    warnings: list[str] = field(default_factory=list)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""


class Collector:
    """Receives the run's reports; after ``pytest.main`` returns, holds every check."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self.settings: Settings | None = None
        #: target text -> resolved dyncheck.target.Target
        self.targets: dict[str, Any] = {}
        #: node id -> CheckRun, in run order
        self.checks: dict[str, CheckRun] = {}
        #: target -> raw path -> calls, over every check
        self.paths: dict[str, Counter[tuple[str, ...]]] = {}
        #: target -> raw path -> the first example that took it
        self.examples: dict[str, dict[tuple[str, ...], Any]] = {}
        self._announced: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._width = 0

    # ------------------------------------------------------------------ pytest hooks

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        settings = config.stash.get(SETTINGS_KEY, None)
        if settings is None or not settings.active:
            raise pytest.UsageError(
                "dyncheck audit: no target; name one (dyncheck audit module.path:Name) or list them "
                'in pyproject.toml: [tool.dyncheck] targets = ["module.path:Name"]'
            )
        from dyncheck._items import TARGETS_KEY

        self.settings = settings
        self.targets = dict(config.stash[TARGETS_KEY])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            target, invariant = self._split(item.nodeid)
            if target is not None:
                self._counts[target] += 1
                self._width = max(self._width, len(invariant))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        target, invariant = self._split(item.nodeid)
        if target is None:
            return (yield)
        run = self.checks.setdefault(item.nodeid, CheckRun(target, invariant))
        if self.progress is not None:
            if target not in self._announced:
                self._announced.add(target)
                self.progress.target(target, self._counts[target])
            self.progress.start(item, self._width)
        try:
            return (yield)
        finally:
            self._harvest(target, item)
            if self.progress is not None:
                detail = run.reason if run.verdict == "skipped" else (run.record.get("finding") or "")
                self.progress.finish(
                    invariant, run.verdict, run.record.get("examples", 0), len(run.record.get("paths", {})),
                    run.seconds, detail or "",
                    failed_at=run.record.get("failed_at") if run.verdict == "failed" else None,
                )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = self.checks.get(report.nodeid)
        if run is None:
            return
        run.seconds += report.duration
        for key, value in report.user_properties:
            if key == "dyncheck" and report.when == "call" and isinstance(value, dict):
                run.record = value
        if not (report.when == "call" or report.failed or report.skipped):
            return
        if hasattr(report, "wasxfail"):
            run.verdict = "xfailed" if report.skipped else "xpassed"
            run.reason = report.wasxfail
            if report.skipped and report.longrepr is not None and not isinstance(report.longrepr, tuple):
                run.message = report.longreprtext
        elif report.skipped:
            run.verdict = "skipped"
            run.reason = _skip_reason(report).removeprefix(f"{run.invariant} does not apply to {run.target}: ")
        elif report.failed:
            run.verdict = "failed" if report.when == "call" else "error"
            run.message = report.longreprtext
        elif run.verdict == "not run":
            run.verdict = "passed"

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str, location: Any) -> None:
        run = self.checks.get(nodeid)
        if run is not None:
            text = str(warning_message.message).strip()
            if text not in run.warnings:
                run.warnings.append(text)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _split(nodeid: str) -> tuple[str | None, str]:
        if not nodeid.startswith("dyncheck::"):
            return None, ""
        target, _, invariant = nodeid[len("dyncheck::"):].rpartition("::")
        return target, invariant

    def _harvest(self, target: str, item: pytest.Item) -> None:
        """Keep the raw paths and each path's first example from the check's context."""
        context = getattr(item, "context", None)
        if context is None:
            return
        self.paths.setdefault(target, Counter()).update(context.paths)
        examples = self.examples.setdefault(target, {})
        for path, example in getattr(context, "path_examples", {}).items():
            examples.setdefault(path, example)
