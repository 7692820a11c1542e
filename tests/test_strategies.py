"""Property tests for the strategies themselves (``dyncheck.strategies``).

Two kinds of check:

* ``@given`` properties: every example honours the arguments (shape, dtype, range, ...).
  The number of examples comes from the test profile in ``conftest.py``.
* "can be generated" checks: :func:`can_generate` runs :func:`hypothesis.find`
  derandomized and without a database, so an edge case the strategies promise (an all-zero
  row, a threshold's float neighbour, padding beyond the longest sequence) is shown to
  occur, and the same example is found on every run.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

import dyncheck.strategies as strategies
from dyncheck.errors import InvalidArgument
from dyncheck.strategies import (
    DEFAULT_DIMS,
    attention_masks,
    batch_sizes,
    control_corners,
    controls,
    current_dims,
    dim_scope,
    dims,
    padded_batches,
    seeds,
    sequence_lengths,
    sequence_lists,
    tensors,
)

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16]
INT_DTYPES = [torch.long, torch.int32, torch.uint8]

# Small shapes go element by element, shapes over 32 elements through a seeded generator
# plus drawn edge cases: most properties are checked on both paths.
SMALL_AND_LARGE = [(3,), ("batch", 4), (2, "time", 2), (6, 7), ("batch", 40)]


def can_generate(strategy: st.SearchStrategy, condition: Callable[[Any], Any], *, max_examples: int = 1000) -> Any:
    """The first example of ``strategy`` meeting ``condition`` (NoSuchExample if none).

    Derandomized, no database and no shrinking: deterministic and fast; the example only
    has to exist.
    """
    return find(
        strategy,
        lambda example: bool(condition(example)),
        settings=settings(
            max_examples=max_examples,
            database=None,
            derandomize=True,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )


def within(t: torch.Tensor, lo: float, hi: float) -> bool:
    """All of ``t`` in ``[lo, hi]``, compared in float64 (a float16 tensor compared with a
    python float would round the bound to float16 first and hide a value just outside)."""
    wide = t.double()
    return bool(((wide >= lo) & (wide <= hi)).all())


def sizes_of(shape: tuple, drawn: dict[str, int]) -> tuple[int, ...]:
    return tuple(drawn[d] if isinstance(d, str) else d for d in shape)


@st.composite
def with_dims(draw: Any, strategy: st.SearchStrategy, ranges: dict | None = None) -> tuple[Any, dict[str, int]]:
    """``(example, sizes)``: one draw of ``strategy`` in a scope, and the named sizes it drew."""
    with dim_scope(ranges):
        return draw(strategy), current_dims()


# --------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("dtype", [*FLOAT_DTYPES, torch.long, torch.bool], ids=str)
@given(data=st.data())
def test_tensors_honour_int_shape_and_dtype(dtype: torch.dtype, data: st.DataObject) -> None:
    shape = data.draw(st.lists(st.integers(0, 5), max_size=3), label="shape")
    t = data.draw(tensors(shape=shape, dtype=dtype))
    assert isinstance(t, torch.Tensor)
    assert t.shape == tuple(shape)
    assert t.dtype == dtype
    assert t.device.type == "cpu"


@given(with_dims(tensors(shape=("batch", "time", "features", 3))))
def test_tensors_draw_named_dims_from_their_default_ranges(drawn: tuple[torch.Tensor, dict[str, int]]) -> None:
    t, sizes = drawn
    assert t.shape == (sizes["batch"], sizes["time"], sizes["features"], 3)
    assert DEFAULT_DIMS["batch"][0] <= sizes["batch"] <= DEFAULT_DIMS["batch"][1]
    assert DEFAULT_DIMS["time"][0] <= sizes["time"] <= DEFAULT_DIMS["time"][1]
    assert 1 <= sizes["features"] <= 6  # a name no Spec bounds


@given(tensors(shape=("batch", "batch")))
def test_a_name_used_twice_in_one_shape_has_one_size(t: torch.Tensor) -> None:
    assert t.shape[0] == t.shape[1]


def test_a_name_used_twice_is_not_always_size_one() -> None:
    # Otherwise the square property above would hold trivially.
    can_generate(tensors(shape=("batch", "batch")), lambda t: t.shape[0] > 1)


def test_separate_draws_outside_a_scope_do_not_share_names() -> None:
    pair = st.tuples(tensors(shape=("batch",)), tensors(shape=("batch",)))
    can_generate(pair, lambda p: p[0].shape != p[1].shape)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SMALL_AND_LARGE, ids=str)
@given(data=st.data())
def test_float_values_are_finite_and_within_the_bounds(
    dtype: torch.dtype, shape: tuple, data: st.DataObject
) -> None:
    # Bounds no float16/float32 holds exactly (0.1, 0.3) included: they must still work
    # and never be rounded outwards.
    lo, hi = data.draw(st.sampled_from([(-0.1, 0.3), (-2.5, 7.0), (1e-3, 5.0), (0.0, 0.0), (-1e3, 1e3)]))
    t = data.draw(tensors(shape=shape, dtype=dtype, min_value=lo, max_value=hi))
    assert t.dtype == dtype
    assert bool(t.isfinite().all())
    assert within(t, lo, hi), t


@pytest.mark.parametrize("lo, hi", [(0.0, -0.0), (-0.0, 0.0)], ids=str)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_signed_zero_bounds(lo: float, hi: float, dtype: torch.dtype) -> None:
    # 0.0 == -0.0, so these bounds are valid; Hypothesis itself rejects floats(0.0, -0.0).
    t = can_generate(tensors(shape=(2, 3), dtype=dtype, min_value=lo, max_value=hi), lambda t: True)
    assert bool((t == 0).all())
    assert can_generate(controls(min_value=lo, max_value=hi), lambda v: True) == 0.0


def test_a_strategy_plans_once_for_all_its_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    # Validating the arguments and building the inner strategies happens when a strategy is
    # made; each draw reuses that plan instead of working it out again.
    strategy = controls(thresholds=[0.25])
    calls = []
    plan = strategies._control_plan
    monkeypatch.setattr(strategies, "_control_plan", lambda **k: calls.append(k) or plan(**k))
    monkeypatch.setattr(strategies, "_PLANS", {})
    for _ in range(5):
        can_generate(strategy, lambda v: True)
    assert len(calls) == 1


@pytest.mark.parametrize(
    "first, second",
    [({"min_value": 0.0}, {"min_value": -0.0}), ({"max_value": 1}, {"max_value": 1.0}), ({"max_value": 1}, {"max_value": True})],
    ids=["signed zero", "int and float", "int and bool"],
)
def test_plans_of_equal_looking_arguments_stay_apart(first: dict, second: dict) -> None:
    # 0.0 == -0.0 and 1 == 1.0 == True as dict keys, yet they plan differently.
    assert strategies._planned(dict, first) is not strategies._planned(dict, second)
    assert strategies._planned(dict, first) is strategies._planned(dict, dict(first))


def test_arguments_that_cannot_be_a_key_are_planned_on_each_draw() -> None:
    choices = [{"mode": "a"}, {"mode": "b"}]  # unhashable values
    assert can_generate(controls(choices=choices), lambda v: v == {"mode": "b"}) == {"mode": "b"}
    assert strategies._planned(dict, {"x": [{}]}) is not strategies._planned(dict, {"x": [{}]})


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", SMALL_AND_LARGE, ids=str)
@given(data=st.data())
def test_float_default_range_is_plus_minus_1e3(dtype: torch.dtype, shape: tuple, data: st.DataObject) -> None:
    t = data.draw(tensors(shape=shape, dtype=dtype))
    assert bool(t.isfinite().all())
    assert within(t, -1e3, 1e3), t


def test_the_default_float_bound_is_reached() -> None:
    assert strategies.DEFAULT_MAX_MAGNITUDE == 1e3
    can_generate(tensors(shape=(2, 2)), lambda t: t.max() == 1e3)
    can_generate(tensors(shape=(2, 2)), lambda t: t.min() == -1e3)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(5,), (8, 8)], ids=str)
@given(data=st.data())
def test_integer_defaults_are_0_to_9(dtype: torch.dtype, shape: tuple, data: st.DataObject) -> None:
    t = data.draw(tensors(shape=shape, dtype=dtype))
    assert t.dtype == dtype
    assert within(t, 0, 9), t


@pytest.mark.parametrize("shape", [(5,), (8, 8)], ids=str)
@given(data=st.data())
def test_integer_values_are_within_the_bounds(shape: tuple, data: st.DataObject) -> None:
    lo = data.draw(st.integers(-100, 100))
    hi = data.draw(st.integers(lo, 100))
    t = data.draw(tensors(shape=shape, dtype=torch.long, min_value=lo, max_value=hi))
    assert within(t, lo, hi), (lo, hi, t)


@given(tensors(shape=(40,), dtype=torch.long, min_value=-(2**63), max_value=2**63 - 1))
def test_the_whole_int64_range_can_be_asked_for(t: torch.Tensor) -> None:
    assert t.shape == (40,) and t.dtype == torch.long


@given(tensors(shape=("batch", 3), dtype=torch.bool))
def test_bool_tensors(t: torch.Tensor) -> None:
    assert t.dtype == torch.bool and t.shape[1] == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.long], ids=str)
@given(data=st.data())
def test_large_tensors(dtype: torch.dtype, data: st.DataObject) -> None:
    t, sizes = data.draw(with_dims(tensors(shape=("batch", 40), dtype=dtype)))
    assert t.shape == (sizes["batch"], 40) and t.numel() > 32
    assert t.dtype == dtype
    assert bool(t.isfinite().all())
    assert within(t, -1e3, 1e3) if dtype.is_floating_point else within(t, 0, 9)


@pytest.mark.parametrize("dtype", [*FLOAT_DTYPES, *INT_DTYPES, torch.bool], ids=str)
def test_a_small_tensors_elements_are_one_choice_each_in_range(dtype: torch.dtype) -> None:
    # Hypothesis's strategy for one element drawn n times in a row, not st.lists around it
    # (about half the time of a small tensor's draw): taken with the Hypothesis installed.
    _, _, lo, hi, *_ = strategies._tensor_plan(shape=(6,), dtype=dtype)
    elements = strategies._element_lists(dtype, lo, hi, 6, strategies._signs(lo, hi))
    assert isinstance(elements, strategies._FixedElements)
    if dtype == torch.bool:
        can_generate(elements, lambda v: v == [False] * 6)
        return
    for wanted in (lo, hi, 0):
        values = can_generate(elements, lambda v, w=wanted: w in v and len(v) == 6)
        assert all(lo <= v <= hi for v in values)
        # each value is one the dtype holds (float32's and float16's are rounded to them)
        assert torch.tensor(values, dtype=dtype).tolist() == values


def test_elements_of_another_kind_of_strategy_are_drawn_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # A strategy for one element built otherwise (another Hypothesis version) is not
    # unwrapped: the elements go through st.lists, with the same values and bounds.
    assert strategies._choice_level(st.just(1.0)) is None
    assert strategies._choice_level(st.floats(0, 1).map(abs).map(abs)) is None
    assert strategies._choice_level(st.one_of(st.floats(0, 1), st.integers())) is None
    assert strategies._choice_level(st.floats(0, 1, width=32)) is not None
    monkeypatch.setattr(strategies, "_choice_level", lambda elements: None)
    strategies._element_lists.cache_clear()
    try:
        assert not isinstance(strategies._element_lists(torch.float32, -1.0, 1.0, 4), strategies._FixedElements)
        t = can_generate(tensors(shape=(2, 3), min_value=-1, max_value=1), lambda t: (t == 1).any())
        assert t.shape == (2, 3) and within(t, -1, 1)
    finally:
        strategies._element_lists.cache_clear()


def test_a_small_tensor_shrinks_element_by_element() -> None:
    # Each element is a span of its own, as in a list: Hypothesis shrinks every other one to 0.
    t = find(tensors(shape=(2, 3), edge_cases=False), lambda t: bool((t > 1).any()),
             settings=settings(database=None, derandomize=True, deadline=None))
    assert sorted(t.flatten().tolist()) == [0.0] * 5 + [2.0], t


# -- edge cases: each one can occur with edge_cases=True (the default)

EDGE_SHAPES = [(3, 4), (8, 8)]  # element by element, and through the generator


@pytest.mark.parametrize("shape", EDGE_SHAPES, ids=str)
def test_an_all_zero_row_can_be_generated(shape: tuple) -> None:
    can_generate(tensors(shape=shape), lambda t: (t == 0).all(dim=1).any())


@pytest.mark.parametrize("shape", EDGE_SHAPES, ids=str)
def test_a_row_at_the_max_magnitude_can_be_generated(shape: tuple) -> None:
    can_generate(tensors(shape=shape), lambda t: (t.abs() == 1e3).all(dim=1).any())


@pytest.mark.parametrize("shape", [*EDGE_SHAPES, (5,), ("batch", 1)], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.long], ids=str)
def test_a_non_contiguous_tensor_can_be_generated(shape: tuple, dtype: torch.dtype) -> None:
    # ("batch", 1): the strided last dimension has size 1, the batch stride still breaks.
    t = can_generate(tensors(shape=shape, dtype=dtype), lambda t: not t.is_contiguous())
    assert t.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.long], ids=str)
@given(data=st.data())
def test_without_edge_cases_tensors_are_contiguous(dtype: torch.dtype, data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from([*EDGE_SHAPES, (5,), ("batch", 1), ("batch", "time", 3)]))
    t = data.draw(tensors(shape=shape, dtype=dtype, edge_cases=False))
    assert t.is_contiguous()


# --------------------------------------------------------------------------- shared dims


@st.composite
def batch_and_lengths(draw: Any, ranges: dict | None = None, lengths_first: bool = False) -> tuple:
    """A model's ``x`` and ``lengths`` drawn in one scope, as from_spec does."""
    with dim_scope(ranges):
        if lengths_first:
            lengths = draw(sequence_lengths())
            x = draw(tensors(shape=("batch", "time", 3)))
        else:
            x = draw(tensors(shape=("batch", "time", 3)))
            lengths = draw(sequence_lengths())
        return x, lengths, current_dims()


