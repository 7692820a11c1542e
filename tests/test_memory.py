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


_FREEZER = """
import gc
import importlib
import os

import torch
from torch import nn


class Model(nn.Module):
    '''Writes, at every call, how many objects the cyclic collector is told to skip; with
    IMPORTS set, its first call once something is frozen (a check's, not the resolution's)
    imports that package's modules.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        package = os.environ.get("IMPORTS")
        if package and gc.get_freeze_count():
            for index in range(120):
                importlib.import_module(f"{package}.m{index}")
        with open(os.environ["FREEZE_LOG"], "a") as log:
            log.write(f"{gc.get_freeze_count()}\\n")
        return self.fc(x)
"""


@pytest.fixture
def unfrozen():
    """This process as a plain ``python -m dyncheck`` starts it: the suite's own conftest
    froze what its collection left (tests/conftest.py), frozen again afterwards. The
    plugin, which took the heap as frozen for the rest of the process, looks again."""
    from dyncheck import plugin

    gc.unfreeze()
    plugin._FROZEN_ELSEWHERE = False
    try:
        yield
    finally:
        plugin._FROZEN_ELSEWHERE = False
        gc.collect()
        gc.freeze()


def _freeze_counts(dyncheck_run, pytester, monkeypatch, *args: str) -> list[int]:
    """What the model's calls saw, in order: the calls that resolve the target come before
    collection ends, the checks' after."""
    log = pytester.path / "freeze.log"
    monkeypatch.setenv("FREEZE_LOG", str(log))
    pytester.makepyfile(freezer=_FREEZER)
    run = dyncheck_run("--dyncheck", "freezer:Model", "--dyncheck-max-examples=2", *args)
    assert run.ret == 0, run.text
    return [int(line) for line in log.read_text().split()]


@pytest.mark.usefixtures("unfrozen")
def test_a_checks_only_run_freezes_what_collection_and_each_check_left_and_gives_it_back(
    dyncheck_run, pytester, monkeypatch
):
    package = pytester.mkpydir("many")
    for index in range(120):
        (package / f"m{index}.py").write_text(f"VALUE = {index}\n")
    monkeypatch.setenv("IMPORTS", "many")
    counts = _freeze_counts(dyncheck_run, pytester, monkeypatch, "--dyncheck-invariants=determinism,finite")
    resolving = counts.index(next(c for c in counts if c))
    assert resolving > 0 and set(counts[:resolving]) == {0}
    checked = counts[resolving:]
    assert min(checked) > 10_000, counts  # torch, pytest and the plugins at least
    # determinism's first call imported 120 modules; finite's calls see them frozen too
    assert checked[-1] > checked[0] + 500, counts
    # The session's end gives the collector everything back: what was left in a reference
    # cycle then is still finalised.
    assert gc.get_freeze_count() == 0


_FINALISED = """
import gc
import os

from torch import nn


class Buffered:
    '''What a model's module may hold: an object in a reference cycle whose finalizer writes
    out what it buffered.'''

    def __init__(self):
        self.me = self

    def __del__(self):
        with open(os.environ["FINAL_LOG"], "a") as log:
            log.write("finalised\\n")


HELD = [Buffered()]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        if gc.get_freeze_count():  # a check's call: the object, frozen with the module, is let go
            HELD.clear()
        return self.fc(x)
"""


@pytest.mark.usefixtures("unfrozen")
def test_an_object_frozen_then_left_in_a_cycle_is_still_finalised(dyncheck_run, pytester, monkeypatch):
    log = pytester.path / "final.log"
    monkeypatch.setenv("FINAL_LOG", str(log))
    pytester.makepyfile(finalised=_FINALISED)
    run = dyncheck_run("--dyncheck", "finalised:Model", "--dyncheck-invariants=determinism", "--dyncheck-max-examples=2")
    assert run.ret == 0, run.text
    # (pytester's in-process runs skip pytest's own collection at the end: one is made here)
    gc.collect()
    assert log.read_text() == "finalised\n"


@pytest.mark.usefixtures("unfrozen")
def test_a_run_with_the_users_own_tests_is_left_alone(pytester, monkeypatch):
    log = pytester.path / "freeze.log"
    monkeypatch.setenv("FREEZE_LOG", str(log))
    pytester.syspathinsert()
    pytester.makepyfile(freezer=_FREEZER, test_own="def test_own():\n    assert True\n")
    result = pytester.runpytest(
        "--dyncheck=freezer:Model", "--dyncheck-invariants=determinism", "--dyncheck-max-examples=2", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    assert set(log.read_text().split()) == {"0"}


def test_a_heap_someone_else_froze_stays_theirs(dyncheck_run, pytester, monkeypatch):
    # This suite's conftest froze its workers' heap after collection: the run neither
    # freezes it again nor gives it back to the collector.
    # (The count falls as frozen objects are freed; a freeze would raise it by thousands.)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    counts = _freeze_counts(dyncheck_run, pytester, monkeypatch, "--dyncheck-invariants=determinism")
    assert frozen - 1000 < min(counts) and max(counts) <= frozen
    assert frozen - 1000 < gc.get_freeze_count() <= frozen


def test_a_heap_found_frozen_is_not_walked_again():
    # gc.get_freeze_count() walks every frozen object (27 ms in a test process, once per
    # in-process run): a heap found frozen is taken as frozen for the rest of the process.
    import subprocess
    import sys

    code = (
        "import gc\n"
        "from dyncheck.plugin import _heap_frozen\n"
        "gc.collect()\n"
        "seen = [_heap_frozen()]\n"
        "gc.freeze()\n"
        "seen.append(_heap_frozen())\n"
        "gc.unfreeze()\n"
        "seen.append(_heap_frozen())\n"
        "print(seen)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[False, True, True]", done.stderr
