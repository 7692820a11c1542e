"""How much dyncheck adds to a model's own cost, per example.

Run from the repository root: .venv/bin/python -m benchmarks.overhead [--examples N]

For each reference model it times, on the same examples,
  plain     — the model's forward alone,
  run       — dyncheck's seeded, traced forward (Context.run),
  determinism / finite — one whole check of one example (fresh copy, calls, comparisons),
and prints the ratios. Numbers vary by machine; they are measurements, not tests.
"""

from __future__ import annotations

import argparse
import time

import torch
from hypothesis import HealthCheck, given, settings

from dyncheck.examples import from_target
from dyncheck.invariants import Context
from dyncheck.invariants.determinism import Determinism
from dyncheck.invariants.finite import Finite
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'target':48} {'plain µs':>9} {'run ×':>7} {'determinism ×':>14} {'finite ×':>9}")
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
        determinism = _time(lambda e: Determinism().check(context, e), examples)
        finite = _time(lambda e: Finite().check(context, e), examples)
        print(
            f"{text:48} {base * 1e6:9.0f} {run / base:7.1f} {determinism / base:14.1f} {finite / base:9.1f}"
        )


if __name__ == "__main__":
    main()
