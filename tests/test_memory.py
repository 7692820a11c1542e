"""What keeps model copies alive: a check lets its models go when it ends, and the copy
probe's models do not wait for Python's cyclic collector (peak memory figures: benchmarks/)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from dyncheck import Spec
from dyncheck.copies import verdict
from dyncheck.examples import Example
from dyncheck.invariants import Context
from dyncheck.invariants.tied_weights import TiedWeights
from dyncheck.target import resolve, resolve_spec
from reference_models.tied_lm import TiedLanguageModel

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


class _Counted(TiedLanguageModel):
    """Counts its live instances at every new one: built (``__init__``) or copied (``clone``
    and ``copy.deepcopy`` both go through ``__setstate__``), after a collection, so only
    what something still holds counts."""

    alive: weakref.WeakSet = weakref.WeakSet()
    peak = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Counted._track(self)

    def __setstate__(self, state):
        super().__setstate__(state)
        _Counted._track(self)

    @classmethod
    def _track(cls, model):
        gc.collect()
        cls.alive.add(model)
        cls.peak = max(cls.peak, len(cls.alive))


@pytest.mark.filterwarnings("ignore::dyncheck.errors.DyncheckWarning")  # assign=True unties it: expected
def test_tied_weights_keeps_at_most_three_models_alive():
    # The prototype, the model built for the transformations and one transformed model: the
    # model built to find the ties is let go at once, and load_state_dict(assign=True) takes
    # the built model's own state rather than a deep copy of it.
    target = resolve_spec(Spec(_Counted, init={"vocab_size": 7, "hidden_size": 4}), text="counted")
    context = Context(target)
    verdict(target)  # the copy probe, once per target, before any check
    _Counted.peak = 0
    for seed in range(2):
        TiedWeights().check(context, Example({"tokens": torch.tensor([[1, 2, 3]])}, seed, {"batch": 1, "time": 3}))
    assert "transformations" in context.memo
    assert _Counted.peak == 3
