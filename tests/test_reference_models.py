"""Every correct reference model passes every invariant with no spec; every buggy
variant fails exactly the invariant its docstring names, and only that one."""

from __future__ import annotations

import importlib

import pytest

from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS


@pytest.mark.parametrize("target", GOOD_TARGETS)
def test_good_model_passes_everything_with_no_spec(dyncheck_run, target):
    from dyncheck.invariants import registry

    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    # A known bug of a founding model is declared in its __dyncheck__ xfail: it must fail.
    known = getattr(_class(target), "__dyncheck__", {}).get("xfail", {})
    expected = {f"dyncheck::{target}::{name}": "XFAIL" if name in known else "PASSED" for name in registry()}
    assert run.outcomes() == expected


@pytest.mark.parametrize(("target", "invariants"), sorted(BUGGY_TARGETS.items()))
def test_buggy_model_fails_its_invariants_and_only_those(dyncheck_run, target, invariants):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-seed=3")
    outcomes = run.outcomes()
    if invariants == ("runs",):  # the model cannot run at all: every check reports the crash
        assert set(outcomes.values()) == {"FAILED"}
        assert "raised in forward" in run.failure("::determinism")
        return
    for invariant in invariants:
        assert outcomes.pop(f"dyncheck::{target}::{invariant}") == "FAILED", run.text
        text = run.failure(f"::{invariant}")
        assert f"{invariant} violated by {target}" in text or f"{invariant}: {target} raised" in text
    assert set(outcomes.values()) == {"PASSED"}, run.text


def _class(target: str):
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


@pytest.mark.parametrize("target", sorted(BUGGY_TARGETS))
def test_buggy_docstring_names_the_invariant(target):
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    assert module.__doc__.splitlines()[0] == f"Invariant: {', '.join(BUGGY_TARGETS[target])}"