@pytest.mark.parametrize("lengths_first", [False, True])
@given(data=st.data())
def test_tensors_and_lengths_share_named_dims(lengths_first: bool, data: st.DataObject) -> None:
    x, lengths, sizes = data.draw(batch_and_lengths(lengths_first=lengths_first))
    batch, time, features = x.shape
    assert features == 3
    assert sizes == {"batch": batch, "time": time}
    assert lengths.shape == (batch,)
    assert within(lengths, 1, time), (x.shape, lengths)


@given(batch_and_lengths({"batch": (2, 2), "time": 5}))
def test_dim_scope_ranges_fix_sizes(drawn: tuple) -> None:
    x, lengths, sizes = drawn
    assert x.shape == (2, 5, 3)
    assert lengths.shape == (2,)
    assert sizes == {"batch": 2, "time": 5}


@given(with_dims(tensors(shape=("batch",)), {"batch": st.sampled_from([3, 5])}))
def test_dim_scope_accepts_a_strategy(drawn: tuple) -> None:
    t, sizes = drawn
    assert t.shape[0] in (3, 5) and sizes == {"batch": t.shape[0]}


@st.composite
def nested_scopes(draw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    with dim_scope({"batch": (2, 2)}):
        outer = draw(tensors(shape=("batch",)))
        with dim_scope({"batch": (3, 3), "time": (4, 4)}):  # joins the outer scope
            inner = draw(tensors(shape=("batch", "time")))
        return outer, inner


@given(nested_scopes())
def test_a_nested_scope_joins_the_outer_one(drawn: tuple) -> None:
    outer, inner = drawn
    # The outer bound wins for a name it knows; new names take the inner bound.
    assert outer.shape == (2,)
    assert inner.shape == (2, 4)


@given(tensors(shape=("batch",)))
def test_no_scope_is_left_open_after_a_draw(t: torch.Tensor) -> None:
    assert current_dims() == {}


@given(dims(batch=(1, 8), time=3))
def test_dims_draws_sizes_in_range(sizes: dict[str, int]) -> None:
    assert set(sizes) == {"batch", "time"}
    assert 1 <= sizes["batch"] <= 8 and sizes["time"] == 3


@st.composite
def tensor_then_dims(draw: Any) -> tuple[torch.Tensor, dict[str, int]]:
    with dim_scope():
        return draw(tensors(shape=("batch",))), draw(dims(batch=(1, 8)))


@given(tensor_then_dims())
def test_dims_inside_a_scope_reports_the_sizes_already_drawn(drawn: tuple) -> None:
    t, sizes = drawn
    assert sizes == {"batch": t.shape[0]}


# --------------------------------------------------------------------------- sequence_lengths


@given(data=st.data())
def test_sequence_lengths_with_int_arguments(data: st.DataObject) -> None:
    batch = data.draw(st.integers(0, 5), label="batch_size")
    longest = data.draw(st.integers(1, 8), label="max_length")
    shortest = data.draw(st.integers(0, longest), label="min_length")
    lengths = data.draw(sequence_lengths(batch_size=batch, max_length=longest, min_length=shortest))
    assert lengths.dtype == torch.int64 and lengths.device.type == "cpu"
    assert lengths.shape == (batch,)
    assert within(lengths, shortest, longest), lengths


@given(with_dims(sequence_lengths()))
def test_sequence_lengths_with_named_dims(drawn: tuple) -> None:
    lengths, sizes = drawn
    assert lengths.dtype == torch.int64
    assert lengths.shape == (sizes["batch"],)
    assert within(lengths, 1, sizes["time"])


@given(with_dims(sequence_lengths(min_length=2), {"time": (0, 6)}))
def test_lengths_never_exceed_a_named_padded_length(drawn: tuple) -> None:
    # A "time" drawn below min_length has no valid lengths: such a draw is rejected,
    # never answered with lengths longer than the padded tensor.
    lengths, sizes = drawn
    assert within(lengths, 2, sizes["time"]), (lengths, sizes)


@given(with_dims(sequence_lengths(pad_to_longest=True)))
def test_lengths_padded_to_the_longest_always_reach_the_padded_length(drawn: tuple) -> None:
    # As pad_sequence pads a batch: a model that builds its mask from lengths.max() takes no other.
    lengths, sizes = drawn
    assert within(lengths, 1, sizes["time"])
    assert lengths.numel() == 0 or int(lengths.max()) == sizes["time"], (lengths, sizes)


@given(with_dims(attention_masks(min_length=3), {"time": (3, 8)}))
def test_attention_masks_hold_at_least_min_length_tokens_a_row(drawn: tuple) -> None:
    mask, sizes = drawn
    assert mask.shape == (sizes["batch"], sizes["time"])
    assert bool((mask.sum(-1) >= 3).all()), mask


@given(with_dims(sequence_lengths(descending=True)))
def test_lengths_drawn_longest_first(drawn: tuple) -> None:
    # As a collate function sorts a batch for pack_padded_sequence(enforce_sorted=True).
    lengths, sizes = drawn
    assert within(lengths, 1, sizes["time"])
    assert lengths.tolist() == sorted(lengths.tolist(), reverse=True), lengths


@given(with_dims(sequence_lengths(relative=True, pad_to_longest=True)))
def test_relative_lengths_are_fractions_of_the_padded_length(drawn: tuple) -> None:
    # SpeechBrain's wav_lens: float32 shares of the padded length, 1.0 for the longest here;
    # round(value * padded) gives whole steps back.
    lengths, sizes = drawn
    padded = sizes["time"]
    assert lengths.dtype == torch.float32
    steps = (lengths.double() * padded).round()
    assert torch.allclose(steps, lengths.double() * padded, rtol=0, atol=1e-5), (lengths, sizes)
    assert bool(((steps >= 1) & (steps <= padded)).all()), (lengths, sizes)
    assert lengths.numel() == 0 or float(lengths.max()) == 1.0, (lengths, sizes)


def test_lengths_padded_to_the_longest_still_vary_below_it() -> None:
    can_generate(
        with_dims(sequence_lengths(pad_to_longest=True)).map(lambda d: (d[0].tolist(), d[1]["time"])),
        lambda d: len(d[0]) > 1 and min(d[0]) < d[1],
    )


LENGTHS_AND_TIME = with_dims(sequence_lengths()).map(lambda d: (d[0].tolist(), d[1]["time"]))


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param(lambda d: 1 in d[0], id="a length of 1"),
        pytest.param(lambda d: len(d[0]) > 1 and len(set(d[0])) == 1, id="all lengths equal"),
        pytest.param(lambda d: max(d[0]) == d[1], id="longest == padded length"),
        pytest.param(lambda d: max(d[0]) < d[1], id="padding beyond the longest"),
        pytest.param(lambda d: d[0] != sorted(d[0], reverse=True), id="not sorted by decreasing length"),
        pytest.param(
            lambda d: d[0] != sorted(d[0]) and d[0] != sorted(d[0], reverse=True), id="neither sorted way"
        ),
    ],
)
def test_sequence_length_edge_cases_can_be_generated(condition: Callable) -> None:
    can_generate(LENGTHS_AND_TIME, lambda d: len(d[0]) > 0 and condition(d))


