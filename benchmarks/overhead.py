"""How much dyncheck adds to a model's own cost, per example.

Run from the repository root: .venv/bin/python -m benchmarks.overhead [--examples N]

For each reference model it times, on the same examples,
  plain     — the model's forward alone,
  run       — dyncheck's seeded, traced forward (Context.run),
  each invariant that applies — one whole check of one example (fresh copies, calls,
            comparisons; the opt-in compile_agreement only when named with --invariants),
and prints each as a multiple of plain. Numbers vary by machine; they are measurements,
not tests.
"""

from __future__ import annotations

import argparse
import importlib
import time
import warnings

import torch
from hypothesis import HealthCheck, given, settings

from dyncheck.errors import DyncheckWarning
from dyncheck.examples import from_target
from dyncheck.invariants import Context, registry
from dyncheck.settings import Settings
from dyncheck.target import resolve
from reference_models import GOOD_TARGETS


def _examples(target, count):
    found = []

    @settings(max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_target(target))
    def collect(example):
        found.append(example)

    collect()
    return found


def _time(function, examples, repeat=3):
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        for example in examples:
            function(example)
        best.append((time.perf_counter() - start) / len(examples))
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--invariants", default="", help="comma-separated (default: every non-opt-in one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # An optimizer's first construction imports torch._dynamo (seconds, once per process):
    # keep that out of the first model's numbers.
    importlib.import_module("torch._dynamo")
    warnings.simplefilter("ignore", DyncheckWarning)  # tied_weights' assign=True note, once per model
    known = registry()
    names = [n.strip() for n in args.invariants.split(",") if n.strip()] or [
        name for name, cls in known.items() if not cls.opt_in
    ]
    settings = Settings(targets=(), seed=0, seed_given=True, max_examples=None, invariants=None, explain=False, only=True)
    for text in GOOD_TARGETS:
        target = resolve(text)
        examples = _examples(target, args.examples)
        context = Context(target)
        model = context.fresh_model()

        def plain(example):
            with torch.no_grad():
                target.call(model, example.fresh_args())

        base = _time(plain, examples)
        run = _time(lambda e: context.run(model, e), examples)
        print(f"{text}: plain {base * 1e6:.0f} µs, traced run ×{run / base:.1f}")
        for name in names:
            invariant = known[name]()
            reason = invariant.applies_to(target) or invariant.unavailable(settings)
            if reason:
                print(f"  {name:20} skipped: {reason}")
                continue
            checked = Context(target)
            checked.settings = settings
            try:
                invariant.check(checked, examples[0])  # warm-up: lazy imports, first-call caches
                cost = _time(lambda e: invariant.check(checked, e), examples, repeat=1)
            except Exception as exc:  # a measurement, not a verdict: show it and go on
                print(f"  {name:20} raised {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
                continue
            print(f"  {name:20} ×{cost / base:.1f}")


if __name__ == "__main__":
    main()
