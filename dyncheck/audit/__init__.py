"""``dyncheck audit``: every applicable invariant on a model with a larger budget, then one
report — the model, each invariant's verdict, the path census with each path's cost, dead
parameters and untested branches, each finding with its minimal example — on the terminal,
as JSON (``--json``) and as one self-contained HTML page with a picture of the paths
(``--html``).

The checks run through pytest in this process, with dyncheck's plugin, exactly as
``pytest --dyncheck`` runs them; :class:`~dyncheck.audit.collect.Collector` keeps what the
report needs. The report is one model (:mod:`dyncheck.audit.report`) built from the run
(:mod:`dyncheck.audit.build`); each output is a renderer of it.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["AuditOptions", "DEFAULT_EXAMPLES", "run"]

#: Examples per check when neither --examples, --time-budget nor a profile says: twice
#: Hypothesis's default, since an audit is run once and read closely.
DEFAULT_EXAMPLES = 200

#: For --time-budget's cap on examples, one example of a check is taken to cost this many
#: forward-and-backward passes of the model (the checks run from two passes, determinism, to
#: a batch's worth, batch_invariance).
PASSES_PER_EXAMPLE = 10


@dataclass
class AuditOptions:
    targets: list[str]
    examples: int | None = None
    time_budget: float | None = None
    profile: str | None = None
    seed: int | None = None
    invariants: str | None = None
    devices: str | None = None
    database: str | None = None
    json_path: str | None = None
    html_path: str | None = None
    #: None: live on a terminal, plain lines elsewhere; False: none at all
    progress: bool | None = None
    #: time each path (FLOPs and forward time)
    cost: bool = True
    #: the command as typed, for the report
    command: str = "dyncheck audit"


def _budget(options: AuditOptions) -> tuple[Any, list[str]]:
    """The budget and the pytest options that give it."""
    from dyncheck.audit.report import Budget

    examples, seconds = options.examples, options.time_budget
    if seconds is not None:
        args = [f"--dyncheck-time-budget={seconds:g}"]
        if examples is not None:
            note = f"{seconds:g} s and at most {examples:,} examples per check (--time-budget, --examples)"
        else:
            # A cap as well: once the time is spent, the plugin lets Hypothesis's remaining
            # draws run nothing, and they still cost their generation.
            estimate, unit = _examples_for(seconds, options.targets)
            examples = max(10, 2 * estimate)
            note = (
                f"{seconds:g} s per check (--time-budget), at most {examples:,} examples: twice what fits, "
                f"as one forward and backward takes {unit * 1e3:.3g} ms here"
            )
        return Budget(examples, seconds, options.profile, note), [*args, f"--dyncheck-max-examples={examples}"]
    if examples is not None:
        return Budget(examples, None, options.profile, f"{examples:,} examples per check (--examples)"), [
            f"--dyncheck-max-examples={examples}"
        ]
    if options.profile:
        return Budget(None, None, options.profile, f"the budget of profile {options.profile} (--dyncheck-profile)"), []
    return Budget(DEFAULT_EXAMPLES, None, None, f"{DEFAULT_EXAMPLES:,} examples per check (the audit's default)"), [
        f"--dyncheck-max-examples={DEFAULT_EXAMPLES}"
    ]


def _examples_for(seconds: float, targets: list[str]) -> tuple[int, float]:
    """Examples per check that fit ``seconds`` on the slowest of ``targets``, and the
    seconds one forward and backward of that model takes."""
    from dyncheck.audit.cost import time_one_example
    from dyncheck.target import import_path_for_targets, resolve

    import_path_for_targets()
    unit = max((time_one_example(resolve(text)) for text in targets), default=0.0) or 1e-3
    return max(1, min(100_000, int(seconds / (unit * PASSES_PER_EXAMPLE)))), unit


def plugin_argument(argv: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``-p dyncheck.plugin`` when pytest will not load the plugin itself: dyncheck is
    importable but not installed (no pytest11 entry point, e.g. a checkout on PYTHONPATH),
    or entry points are off (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``); nothing when pytest loads
    it, or ``argv`` names it already."""
    from importlib.metadata import entry_points

    if any(argument.endswith("dyncheck.plugin") for argument in argv):
        return []
    autoload = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    if autoload and any(entry.value == "dyncheck.plugin" for entry in entry_points(group="pytest11")):
        return []
    return ["-p", "dyncheck.plugin"]


def _terminal() -> TextIO:
    """stderr as it is now: pytest captures file descriptors 1 and 2 while checks run, so
    the progress lines go to a duplicate of the terminal's descriptor."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return sys.stderr


def run(options: AuditOptions) -> int:
    """Audit ``options.targets`` (or [tool.dyncheck] targets); print the report and write
    the files asked for. Returns the exit code: 0 clean, 1 findings, 4 usage error."""
    import pytest

    from dyncheck.audit import html_report, json_report, terminal
    from dyncheck.audit.build import build
    from dyncheck.audit.collect import Collector
    from dyncheck.audit.progress import Progress, interactive

    budget, budget_args = _budget(options)
    stream = _terminal() if options.progress is not False else None
    progress = Progress(stream, live=interactive(stream) if options.progress is None else options.progress) if stream else None
    collector = Collector(progress)
    args = [
        "--dyncheck-only", "-p", "no:cacheprovider", "-p", "no:terminal",
        "-W", "ignore::pytest.PytestAssertRewriteWarning", *plugin_argument(), *budget_args,
    ]
    args += [f"--dyncheck={target}" for target in options.targets]
    for flag, value in (
        ("--dyncheck-profile", options.profile),
        ("--dyncheck-seed", options.seed),
        ("--dyncheck-invariants", options.invariants),
        ("--dyncheck-devices", options.devices),
        ("--dyncheck-database", options.database),
    ):
        if value is not None:
            args.append(f"{flag}={value}")
    try:
        code = int(pytest.main(args, plugins=[collector]))
    finally:
        if stream is not None and stream is not sys.stderr:
            stream.close()
    if collector.settings is None or code not in (0, 1):
        return code  # pytest said why (a usage error is one "ERROR: ..." line, code 4)

    report = build(collector, budget=budget, exit_code=code, command=options.command, measure=options.cost)
    sys.stdout.write(terminal.render(report))
    sys.stdout.flush()
    for path, renderer, what in (
        (options.json_path, json_report.render, "JSON"),
        (options.html_path, html_report.render, "HTML"),
    ):
        if path:
            Path(path).write_text(renderer(report), encoding="utf-8")
            print(f"dyncheck audit: {what} report written to {path}", file=sys.stderr)
    return code