# --------------------------------------------------------------------------- padded_batches


@pytest.mark.parametrize("batch_first", [True, False])
@given(data=st.data())
def test_padded_batches(batch_first: bool, data: st.DataObject) -> None:
    feature_shape = data.draw(st.sampled_from([(), (3,), (2, "features")]), label="feature_shape")
    padding_value = data.draw(st.sampled_from([0.0, -1.0, 7]), label="padding_value")
    strategy = padded_batches(feature_shape=feature_shape, batch_first=batch_first, padding_value=padding_value)
    (padded, lengths), sizes = data.draw(with_dims(strategy))
    batch, time = sizes["batch"], sizes["time"]
    features = sizes_of(feature_shape, sizes)
    assert padded.shape == ((batch, time) if batch_first else (time, batch)) + features
    assert padded.dtype == torch.float32 and padded.is_contiguous()
    assert lengths.dtype == torch.int64 and lengths.shape == (batch,)
    assert within(lengths, 1, time)
    rows = padded if batch_first else padded.transpose(0, 1)
    for row, length in enumerate(lengths.tolist()):
        assert bool((rows[row, length:] == padding_value).all()), (row, length, rows[row])
        assert within(rows[row, :length], -1e3, 1e3)


@given(padded_batches(batch_size=3, max_length=5, feature_shape=(2,), dtype=torch.long, padding_value=-1))
def test_padded_batches_with_int_sizes_and_an_integer_dtype(batch: tuple) -> None:
    padded, lengths = batch
    assert padded.shape == (3, 5, 2) and padded.dtype == torch.long
    assert lengths.shape == (3,) and within(lengths, 1, 5)
    for row, length in enumerate(lengths.tolist()):
        assert bool((padded[row, length:] == -1).all())
        assert within(padded[row, :length], 0, 9)


