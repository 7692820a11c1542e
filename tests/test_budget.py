"""The time budget: generation stops when it is spent, and the summary says so."""

from __future__ import annotations

import pytest

from dyncheck.budget import ADAPTIVE_SECONDS, Budget, parse_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), (" 3 ", 3.0)])
def test_durations(text, seconds):
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1", "ten", "5d", "1e3"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_seconds(text)


def _run(budget: Budget, clock: Clock, each: float, draws: int = 100) -> int:
    ran = 0
    for _ in range(draws):
        if budget.allows():
            clock.now += each
            budget.spent()
            ran += 1
    return ran


def test_a_budget_stops_generation_and_says_after_how_many():
    clock = Clock()
    budget = Budget(10.0, 100, clock=clock)
    assert _run(budget, clock, each=1.0) == 10
    assert budget.record() == {
        "ended": "the time budget of 10 s ended it after 10 of 100 examples", "examples": 10, "seconds": 10.0,
    }


def test_a_budget_that_is_not_reached_leaves_no_record():
    clock = Clock()
    budget = Budget(10.0, 100, clock=clock)
    assert _run(budget, clock, each=0.01) == 100
    assert budget.record() is None


def test_without_a_budget_fast_models_run_every_example():
    clock = Clock()
    budget = Budget(None, 100, clock=clock)
    assert _run(budget, clock, each=2.0) == 100  # 200 s in all: under the adaptive budget
    assert budget.record() is None


def test_without_a_budget_a_slow_model_meets_the_adaptive_one():
    clock = Clock()
    budget = Budget(None, 100, clock=clock)
    ran = _run(budget, clock, each=20.0)
    assert ran == ADAPTIVE_SECONDS // 20
    assert budget.record()["ended"] == (
        f"the adaptive budget of 5 min ended it after {ran} of 100 examples (about 20 s each; choose with "
        "--dyncheck-time-budget or --dyncheck-max-examples)"
    )


def test_after_a_failure_the_budget_lets_shrinking_replay():
    clock = Clock()
    budget = Budget(1.0, 100, clock=clock)
    assert budget.allows()
    clock.now += 5.0
    budget.spent(failed=True)
    assert all(budget.allows() for _ in range(10))


SLOW = """
import time
import torch
from torch import nn

class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        time.sleep(0.05)
        return self.fc(x)

class SlowAndWrong(Slow):
    def forward(self, x):
        time.sleep(0.05)
        return self.fc(x) * float("nan") if x.shape[0] > 1 else self.fc(x)
"""


def test_the_summary_says_the_budget_ended_a_check(dyncheck_run, pytester):
    pytester.makepyfile(slow=SLOW)
    run = dyncheck_run("--dyncheck", "slow:Slow", "--dyncheck-invariants=finite", "--dyncheck-seed=1",
                       "--dyncheck-max-examples=200", "--dyncheck-time-budget=0.5")
    assert run.ret == 0, run.text
    [line] = [l for l in run.text.splitlines() if l.strip().startswith("finite")]
    assert "passed" in line and "the time budget of 0.5 s ended it after " in line and "of 200 examples" in line
    ran = int(line.split("passed")[1].split()[0])
    assert 1 <= ran < 200


def test_a_failure_found_within_the_budget_is_shrunk_not_flaky(dyncheck_run, pytester):
    pytester.makepyfile(slow=SLOW)
    run = dyncheck_run("--dyncheck", "slow:SlowAndWrong", "--dyncheck-invariants=finite", "--dyncheck-seed=1",
                       "--dyncheck-time-budget=1")
    assert run.ret == 1, run.text
    text = run.failure("::finite")
    assert "finite violated by slow:SlowAndWrong" in text
    assert "Flaky" not in text and "flaky" not in text
    assert "batch=2" in text  # shrunk to the smallest batch that breaks it


def test_a_bad_budget_is_one_line(pytester):
    result = pytester.runpytest("--dyncheck", "x:Y", "--dyncheck-time-budget=soon")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "ERROR: --dyncheck-time-budget='soon' must be a positive duration in seconds (90, 90s, 1.5m or 2h), "
        "e.g. --dyncheck-time-budget=120"
    ])
