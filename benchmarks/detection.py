"""Detection table: does each buggy reference model get caught, how fast, how small?

Run from the repository root:

    .venv/bin/python -m benchmarks.detection                 # Markdown on stdout
    .venv/bin/python -m benchmarks.detection --out benchmarks/detection.md

For every model in ``reference_models/buggy`` and each invariant its docstring names, the
check runs under Hypothesis with a fixed seed, as ``pytest --dyncheck`` would, and the table
shows whether it was caught, the examples and seconds until the first failure, and the size
of the shrunk counterexample (its named sizes and lengths). Every good reference model is
then run through every invariant that applies and confirmed clean. A measurement, not a
test: the test suite proves the verdicts, this file shows the cost.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass

import torch
from hypothesis import HealthCheck, Phase, example, given, seed, settings

from dyncheck._constants import constants_of
from dyncheck._items import derived_seed
from dyncheck.errors import DyncheckWarning, InvariantViolation, ModelError
from dyncheck.examples import corner_examples, from_target
from dyncheck.invariants import Context, registry
from dyncheck.invariants.padding_invariance import declared_padding
from dyncheck.settings import Settings
from dyncheck.target import resolve
from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS

SETTINGS = Settings(targets=(), seed=0, seed_given=True, max_examples=None, invariants=None, explain=False, only=True)


@dataclass
class Outcome:
    verdict: str  # caught, missed, clean, FAILED, skipped
    examples: int = 0
    first_failure: int | None = None
    seconds_to_first: float | None = None
    seconds: float = 0.0
    minimal: str = ""
    finding: str = ""


def _size(example) -> str:
    parts = [f"{name}={value}" for name, value in sorted(example.dims.items())]
    for name, value in example.args.items():
        if "len" in name and isinstance(value, torch.Tensor) and value.dim() == 1:
            values = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in value.tolist()]  # relative lengths
            parts.append(f"{name}=[{', '.join(values)}]")
    return ", ".join(parts) or "(no sizes)"


def run_check(target_text: str, invariant_name: str, max_examples: int, run_seed: int) -> Outcome:
    target = resolve(target_text)
    invariant = registry()[invariant_name]()
    reason = target.spec.skip.get(invariant_name) or invariant.applies_to(target) or invariant.unavailable(SETTINGS)
    if reason:
        return Outcome("skipped", finding=reason)
    context = Context(target)
    context.settings = SETTINGS
    state = {"calls": 0, "first": None, "first_seconds": None, "last_failing": None}
    started = time.perf_counter()

    def check(example):
        state["calls"] += 1
        example = declared_padding(target, example)  # as the plugin's items lay out every example
        try:
            with context.counting():
                context.materialise(example)  # as the plugin's items do (lazy layers)
                invariant.check(context, example)
        except (InvariantViolation, ModelError):
            if state["first"] is None:
                state["first"], state["first_seconds"] = state["calls"], time.perf_counter() - started
            state["last_failing"] = example
            raise

    # As the plugin's item runs it: the invariant's own sizes, each side of every control's
    # thresholds first (counted against the examples), the seed derived from the run's seed,
    # the target and the invariant, and Hypothesis's constants from the target's modules only.
    with constants_of(target):
        corners = corner_examples(target)[:max_examples]
    test = given(from_target(target, invariant.dims(target)))(check)
    for corner in reversed(corners):
        test = example(corner)(test)
    test = seed(derived_seed(run_seed, target.text, invariant_name))(test)
    test = settings(max_examples=max(max_examples - len(corners), 1), database=None, deadline=None,
                    print_blob=False, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                    suppress_health_check=list(HealthCheck))(test)

    finding = None
    try:
        with constants_of(target):
            test()
        invariant.finish(context)
    except (InvariantViolation, ModelError) as exc:
        finding = exc
    except BaseExceptionGroup as group:  # several distinct failures: the first is enough here
        finding = group.exceptions[0]
    elapsed = time.perf_counter() - started
    if finding is None:
        vacuous = context.vacuous()
        if vacuous:
            return Outcome("skipped", examples=state["calls"], seconds=elapsed, finding=f"compared nothing {vacuous}")
        return Outcome("passed", examples=state["calls"], seconds=elapsed)
    first_line = str(finding).splitlines()[0] if str(finding) else type(finding).__name__
    minimal = state["last_failing"]
    return Outcome(
        "failed",
        examples=state["calls"],
        first_failure=state["first"] or state["calls"],
        seconds_to_first=state["first_seconds"] if state["first_seconds"] is not None else elapsed,
        seconds=elapsed,
        minimal=_size(minimal) if minimal is not None else "(whole run)",
        finding=first_line,
    )


def _cell(text: str, width: int = 110) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="examples per check (default 100, as a user's run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="", help="also write the Markdown to this file")
    parser.add_argument("--targets", default="", help="comma-separated substrings of the targets to run")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DyncheckWarning)
    wanted = [t for t in args.targets.split(",") if t]
    chosen = [t for t in (*BUGGY_TARGETS, *GOOD_TARGETS) if not wanted or any(w in t for w in wanted)]
    lines = [
        f"# Detection (torch {torch.__version__}, {args.examples} examples per check, seed {args.seed})",
        "",
        "| buggy model | invariant | caught | first failure at example | seconds to it | shrunk example | finding |",
        "|---|---|---|---|---|---|---|",
    ]
    missed = 0
    for text in (t for t in chosen if t in BUGGY_TARGETS):
        names = BUGGY_TARGETS[text]
        if names == ("runs",):
            names = ("determinism",)  # a model that cannot run: any check reports the crash
        for name in names:
            outcome = run_check(text, name, args.examples, args.seed)
            caught = outcome.verdict == "failed"
            missed += not caught
            lines.append(
                f"| {text.removeprefix('reference_models.buggy.')} | {name} | {'yes' if caught else '**NO**'} | "
                f"{outcome.first_failure or '-'} | "
                f"{'-' if outcome.seconds_to_first is None else f'{outcome.seconds_to_first:.2f}'} | "
                f"{outcome.minimal or '-'} | {_cell(outcome.finding)} |"
            )
            print(f"  {text} {name}: {outcome.verdict}", file=sys.stderr)
    lines += ["", "| good model | checks clean | skipped | findings (false alarms) | seconds |", "|---|---|---|---|---|"]
    alarms = 0
    for text in (t for t in chosen if t in GOOD_TARGETS):
        target = resolve(text)
        known_bugs = getattr(target.spec, "xfail", {})
        clean, skipped, found, seconds = 0, 0, [], 0.0
        # what a run collects: every default check, and an opt-in one the model configures
        # (causality for a model declared causal, refactor_agreement for a declared old model)
        collected = [name for name, cls in registry().items() if cls().collected_by_default(target, SETTINGS)]
        for name in collected:
            outcome = run_check(text, name, args.examples, args.seed)
            seconds += outcome.seconds
            if outcome.verdict == "skipped":
                skipped += 1
            elif outcome.verdict == "passed" or name in known_bugs:
                clean += 1
            else:
                found.append(f"{name}: {outcome.finding}")
        alarms += len(found)
        lines.append(f"| {text} | {clean} | {skipped} | {_cell('; '.join(found)) or 'none'} | {seconds:.1f} |")
        print(f"  {text}: {len(found)} findings", file=sys.stderr)
    lines += ["", f"{missed} bug(s) missed, {alarms} false alarm(s)."]
    report = "\n".join(lines)
    print(report)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(report + "\n")
    return 1 if missed or alarms else 0


if __name__ == "__main__":
    sys.exit(main())