@given(padded_batches(padding_value=None, batch_first=False))
def test_padded_batches_without_padding_value(batch: tuple) -> None:
    padded, lengths = batch
    assert padded.shape[1] == lengths.shape[0]
    assert within(lengths, 1, padded.shape[0])


@st.composite
def padded_and_x(draw: Any) -> tuple:
    with dim_scope():
        return draw(tensors(shape=("batch", 5))), draw(padded_batches())


@given(padded_and_x())
def test_padded_batches_share_named_dims_with_other_inputs(drawn: tuple) -> None:
    x, (padded, lengths) = drawn
    assert padded.shape[0] == x.shape[0] == lengths.shape[0]


# --------------------------------------------------------------------------- sequence_lists


@given(data=st.data())
def test_sequence_lists_are_one_tensor_a_sample_each_of_its_own_length(data: st.DataObject) -> None:
    feature_shape = data.draw(st.sampled_from([(), (3,), (2, "features")]), label="feature_shape")
    seqs, sizes = data.draw(with_dims(sequence_lists(feature_shape=feature_shape)))
    assert isinstance(seqs, list) and len(seqs) == sizes["batch"]
    features = sizes_of(feature_shape, sizes)
    for seq in seqs:
        assert 1 <= seq.shape[0] <= sizes["time"] and seq.shape[1:] == features
        assert seq.dtype == torch.float32 and within(seq, -1e3, 1e3)
    # each its own tensor: a model that writes into one leaves the others alone
    assert len({seq.untyped_storage().data_ptr() for seq in seqs if seq.numel()}) == len([s for s in seqs if s.numel()])


