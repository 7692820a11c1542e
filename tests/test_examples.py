"""dyncheck.examples (Example, describe_value) and dyncheck.diagnose."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch
from torch import nn

from dyncheck.diagnose import diagnose
from dyncheck.examples import Example, describe_value
from reference_models.buggy.shared_original import SharedNet as FoundingSharedNet
from reference_models.gated import DynamicNet as GatedNet
from reference_models.shared import SharedNet


def _non_contiguous() -> torch.Tensor:
    return torch.arange(12.0).reshape(2, 6)[:, ::2]  # [2, 3], stride (6, 2)


# fresh_args


def test_fresh_args_are_equal_copies():
    x = torch.randn(2, 3)
    example = Example(args={"x": x, "control": 0.5}, seed=0)
    fresh = example.fresh_args()
    assert fresh.keys() == {"x", "control"}
    assert torch.equal(fresh["x"], x)
    assert fresh["x"].data_ptr() != x.data_ptr()
    assert fresh["control"] == 0.5


def test_fresh_args_keep_strides():
    x = _non_contiguous()
    fresh = Example(args={"x": x}, seed=0).fresh_args()["x"]
    assert not fresh.is_contiguous()
    assert fresh.stride() == x.stride() == (6, 2)
    assert torch.equal(fresh, x)


def test_fresh_args_of_an_expanded_tensor():
    x = torch.tensor([[1.0, 2.0, 3.0]]).expand(4, 3)
    fresh = Example(args={"x": x}, seed=0).fresh_args()["x"]
    assert torch.equal(fresh, x)
    fresh.add_(1)  # writable: its rows no longer share memory
    assert torch.equal(x[0], torch.tensor([1.0, 2.0, 3.0]))


def test_fresh_args_walk_containers():
    Pair = namedtuple("Pair", "a b")
    args = {"pair": Pair(torch.ones(2), 3), "tup": (torch.ones(1),), "lst": [torch.ones(1)], "d": {"k": torch.ones(1)}}
    fresh = Example(args=args, seed=0).fresh_args()
    assert isinstance(fresh["pair"], Pair) and fresh["pair"].b == 3
    for original, copy in [
        (args["pair"].a, fresh["pair"].a),
        (args["tup"][0], fresh["tup"][0]),
        (args["lst"][0], fresh["lst"][0]),
        (args["d"]["k"], fresh["d"]["k"]),
    ]:
        assert torch.equal(original, copy) and original.data_ptr() != copy.data_ptr()


class _InPlace(nn.Module):
    def forward(self, x):
        x.mul_(0)  # writes into its input
        return x


def test_model_writing_into_its_input_does_not_change_the_example():
    x = _non_contiguous()
    before = x.clone()
    example = Example(args={"x": x}, seed=0)
    _InPlace()(**example.fresh_args())
    assert torch.equal(example.args["x"], before)
    assert torch.equal(example.fresh_args()["x"], before)


# describe


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("x", torch.ones(2, 3), "x float32[2, 3] max |x| 1"),
        ("x", torch.zeros(0, 3), "x float32[0, 3]"),
        ("x", torch.zeros(2, 3), "x float32[2, 3] all zero"),
        ("x", _non_contiguous(), "x float32[2, 3] non-contiguous, max |x| 10"),
        ("x", torch.tensor([[1.0, -2.0], [0.0, 0.0], [3.0, 0.5]]), "x float32[3, 2] rows [1] all zero, max |x| 3"),
        ("x", torch.tensor([[1000.0, -2.0]]), "x float32[1, 2] max |x| 1e+03"),
        ("x", torch.tensor([[-1234.5]], dtype=torch.float64), "x float64[1, 1] max |x| 1.23e+03"),
        ("seq_lengths", torch.tensor([2, 5, 1]), "seq_lengths int64[3] = [2, 5, 1]"),
        ("mask", torch.tensor([True, False]), "mask bool[2] = [True, False]"),
        ("ids", torch.arange(17), "ids int64[17]"),
        ("control", torch.tensor([0.5]), "control=tensor([0.5])"),
        ("control", torch.tensor(0.5), "control=tensor(0.5)"),
        ("control", 0.5, "control=0.5"),
        ("mode", "train", "mode='train'"),
        ("h", (torch.ones(1, 2), torch.zeros(1, 2)), "h[0] float32[1, 2] max |h[0]| 1, h[1] float32[1, 2] all zero"),
        # a dict of inputs with entries left at None (neuralforecast's windows_batch): was the raw repr
        ("b", {"y": torch.zeros(2, 3), "exog": None}, "b['y'] float32[2, 3] all zero, b['exog']=None"),
        ("b", {"exog": None}, "b={'exog': None}"),
    ],
)
def test_describe_value(name, value, text):
    assert describe_value(name, value) == text


def test_describe_example():
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    example = Example(args={"x": x, "control": 0.5}, seed=7)
    assert example.describe() == "x float32[2, 3] rows [1] all zero, max |x| 3, control=0.5, seed=7"
    assert repr(example) == example.describe()


def test_describe_example_ends_with_the_seed():
    example = Example(args={"seq_lengths": torch.tensor([2, 5, 1]), "control": torch.tensor([0.5])}, seed=7)
    assert example.describe() == "seq_lengths int64[3] = [2, 5, 1], control=tensor([0.5]), seed=7"
    assert Example(args={}, seed=0).describe() == "seed=0"


def test_example_fields():
    example = Example(args={"x": torch.ones(1)}, seed=3, dims={"batch": 1})
    assert example.seed == 3
    assert dict(example.dims) == {"batch": 1}
    assert Example(args={}, seed=0).dims == {}


# diagnose


def test_diagnose_founding_shared_net():
    assert diagnose(FoundingSharedNet(8, 6, 4)) == [
        "layers.hidden.weight (the same Parameter as layers.input.weight and layers.output.weight) "
        "has shape [6, 8], but layers.hidden is Linear(in_features=6, out_features=6, bias=True) "
        "and needs [6, 6]: a weight can only be tied between layers of the same shape",
        "layers.output.weight (the same Parameter as layers.input.weight and layers.hidden.weight) "
        "has shape [6, 8], but layers.output is Linear(in_features=6, out_features=4, bias=True) "
        "and needs [4, 6]: a weight can only be tied between layers of the same shape",
    ]


@pytest.mark.parametrize(
    "model",
    [
        FoundingSharedNet(8, 8, 8),
        SharedNet(),
        GatedNet(10, 5, 2),
        nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.Embedding(5, 2)),
    ],
    ids=["founding-equal-sizes", "shared", "gated", "conv-embedding"],
)
def test_diagnose_correct_models(model):
    assert diagnose(model) == []


def test_diagnose_untied_wrong_shape_on_the_model_itself():
    model = nn.Linear(3, 2)
    model.weight = nn.Parameter(torch.zeros(3, 3))
    assert diagnose(model) == [
        "weight has shape [3, 3], but the model is Linear(in_features=3, out_features=2, bias=True) and needs [2, 3]"
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (torch.tensor([0.4]), "control=tensor([0.4])"),
        (torch.tensor([0.4], dtype=torch.float64), "control=tensor([0.4])"),
        (torch.tensor(1.0), "control=tensor(1.0)"),
        (torch.tensor([1e-8]), "control=tensor([1e-08])"),
        (torch.tensor([3]), "control=tensor([3])"),
    ],
)
def test_one_element_tensors_show_their_shortest_value(value, text):
    assert describe_value("control", value) == text


def test_a_non_contiguous_vector_says_so():
    assert describe_value("x", torch.arange(40.0)[::2]).startswith("x float32[20] non-contiguous")


def test_a_strategy_says_which_dyncheck_strategy_made_it_and_with_what():
    from dyncheck.examples import strategy_arguments, strategy_kind
    from dyncheck.strategies import attention_masks, sequence_lengths, tensors

    made = tensors(shape=("batch", 4), dtype=torch.float64)
    assert strategy_kind(made) == "tensors"
    assert strategy_arguments(made) == {"shape": ("batch", 4), "dtype": torch.float64}
    assert strategy_kind(attention_masks()) == "attention_masks"
    assert strategy_kind(sequence_lengths(max_length=6)) == "sequence_lengths"
    assert strategy_arguments(sequence_lengths(max_length=6)) == {"max_length": 6}
    # Another strategy, or one made from a marked one, draws something else: no kind.
    from hypothesis import strategies as st

    assert strategy_kind(st.integers()) is None
    assert strategy_kind(sequence_lengths().map(lambda t: t)) is None
    assert strategy_kind(made.map(lambda t: t * 2)) is None
    assert strategy_kind(attention_masks().filter(lambda m: True)) is None


def test_a_tuple_of_inputs_gives_its_members_unless_mapped():
    from hypothesis import strategies as st

    from dyncheck.examples import strategy_members
    from dyncheck.strategies import tensors

    h, c = tensors(shape=(1, "batch", 3)), tensors(shape=(1, "batch", 4))
    assert strategy_members(st.tuples(h, c)) == (h, c)
    assert strategy_members(st.tuples(h, c).map(lambda t: t[::-1])) == ()  # the members may have moved
    assert strategy_members(h) == ()


def test_a_list_of_inputs_gives_its_elements_strategy_unless_mapped():
    from hypothesis import strategies as st

    from dyncheck.examples import strategy_elements
    from dyncheck.strategies import tensors

    view = tensors(shape=("batch", 6))
    assert strategy_elements(st.lists(view, min_size=2, max_size=3)) is view
    assert strategy_elements(st.lists(elements=view)) is view
    assert strategy_elements(st.lists(view).map(lambda views: views[::-1])) is None
    assert strategy_elements(view) is None


# find


def test_a_search_beside_a_running_check_formats_nothing_through_its_item():
    # hypothesis.find signals what it found by an exception, which Hypothesis formats
    # through the running pytest item (pytest's traceback, each frame's source read): a
    # search made inside a check must not pay for that, nor show in its statistics.
    from hypothesis import strategies as st
    from hypothesis.internal.escalation import current_pytest_item
    from hypothesis.statistics import collector

    from dyncheck.examples import find, quiet

    class Item:
        formatted = 0

        def repr_failure(self, excinfo):
            Item.formatted += 1
            return "formatted"

    seen = []
    with current_pytest_item.with_value(Item()), collector.with_value(seen.append):
        found = find(st.integers(0, 100), lambda n: n > 10, quiet(50, shrink=True))
    assert found == 11
    assert Item.formatted == 0 and seen == []
