"""dyncheck.seeding.seeded: draws are a function of the seed; the caller's streams are untouched."""

from __future__ import annotations

import contextlib
import random

import numpy as np  # imported before seeded() runs: numpy is seeded only when it is loaded
import pytest
import torch

from dyncheck.seeding import held, seeded


@pytest.fixture(autouse=True)
def _leave_global_streams_as_found():
    """These tests seed the global generators; put them back for the rest of the session."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.random.set_rng_state(states[2])


def _draw() -> tuple:
    return (random.random(), random.randint(0, 10**9), float(np.random.rand()), torch.rand(3).tolist())


def _seeded_draw(seed: int) -> tuple:
    with seeded(seed):
        return _draw()


def test_same_seed_same_draws():
    first = _seeded_draw(123)
    _draw()  # move every global stream on: the seeded draws must not depend on it
    second = _seeded_draw(123)
    assert first == second


def test_draws_match_seeding_each_generator_directly():
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    assert _seeded_draw(5) == _draw()


@pytest.mark.parametrize("source", [0, 1, 2, 3])
def test_different_seeds_differ_in_every_generator(source):
    assert _seeded_draw(0)[source] != _seeded_draw(1)[source]


def _draw_after(block) -> tuple:
    """The draws after ``block`` ran, starting from one fixed global state."""
    random.seed(42)
    np.random.seed(42)
    torch.manual_seed(42)
    _draw()  # a state that is not a fresh seed's
    block()
    return _draw()


def test_states_are_restored_exactly():
    def block() -> None:
        with seeded(7):
            _draw()
            _draw()

    assert _draw_after(block) == _draw_after(lambda: None)


def test_states_are_restored_when_the_block_raises():
    def block() -> None:
        with pytest.raises(ZeroDivisionError), seeded(7):
            _draw()
            1 / 0

    assert _draw_after(block) == _draw_after(lambda: None)


def test_states_are_restored_with_an_empty_block():
    def block() -> None:
        with seeded(7):
            pass

    assert _draw_after(block) == _draw_after(lambda: None)


@pytest.mark.parametrize("outer", [contextlib.nullcontext, held], ids=["alone", "inside held()"])
def test_nested(outer):
    def block() -> None:
        with outer(), seeded(1):
            outer_before = _draw()
            with seeded(2):
                inner = _draw()
            outer_after = _draw()
        assert inner == _seeded_draw(2)
        # the outer stream goes on as if the inner block had not run
        with seeded(1):
            assert _draw() == outer_before
            assert _draw() == outer_after

    assert _draw_after(block) == _draw_after(lambda: None)


def test_large_seed():
    assert _seeded_draw(2**63 - 1) == _seeded_draw(2**63 - 1)


@pytest.mark.skipif(torch.cuda.is_initialized(), reason="needs CUDA not yet initialised")
def test_cuda_seeding_queued_before_initialisation_is_restored(monkeypatch):
    # Before CUDA is up, torch.cuda.manual_seed_all only queues the call; the block's
    # seeding would replace the caller's queued seed for good. (CUDA is made to look
    # available: seeded() seeds only backends that are.)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    tracker = torch.cuda._lazy_seed_tracker
    saved = tracker.manual_seed_all_cb, tracker.manual_seed_cb, list(tracker.call_order)
    try:
        torch.cuda.manual_seed_all(123)
        queued = tracker.manual_seed_all_cb
        with seeded(5):
            assert tracker.manual_seed_all_cb is not queued
        assert tracker.manual_seed_all_cb is queued
        assert tracker.call_order[-1] is queued
    finally:
        tracker.manual_seed_all_cb, tracker.manual_seed_cb, tracker.call_order = saved


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_backends_are_not_seeded():
    # torch.manual_seed queues a CUDA seeding (capturing the stack as text) even where CUDA
    # can never run; seeded() leaves that out, and the CPU stream is still seeded.
    tracker = torch.cuda._lazy_seed_tracker
    before = tracker.manual_seed_all_cb, list(tracker.call_order)
    with seeded(5):
        assert (tracker.manual_seed_all_cb, list(tracker.call_order)) == before
        drawn = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(drawn, torch.rand(2))


def test_seeded_calls_inside_held_draw_as_on_their_own():
    alone = [_seeded_draw(3), _seeded_draw(4)]

    def block() -> None:
        with held():
            inside = [_seeded_draw(3), _seeded_draw(4)]
        assert inside == alone

    assert _draw_after(block) == _draw_after(lambda: None)


def test_held_restores_when_the_block_raises():
    def block() -> None:
        with pytest.raises(ZeroDivisionError), held():
            _seeded_draw(3)
            _draw()
            1 / 0

    assert _draw_after(block) == _draw_after(lambda: None)


def test_held_saves_numpy_once_for_many_seeded_calls(monkeypatch):
    # The point of held(): numpy's global state (its whole Mersenne Twister) is copied
    # once for the block, not twice per seeded call.
    calls = []
    get_state = np.random.get_state
    monkeypatch.setattr(np.random, "get_state", lambda *a, **k: calls.append(1) or get_state(*a, **k))
    with held():
        for seed in range(5):
            _seeded_draw(seed)
    assert len(calls) == 1


def test_inside_a_hypothesis_test_case_held_leaves_python_and_numpy_to_hypothesis():
    # Hypothesis seeds python's and numpy's global generators before each test case and
    # restores them after it, so held(restored_by_caller=True) saves only torch's.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    calls = []

    @settings(max_examples=5, database=None)
    @given(st.integers(0, 9))
    def case(seed):
        get_state = np.random.get_state
        np.random.get_state = lambda *a, **k: calls.append(1) or get_state(*a, **k)
        try:
            with held(restored_by_caller=True):
                _seeded_draw(seed)
                _draw()
        finally:
            np.random.get_state = get_state

    def block() -> None:
        case()

    assert _draw_after(block) == _draw_after(lambda: None)
    assert calls == []