@given(sequence_lists(batch_size=3, max_length=5, dtype=torch.long, min_value=0, max_value=19))
def test_sequence_lists_of_token_ids(seqs: list) -> None:
    assert len(seqs) == 3
    for seq in seqs:
        assert seq.dtype == torch.long and seq.dim() == 1 and 1 <= len(seq) <= 5 and within(seq, 0, 19)


def test_sequence_lists_of_different_lengths_and_all_equal_can_be_generated() -> None:
    lists = sequence_lists(batch_size=3, max_length=6)
    can_generate(lists, lambda seqs: len({len(s) for s in seqs}) == 3)
    can_generate(lists, lambda seqs: len({len(s) for s in seqs}) == 1 and len(seqs[0]) > 1)


@given(with_dims(sequence_lists(feature_shape=(2,), equal_lengths=True)))
def test_sequence_lists_of_equal_lengths_are_one_length_within_the_time_range(drawn: tuple) -> None:
    seqs, sizes = drawn
    assert len(seqs) == sizes["batch"]
    assert {tuple(seq.shape) for seq in seqs} <= {(sizes["time"], 2)}


def test_sequence_lists_of_equal_lengths_vary_the_length_between_examples() -> None:
    lists = sequence_lists(batch_size=2, equal_lengths=True)
    can_generate(lists, lambda seqs: len(seqs[0]) == 1)
    can_generate(lists, lambda seqs: len(seqs[0]) > 4)


# --------------------------------------------------------------------------- attention_masks


@st.composite
def ids_and_mask(draw: Any, **kwargs: Any) -> tuple:
    with dim_scope():
        return draw(tensors(shape=("batch", "time"), dtype=torch.long)), draw(attention_masks(**kwargs))


@pytest.mark.parametrize("side", ["right", "left"])
@given(data=st.data())
def test_attention_masks_are_one_sequence_a_row_padded_on_one_side(side: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([torch.long, torch.bool, torch.float32]), label="dtype")
    ids, mask = data.draw(ids_and_mask(padding_side=side, dtype=dtype))
    assert mask.shape == ids.shape and mask.dtype == dtype
    rows = mask.long() if side == "right" else mask.long().flip(1)
    assert bool((rows.sum(1) >= 1).all())  # at least one token a row
    assert torch.equal(rows, rows.cummin(dim=1).values)  # ones, then the padding


@given(data=st.data())
def test_a_key_padding_mask_marks_the_padding(data: st.DataObject) -> None:
    # PyTorch's key_padding_mask: True at padding, False at tokens, the rows otherwise alike.
    side = data.draw(st.sampled_from(["right", "left"]), label="side")
    ids, mask = data.draw(ids_and_mask(padding_side=side, dtype=torch.bool, marks="padding"))
    assert mask.shape == ids.shape and mask.dtype == torch.bool
    tokens = (~mask).long() if side == "right" else (~mask).long().flip(1)
    assert bool((tokens.sum(1) >= 1).all())
    assert torch.equal(tokens, tokens.cummin(dim=1).values)


@given(attention_masks(batch_size=3, max_length=4))
def test_attention_masks_with_int_sizes(mask: torch.Tensor) -> None:
    assert mask.shape == (3, 4) and mask.dtype == torch.long


MASKS = ids_and_mask().map(lambda drawn: drawn[1])


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param(lambda m: bool(m.all()) and m.shape[1] > 1, id="no padding"),
        pytest.param(lambda m: bool((m.sum(1) == 1).any()) and m.shape[1] > 1, id="a single token"),
        pytest.param(lambda m: m.shape[0] > 1 and len(set(m.sum(1).tolist())) > 1, id="rows of different lengths"),
    ],
)
def test_attention_mask_edge_cases_can_be_generated(condition: Callable) -> None:
    can_generate(MASKS, condition)


# --------------------------------------------------------------------------- controls


@given(data=st.data())
def test_float_controls_are_within_the_range(data: st.DataObject) -> None:
    lo, hi = sorted(data.draw(st.lists(st.floats(-10, 10), min_size=2, max_size=2), label="bounds"))
    thresholds = data.draw(st.lists(st.floats(-20, 20), max_size=3), label="thresholds")
    value = data.draw(controls(min_value=lo, max_value=hi, thresholds=thresholds))
    assert type(value) is float
    assert lo <= value <= hi


@given(controls())
def test_default_controls_are_floats_in_0_1(value: float) -> None:
    assert type(value) is float and 0.0 <= value <= 1.0


@pytest.mark.parametrize(
    "target",
    [0.5, math.nextafter(0.5, -math.inf), math.nextafter(0.5, math.inf), 0.0, 1.0],
    ids=["threshold", "just below", "just above", "min_value", "max_value"],
)
def test_a_threshold_its_float_neighbours_and_the_bounds_are_generated(target: float) -> None:
    # `control > 0.5` written as `>=` is only caught at exactly 0.5.
    can_generate(controls(thresholds=(0.5,)), lambda v: v == target)


