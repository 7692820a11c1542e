"""dyncheck.compare: mismatch() in torch.testing's words, and the default tolerances."""

from __future__ import annotations

import re

import pytest
import torch

from dyncheck.compare import DEFAULT_TOLERANCES, mismatch, tolerances

NAN, INF = float("nan"), float("inf")
A = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


def _changed(tensor: torch.Tensor, index: tuple[int, ...], value: float) -> torch.Tensor:
    out = tensor.clone()
    out[index] = value
    return out


def test_equal_tensors():
    assert mismatch(A, A.clone(), rtol=0, atol=0) == []
    assert mismatch(torch.zeros(0, 3), torch.zeros(0, 3), rtol=0, atol=0) == []


def test_message_pinned():
    assert mismatch(A, _changed(A, (1, 2), 5.5), rtol=0, atol=0) == [
        "Mismatched elements: 1 / 6 (16.7%)",
        "Greatest absolute difference: 0.5 at index (1, 2) (up to 0 allowed)",
        "Greatest relative difference: 0.0909 at index (1, 2) (up to 0 allowed)",
    ]


def test_message_pinned_with_tolerances():
    expected = A + torch.tensor([[0.0, 1e-6, 0.0], [0.0, 0.0, 0.25]])
    assert mismatch(A, expected, rtol=1.3e-6, atol=1e-5) == [
        "Mismatched elements: 1 / 6 (16.7%)",
        "Greatest absolute difference: 0.25 at index (1, 2) (up to 1e-05 allowed)",
        "Greatest relative difference: 0.04 at index (1, 2) (up to 1.3e-06 allowed)",
    ]


def test_within_tolerance_is_no_mismatch():
    assert mismatch(A, A + 1e-6, rtol=1.3e-6, atol=1e-5) == []


def test_relative_difference_takes_its_own_index():
    actual = torch.tensor([100.0, 1.0])
    expected = torch.tensor([110.0, 2.0])
    assert mismatch(actual, expected, rtol=0, atol=0)[1:] == [
        "Greatest absolute difference: 10 at index (0,) (up to 0 allowed)",
        "Greatest relative difference: 0.5 at index (1,) (up to 0 allowed)",
    ]


def test_percentage_rounds_as_torch_testing_does():
    # 23 / 80 = 28.75%: torch.testing formats count / total with "{:.1%}" -> 28.7%
    actual = torch.zeros(80)
    expected = torch.cat([torch.ones(23), torch.zeros(57)])
    assert mismatch(actual, expected, rtol=0, atol=0)[0] == "Mismatched elements: 23 / 80 (28.7%)"


def _torch_testing_report(actual, expected, rtol, atol) -> tuple[str, str] | None:
    """(the mismatch count line, the greatest absolute difference index) as torch.testing says them."""
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    except AssertionError as error:
        text = str(error)
        count = re.search(r"^Mismatched elements: .*$", text, re.M).group(0)
        index = re.search(r"^Greatest absolute difference: \S+ at index (\(.*?\))", text, re.M).group(1)
        return count, index
    return None


SEEDS = range(40)
TOLERANCES = [(1.3e-6, 1e-5), (1e-7, 1e-7), (1e-3, 1e-4), (0.0, 0.0)]


