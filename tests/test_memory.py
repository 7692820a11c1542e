"""What keeps model copies alive: a check lets its models go when it ends, and the copy
probe's models do not wait for Python's cyclic collector (peak memory figures: benchmarks/)."""

from __future__ import annotations

import gc
import weakref

import torch

from dyncheck.copies import verdict
from dyncheck.invariants import Context
from dyncheck.target import resolve

GATED = "reference_models.gated:DynamicNet"


def test_release_lets_the_models_go_and_keeps_what_the_summary_reads():
    context = Context(resolve(GATED))
    context.fresh_model()
    prototype = weakref.ref(context.prototype())
    context.memo["original"] = context.prototype()
    context.release()
    assert prototype() is None and context.memo == {}
    assert {"fc1", "fc2", "fc3"} <= set(context.layout.leaves)


def test_an_item_releases_its_context(dyncheck_run, pytester):
    pytester.makeconftest(
        """
        import weakref

        KEPT = []

        def pytest_runtest_call(item):
            context = getattr(item, "context", None)
            if context is not None:
                KEPT.append(weakref.ref(context.prototype()))

        def pytest_sessionfinish(session):
            print("ALIVE", sum(ref() is not None for ref in KEPT), "OF", len(KEPT))
        """
    )
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-invariants=determinism,finite", "--dyncheck-max-examples=3", "-s")
    assert "ALIVE 0 OF 2" in run.text, run.text


def test_the_copy_probe_leaves_no_model_for_the_cyclic_collector():
    target = resolve(GATED)
    alive_before = _parameters_alive()
    gc.disable()
    try:
        verdict(target)
        # Without a collection: what the probe built must already be gone.
        assert _parameters_alive() == alive_before
    finally:
        gc.enable()


def _parameters_alive() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is torch.nn.Parameter)