@given(controls(dtype=bool))
def test_bool_controls(value: bool) -> None:
    assert type(value) is bool


@pytest.mark.parametrize("target", [True, False])
def test_bool_controls_take_both_values(target: bool) -> None:
    can_generate(controls(dtype=bool), lambda v: v is target)


@given(controls(dtype=int, min_value=-3, max_value=5, thresholds=(2,)))
def test_int_controls_are_ints_in_range(value: int) -> None:
    assert type(value) is int and -3 <= value <= 5


@pytest.mark.parametrize("lo, hi, whole", [(0.5, 3.5, (1, 3)), (-2.5, -0.5, (-2, -1)), (0.2, 1.0, (1, 1))])
@given(data=st.data())
def test_int_controls_with_fractional_bounds_stay_inside(lo: float, hi: float, whole: tuple, data: st.DataObject) -> None:
    value = data.draw(controls(dtype=int, min_value=lo, max_value=hi, thresholds=(2.5,)))
    assert type(value) is int and whole[0] <= value <= whole[1]


@pytest.mark.parametrize("target", [1, 2, 3, 4])
def test_int_controls_try_both_sides_of_a_threshold(target: int) -> None:
    can_generate(controls(dtype=int, min_value=0, max_value=100, thresholds=(2.5,)), lambda v: v == target)


ACTIVATIONS = ["relu", "gelu", "tanh"]


class Mode(Enum):
    TRAIN = "train"
    EVAL = "eval"
    EXPORT = "export"


@given(controls(choices=ACTIVATIONS))
def test_controls_choices_from_a_list(value: str) -> None:
    assert value in ACTIVATIONS


@given(controls(choices=Mode))
def test_controls_choices_from_an_enum(value: Mode) -> None:
    assert isinstance(value, Mode)


@pytest.mark.parametrize(
    "choices, target",
    [pytest.param(ACTIVATIONS, a, id=a) for a in ACTIVATIONS] + [pytest.param(Mode, m, id=str(m)) for m in Mode],
)
def test_every_choice_is_generated(choices: Any, target: Any) -> None:
    can_generate(controls(choices=choices), lambda v: v == target)


@pytest.mark.parametrize(
    "kwargs, dtype, lo, hi",
    [
        pytest.param({}, torch.float32, 0.0, 1.0, id="float"),
        pytest.param({"thresholds": (0.5,)}, torch.float32, 0.0, 1.0, id="float-thresholds"),
        pytest.param({"dtype": int, "max_value": 5}, torch.long, 0, 5, id="int"),
        pytest.param({"dtype": bool}, torch.bool, 0, 1, id="bool"),
        pytest.param({"choices": [1, 2]}, torch.long, 1, 2, id="int-choices"),
        pytest.param({"choices": [0.25, 1.5]}, torch.float32, 0.25, 1.5, id="float-choices"),
    ],
)
@given(data=st.data())
def test_controls_as_tensor_are_one_element_tensors(
    kwargs: dict, dtype: torch.dtype, lo: float, hi: float, data: st.DataObject
) -> None:
    t = data.draw(controls(as_tensor=True, **kwargs))
    assert isinstance(t, torch.Tensor)
    assert t.shape == (1,) and t.dtype == dtype
    assert within(t, lo, hi)


@pytest.mark.parametrize(
    "kwargs, inside, outside",
    [
        # a threshold, the range below it, the range above it
        pytest.param({"thresholds": (0.5,)}, [0.5, 0.0, 0.7], [-0.1, 1.2], id="float"),
        # thresholds given in any order are cut in order
        pytest.param({"thresholds": (0.7, 0.3), "max_value": 1.0}, [0.3, 0.7, 0.1, 0.5, 0.9], [], id="two"),
        # a threshold on a bound cuts nothing
        pytest.param({"thresholds": (0.0,)}, [0.3], [], id="on-a-bound"),
        # ints: 2 on its own, 0..1, 3..5; a fractional threshold is no value of its own
        pytest.param({"dtype": int, "max_value": 5, "thresholds": (2,)}, [2, 1, 4], [], id="int"),
        pytest.param({"dtype": int, "max_value": 5, "thresholds": (2.5,)}, [0, 5], [], id="int-fractional"),
        pytest.param({"dtype": bool}, [False, True], [1], id="bool"),
        pytest.param({"choices": ["a", "b", "c"]}, ["a", "b", "c"], ["d"], id="choices"),
        pytest.param({"thresholds": (0.5,), "as_tensor": True}, [torch.tensor([0.5]), torch.tensor([0.0]),
                     torch.tensor([0.7])], [], id="as-tensor"),
    ],
)
def test_control_corners_are_one_condition_per_piece(kwargs: dict, inside: list, outside: list) -> None:
    corners = control_corners(controls(**kwargs))
    assert len(corners) == len(inside)
    for (_, holds), value in zip(corners, inside):
        assert holds(value), value
        # the pieces do not overlap: each value lies in one
        assert sum(h(value) for _, h in corners) == 1, value
    for value in outside:
        assert not any(h(value) for _, h in corners), value


def test_each_piece_of_a_control_is_drawn() -> None:
    for (_, holds) in control_corners(controls(thresholds=(0.25, 0.75), dtype=float, as_tensor=True)):
        can_generate(controls(thresholds=(0.25, 0.75), as_tensor=True), holds)


def test_only_controls_have_corners() -> None:
    assert control_corners(st.floats(0, 1)) == []
    assert control_corners(tensors(shape=(2,))) == []


# --------------------------------------------------------------------------- seeds, batch sizes


@given(seeds())
def test_seeds_are_32_bit(seed: int) -> None:
    assert type(seed) is int and 0 <= seed <= 2**32 - 1
    torch.Generator().manual_seed(seed)


def test_seeds_reach_the_upper_half() -> None:
    can_generate(seeds(), lambda s: s >= 2**31)


