"""Every correct reference model passes every invariant with no spec; every buggy
variant fails exactly the invariant its docstring names, and only that one."""

from __future__ import annotations

import importlib

import pytest

from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS


@pytest.mark.parametrize("target", GOOD_TARGETS)
def test_good_model_passes_everything_with_no_spec(dyncheck_run, target):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    assert set(run.outcomes().values()) == {"PASSED"}
    assert len(run.outcomes()) == 2


@pytest.mark.parametrize(("target", "invariant"), sorted(BUGGY_TARGETS.items()))
def test_buggy_model_fails_its_invariant(dyncheck_run, target, invariant):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    outcomes = run.outcomes()
    if invariant == "runs":  # the model cannot run at all: every check reports the crash
        assert set(outcomes.values()) == {"FAILED"}
        assert "raised in forward" in run.failure("::determinism")
        return
    assert outcomes.pop(f"dyncheck::{target}::{invariant}") == "FAILED", run.text
    assert set(outcomes.values()) == {"PASSED"}, run.text
    assert f"{invariant} violated by {target}" in run.failure(f"::{invariant}")


@pytest.mark.parametrize("target", sorted(BUGGY_TARGETS))
def test_buggy_docstring_names_the_invariant(target):
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    assert module.__doc__.splitlines()[0] == f"Invariant: {BUGGY_TARGETS[target]}"