def _random_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Two tensors of 1 to 3 dims whose differences span 1e-7 to 1e-1, so that
    some elements are within tolerance and some are not."""
    generator = torch.Generator().manual_seed(seed)
    dtype = (torch.float32, torch.float64)[seed % 2]
    shape = tuple(int(s) for s in torch.randint(1, 6, (1 + seed % 3,), generator=generator))
    actual = torch.randn(shape, generator=generator, dtype=torch.float64)
    noise = torch.randn(shape, generator=generator, dtype=torch.float64)
    scale = 10.0 ** torch.randint(-7, 0, shape, generator=generator)
    expected = (actual + noise * scale).to(dtype)
    return actual.to(dtype), expected, *TOLERANCES[seed % len(TOLERANCES)]


@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_torch_testing(seed):
    actual, expected, rtol, atol = _random_pair(seed)
    lines = mismatch(actual, expected, rtol=rtol, atol=atol)
    report = _torch_testing_report(actual, expected, rtol, atol)
    if report is None:
        assert lines == []
        return
    count, index = report
    assert lines[0] == count
    pattern = rf"Greatest absolute difference: \S+ at index {re.escape(index)} \(up to \S+ allowed\)"
    assert re.fullmatch(pattern, lines[1])


def test_random_pairs_are_not_vacuous():
    reports = [_torch_testing_report(*_random_pair(seed)) for seed in SEEDS]
    assert sum(report is not None for report in reports) >= 30
    assert any(report is not None and "(100.0%)" not in report[0] for report in reports)


def test_nan_in_both_places_is_equal():
    actual = torch.tensor([NAN, 1.0])
    assert mismatch(actual, actual.clone(), rtol=0, atol=0) == []


def test_nan_in_both_places_without_equal_nan():
    actual = torch.tensor([NAN, 1.0])
    assert mismatch(actual, actual.clone(), rtol=0, atol=0, equal_nan=False) == [
        "Mismatched elements: 1 / 2 (50.0%)",
        "Greatest absolute difference: nan at index (0,) (up to 0 allowed)",
        "Greatest relative difference: nan at index (0,) (up to 0 allowed)",
    ]


@pytest.mark.parametrize(
    ("actual", "expected"),
    [([NAN, 1.0, 3.0], [1.0, 1.0, 100.0]), ([1.0, 1.0, 100.0], [NAN, 1.0, 3.0])],
    ids=["nan-in-actual", "nan-in-expected"],
)
def test_nan_in_one_only_is_a_mismatch(actual, expected):
    # as torch.testing: the NaN is the greatest difference, and it reads "nan"
    assert mismatch(torch.tensor(actual), torch.tensor(expected), rtol=0, atol=0) == [
        "Mismatched elements: 2 / 3 (66.7%)",
        "Greatest absolute difference: nan at index (0,) (up to 0 allowed)",
        "Greatest relative difference: nan at index (0,) (up to 0 allowed)",
    ]


def test_infinities():
    actual = torch.tensor([INF, -INF, 1.0])
    assert mismatch(actual, actual.clone(), rtol=0, atol=0) == []
    assert mismatch(actual, actual.clone(), rtol=1e-3, atol=1e-3) == []
    lines = mismatch(actual, torch.tensor([-INF, -INF, 1.0]), rtol=0, atol=0)
    assert lines[:2] == [
        "Mismatched elements: 1 / 3 (33.3%)",
        "Greatest absolute difference: inf at index (0,) (up to 0 allowed)",
    ]
    assert mismatch(torch.tensor([INF]), torch.tensor([1e30]), rtol=1.0, atol=1.0)[0] == (
        "Mismatched elements: 1 / 1 (100.0%)"
    )


def test_shape_mismatch():
    assert mismatch(torch.zeros(2, 3), torch.zeros(3, 2), rtol=0, atol=0) == [
        "The values for attribute 'shape' do not match: torch.Size([2, 3]) != torch.Size([3, 2])."
    ]


def test_dtype_mismatch():
    assert mismatch(torch.zeros(2), torch.zeros(2, dtype=torch.float64), rtol=1, atol=1) == [
        "The values for attribute 'dtype' do not match: torch.float32 != torch.float64."
    ]


def test_integers_are_compared_exactly():
    actual = torch.tensor([[1, 2], [3, 4]])
    assert mismatch(actual, actual.clone(), rtol=0, atol=0) == []
    # no tolerance applies to integers, and the message does not claim one
    assert mismatch(actual, torch.tensor([[1, 2], [3, 5]]), rtol=1.0, atol=1.0) == [
        "Mismatched elements: 1 / 4 (25.0%)",
        "Greatest absolute difference: 1 at index (1, 1) (up to 0 allowed)",
    ]


def test_unsigned_integers_do_not_wrap():
    actual = torch.tensor([0, 10], dtype=torch.uint8)
    expected = torch.tensor([200, 10], dtype=torch.uint8)
    assert mismatch(actual, expected, rtol=0, atol=0)[1] == (
        "Greatest absolute difference: 200 at index (0,) (up to 0 allowed)"
    )


def test_bools_are_compared_exactly():
    actual = torch.tensor([True, False, True])
    assert mismatch(actual, actual.clone(), rtol=0, atol=0) == []
    assert mismatch(actual, torch.tensor([True, True, True]), rtol=0, atol=0) == [
        "Mismatched elements: 1 / 3 (33.3%)",
        "Greatest absolute difference: 1 at index (1,) (up to 0 allowed)",
    ]


def test_non_tensors():
    assert mismatch(3, 3, rtol=0, atol=0) == []
    assert mismatch("a", "b", rtol=0, atol=0) == ["'a' != 'b'"]
    assert mismatch(None, torch.zeros(1), rtol=0, atol=0) == ["None != tensor([0.])"]


def test_loosest_tolerances():
    assert tolerances(torch.float32, torch.float64) == (1.3e-6, 1e-5)
    assert tolerances(torch.float64, torch.float32) == (1.3e-6, 1e-5)
    assert tolerances(torch.float64) == (1e-7, 1e-7)
    assert tolerances(torch.float16, torch.bfloat16) == (1.6e-2, 1e-5)
    assert tolerances(torch.int64, torch.bool) == (0.0, 0.0)
    assert tolerances(torch.int64, torch.float32) == (1.3e-6, 1e-5)


def test_float_tolerances_are_torch_testing_documented_defaults():
    assert tolerances(torch.float32) == (1.3e-6, 1e-5)
    assert tolerances(torch.float64) == (1e-7, 1e-7)
    assert tolerances(torch.float16) == (1e-3, 1e-5)
    assert tolerances(torch.bfloat16) == (1.6e-2, 1e-5)


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("dtype", sorted(DEFAULT_TOLERANCES, key=str))
def test_tolerance_table_matches_torch_testing(dtype):
    # a private helper, so skip rather than fail if a torch release renames it
    comparison = pytest.importorskip("torch.testing._comparison")
    if not hasattr(comparison, "default_tolerances"):
        pytest.skip("torch.testing._comparison.default_tolerances is gone")
    assert comparison.default_tolerances(torch.empty(0, dtype=dtype)) == tolerances(dtype)


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_sparse_and_nested_tensors_are_compared_by_their_values():
    # A model may return them (a graph's adjacency, a ragged batch): compared, not a crash.
    sparse = A.to_sparse()
    assert mismatch(sparse, A.to_sparse(), rtol=0, atol=0) == []
    assert mismatch(sparse, _changed(A, (1, 2), 5.5).to_sparse(), rtol=0, atol=0)[0] == "Mismatched elements: 1 / 6 (16.7%)"
    nested = torch.nested.nested_tensor([A[0], A[1, :2]])
    assert mismatch(nested, torch.nested.nested_tensor([A[0], A[1, :2]]), rtol=0, atol=0) == []
    assert mismatch(nested, torch.nested.nested_tensor([A[0], A[1, :2] + 1]), rtol=0, atol=0)
    # a component one longer, its extra element 0: not the same, though padding would make it so
    assert mismatch(nested, torch.nested.nested_tensor([A[0], torch.cat([A[1, :2], torch.zeros(1)])]), rtol=0, atol=0) == [
        "The values for attribute 'shape' do not match: components [[3], [2]] != [[3], [3]]."
    ]
    assert mismatch(nested, A, rtol=0, atol=0) == ["The values for attribute 'layout' do not match: nested != torch.strided."]
    assert mismatch(sparse, A, rtol=0, atol=0) == [
        "The values for attribute 'layout' do not match: torch.sparse_coo != torch.strided."
    ]


def test_close_compares_both_parts_of_complex_numbers():
    from dyncheck.agreement import close

    # a difference in the imaginary part only (was dropped by a cast to float64)
    assert close(torch.tensor([1 + 1j]), torch.tensor([1 + 2j]))[0] == "Mismatched elements: 1 / 1 (100.0%)"
    assert close(torch.tensor([1 + 1j]), torch.tensor([1 + 2j]), tolerance=(1e-3, 1e-3))
    assert close(torch.tensor([1 + 1j]), torch.tensor([1 + 1j])) == []