def test_batch_size_1_is_generated() -> None:
    can_generate(batch_sizes(), lambda n: n == 1)


@given(batch_sizes())
def test_default_batch_sizes(n: int) -> None:
    assert 1 <= n <= 8


@given(data=st.data())
def test_batch_sizes_respect_bounds(data: st.DataObject) -> None:
    lo = data.draw(st.integers(0, 20), label="min_size")
    hi = data.draw(st.integers(lo, 40), label="max_size")
    n = data.draw(batch_sizes(min_size=lo, max_size=hi))
    assert lo <= n <= hi


# --------------------------------------------------------------------------- argument validation

# Each call is evaluated with the strategies and torch in scope; the id is the call.
BAD_CALLS = {
    # tensors
    'tensors(shape="ab")': "shape='ab' must be a sequence of ints and dimension names",
    "tensors(shape=5)": "shape=5 must be a sequence of ints and dimension names",
    "tensors(shape=(-1,))": "Cannot have shape[0]=-1 < 0",
    "tensors(shape=(2, 2.0))": "shape[1]=2.0 must be an int or a dimension name",
    "tensors(shape=(True,))": "shape[0]=True must be an int or a dimension name",
    'tensors(shape=("not a name",))': "shape[0]='not a name' is not a valid dimension name",
    "tensors(shape=(2,), min_value=3, max_value=1)": "Cannot have max_value=1 < min_value=3",
    "tensors(shape=(2,), max_value=-2000)": "Cannot have max_value=-2000 < min_value=-1000.0",
    "tensors(shape=(2,), dtype=torch.bool, min_value=0)": "Cannot have min_value=0 with dtype=torch.bool",
    "tensors(shape=(2,), dtype=torch.bool, min_value=0, max_value=1)": (
        "Cannot have min_value=0, max_value=1 with dtype=torch.bool"
    ),
    'tensors(shape=(2,), dtype="float")': "dtype='float' must be a torch.dtype",
    "tensors(shape=(2,), dtype=torch.complex64)": "dtype=torch.complex64: complex tensors are not supported yet",
    'tensors(shape=(2,), min_value=float("nan"))': "min_value=nan must be a finite number",
    'tensors(shape=(2,), max_value=float("inf"))': "max_value=inf must be a finite number",
    'tensors(shape=(2,), min_value="0")': "min_value='0' must be a finite number",
    "tensors(shape=(2,), dtype=torch.long, min_value=0.5)": (
        "min_value=0.5 must be a whole number for dtype=torch.int64"
    ),
    "tensors(shape=(2,), dtype=torch.uint8, max_value=300)": (
        "Cannot have min_value=0, max_value=300 outside the range of torch.uint8"
    ),
    "tensors(shape=(2,), min_value=0.1, max_value=0.1)": (
        "Cannot have min_value=0.1, max_value=0.1: no torch.float32 value lies between them"
    ),
    "tensors(shape=(2,), dtype=torch.float16, min_value=1e5, max_value=2e5)": (
        "Cannot have min_value=100000.0, max_value=200000.0: no torch.float16 value lies between them"
    ),
    "tensors(shape=(2,), edge_cases=1)": "edge_cases=1 must be a bool",
    # controls
    "controls(min_value=1, max_value=0)": "Cannot have max_value=0 < min_value=1",
    'controls(min_value=float("inf"))': "min_value=inf must be a finite number",
    'controls(max_value="1")': "max_value='1' must be a finite number",
    'controls(thresholds=[float("nan")])': "thresholds=[nan] holds nan, not a finite number",
    "controls(thresholds=0.5)": "thresholds=0.5 must be a sequence of numbers",
    'controls(thresholds="0.5")': "thresholds='0.5' must be a sequence of numbers",
    "controls(dtype=str)": "dtype=str must be float, int or bool",
    'controls(dtype="float")': "dtype='float' must be float, int or bool",
    "controls(dtype=int, min_value=0.2, max_value=0.8)": (
        "Cannot have dtype=int with min_value=0.2, max_value=0.8: no whole number lies between them"
    ),
    "controls(choices=[])": "Cannot have choices=[] with no values",
    'controls(choices=["a", "b"], as_tensor=True)': "Cannot have as_tensor=True with non-numeric choices",
    'controls(as_tensor="yes")': "as_tensor='yes' must be a bool",
    # batch_sizes
    "batch_sizes(min_size=3, max_size=1)": "Cannot have max_size=1 < min_size=3",
    "batch_sizes(min_size=-1)": "Cannot have min_size=-1 < 0",
    "batch_sizes(max_size=2.5)": "max_size=2.5 must be an int",
    # sequence_lengths
    "sequence_lengths(max_length=2, min_length=3)": "Cannot have max_length=2 < min_length=3",
    "sequence_lengths(batch_size=-2)": "Cannot have batch_size=-2 < 0",
    "sequence_lengths(batch_size=True)": "batch_size=True must be an int or a dimension name",
    "sequence_lengths(min_length=-1)": "Cannot have min_length=-1 < 0",
    "sequence_lengths(pad_to_longest=1)": "pad_to_longest=1 must be True or False",
    "sequence_lengths(descending='yes')": "descending='yes' must be True or False",
    "sequence_lengths(relative=1)": "relative=1 must be True or False",
    "attention_masks(min_length=0)": "Cannot have min_length=0 < 1",
    # padded_batches
    'padded_batches(batch_first="yes")': "batch_first='yes' must be a bool",
    'padded_batches(padding_value="0")': "padding_value='0' must be a number or None",
    "padded_batches(feature_shape=3)": "feature_shape=3 must be a sequence",
    "padded_batches(feature_shape=(-3,))": "Cannot have feature_shape[0]=-3 < 0",
    "padded_batches(max_length=0)": "Cannot have max_length=0 < min_length=1",
    "padded_batches(dtype=torch.bool, min_value=0)": "Cannot have min_value=0 with dtype=torch.bool",
    "sequence_lists(feature_shape=3)": "feature_shape=3 must be a sequence",
    "sequence_lists(feature_shape=(-3,))": "Cannot have feature_shape[0]=-3 < 0",
    "sequence_lists(max_length=0)": "Cannot have max_length=0 < min_length=1",
    "sequence_lists(equal_lengths=1)": "equal_lengths=1 must be True or False",
    "sequence_lists(max_length=0, equal_lengths=True)": "Cannot have max_length=0 < min_length=1",
    # attention_masks
    'attention_masks(padding_side="top")': "padding_side='top' must be 'right' or 'left'",
    'attention_masks(marks="pad")': (
        "marks='pad' must be 'tokens' (True at tokens, Hugging Face's attention_mask) or 'padding' "
        "(True at padding, PyTorch's key_padding_mask)"
    ),
    "attention_masks(dtype=torch.complex64)": (
        "dtype=torch.complex64 must be a real torch.dtype, e.g. torch.long or torch.bool"
    ),
    "attention_masks(max_length=0)": "Cannot have max_length=0 < min_length=1",
    "attention_masks(batch_size=-1)": "Cannot have batch_size=-1 < 0",
    # dims and dim_scope
    "dims(batch=(3, 1))": "Cannot have batch=(3, 1) with max 1 < min 3",
    "dims(batch=(-1, 2))": "Cannot have batch=(-1, 2) with min -1 < 0",
    "dims(batch=-1)": "Cannot have batch=-1 < 0",
    'dims(batch="x")': "batch='x' must be an int, a (min, max) pair of ints or a strategy",
    "dims(batch=True)": "batch=True must be an int, a (min, max) pair of ints or a strategy",
    'dim_scope({"batch": (3, 1)}).__enter__()': "Cannot have dims['batch']=(3, 1) with max 1 < min 3",
}
NAMESPACE = {"torch": torch, **{name: getattr(strategies, name) for name in strategies.__all__}}
NAMESPACE.update(dim_scope=dim_scope, Mode=Mode)


@pytest.mark.parametrize("call, message", BAD_CALLS.items(), ids=list(BAD_CALLS))
def test_bad_arguments_raise_when_the_strategy_is_called(call: str, message: str) -> None:
    # Only the call: nothing is drawn, so the error cannot come from a lazy draw.
    with pytest.raises(InvalidArgument) as excinfo:
        eval(call, dict(NAMESPACE))
    assert str(excinfo.value) == message
    assert isinstance(excinfo.value, TypeError)
    assert not isinstance(excinfo.value, HypothesisInvalidArgument)


def test_a_bad_device_names_it() -> None:
    with pytest.raises(InvalidArgument, match=r"^device='gpu' is not a torch device: "):
        tensors(shape=(2,), device="gpu")


# --------------------------------------------------------------------------- repr


@pytest.mark.parametrize(
    "text",
    [
        "tensors(shape=('batch', 4))",
        "tensors(shape=[3])",
        "controls()",
        "controls(thresholds=(0.5,))",
        "controls(dtype=bool)",
        "controls(choices=Mode)",
        "sequence_lengths()",
        "sequence_lengths(max_length=5)",
        "sequence_lengths(pad_to_longest=True)",
        "sequence_lengths(descending=True)",
        "sequence_lengths(relative=True)",
        "padded_batches()",
        "padded_batches(batch_first=False)",
        "sequence_lists()",
        "sequence_lists(feature_shape=(3,))",
        "attention_masks()",
        "attention_masks(padding_side='left')",
        "dims(batch=(1, 8))",
    ],
)
def test_repr_is_the_call(text: str) -> None:
    assert repr(eval(text, dict(NAMESPACE))) == text


@pytest.mark.parametrize(
    "call",
    [
        "tensors(shape=(2, 'time'), dtype=torch.float64, min_value=-1, max_value=1, edge_cases=False)",
        "controls(min_value=-1.0, max_value=2.0, thresholds=[0.5, 1.5], dtype=int, as_tensor=True)",
        "controls(choices=['relu', 'gelu'])",
        "sequence_lengths(batch_size=3, max_length='steps', min_length=2)",
        "padded_batches(feature_shape=(3,), batch_first=False, dtype=torch.int64, padding_value=None)",
    ],
)
def test_repr_with_several_arguments_is_a_call_giving_the_same_strategy(call: str) -> None:
    # Keyword order is Hypothesis's (alphabetical); the repr is still Python to paste.
    strategy = eval(call, dict(NAMESPACE))
    text = repr(strategy)
    assert text.startswith(call.split("(")[0] + "(")
    assert repr(eval(text, dict(NAMESPACE))) == text
    # Defaults are left out, every given argument is kept.
    assert text.count("=") == call.count("=")


@pytest.mark.parametrize("toward", [-math.inf, math.inf])
def test_tensor_controls_try_the_float32_neighbours_of_a_threshold(toward: float) -> None:
    # float64 neighbours of 0.5 round back to 0.5 in a float32 tensor: the neighbour a
    # `control > 0.5` model can tell apart from 0.5 is the float32 one.
    neighbour = float(torch.nextafter(torch.tensor(0.5), torch.tensor(toward)))
    found = can_generate(controls(thresholds=(0.5,), as_tensor=True), lambda c: c.item() == neighbour)
    assert found.dtype == torch.float32


def test_the_placeholder_of_a_hint_says_the_size_is_to_be_given():
    # A refusal's Spec leaves the sizes it cannot know as ``...``; pasted as it is, it says so.
    import pytest

    from dyncheck.errors import InvalidArgument
    from dyncheck.strategies import sequence_lists, tensors

    with pytest.raises(InvalidArgument, match=r"^shape\[1\]=\.\.\. is a placeholder: give the size there"):
        tensors(shape=("batch", ...))
    with pytest.raises(InvalidArgument, match=r"^feature_shape\[0\]=\.\.\. is a placeholder"):
        sequence_lists(feature_shape=(...,))
