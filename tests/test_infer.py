"""Inference with no user spec: constructor sizes, forward input strategies, their
explanations, and the errors (with the Spec line to write) when inference cannot decide.

Strategies are compared by their repr, which is the public call a user would write
(``--dyncheck-explain`` prints it), and by drawing from them.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from torch import nn

import dyncheck.strategies as dst
from dyncheck.errors import TargetError
from dyncheck.examples import from_target
from dyncheck.infer import INFERRED_SIZES, infer_init
from dyncheck.spec import Spec
from dyncheck.target import Target, resolve, resolve_spec
from reference_models import GOOD_TARGETS

FEW = settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def same(strategy, expected) -> None:
    assert repr(strategy) == repr(expected)


def assert_callable(target: Target, max_examples: int = 5) -> None:
    """The model built from ``target`` runs on every drawn example."""
    model = target.build()

    @settings(FEW, max_examples=max_examples)
    @given(from_target(target))
    def runs(example):
        target.call(model, example.fresh_args())

    runs()


# --------------------------------------------------------------------------- reference models

SIZES = {"input_size": 8, "hidden_size": 6, "output_size": 4}


def test_inferred_sizes_are_distinct_so_shape_mixups_show():
    assert INFERRED_SIZES[:3] == (8, 6, 4)
    assert len(set(INFERRED_SIZES)) == len(INFERRED_SIZES)


def test_gated():
    target = resolve("reference_models.gated:DynamicNet")
    assert target.text == "reference_models.gated:DynamicNet"
    assert dict(target.spec.init) == SIZES
    assert target.inferred_init == {name: "a size" for name in SIZES}
    inputs = target.spec.inputs
    assert list(inputs) == ["x", "control"]
    same(inputs["x"], dst.tensors(shape=("batch", 8)))
    same(inputs["control"], dst.controls(thresholds=(0.5,), as_tensor=True))
    assert target.inferred_inputs == {
        "x": "first consumed by fc1 (Linear(in_features=8))",
        "control": "a control value compared with 0.5 in forward; drawn as one-element tensors, like torch.rand(1)",
    }
    # Both paths are reachable: the threshold itself (which skips fc2) and above it.
    assert find(inputs["control"], lambda c: c.item() == 0.5).shape == (1,)
    assert find(inputs["control"], lambda c: c.item() > 0.5).dtype == torch.float32


def test_random_depth():
    target = resolve("reference_models.random_depth:DynamicNet")
    assert dict(target.spec.init) == SIZES
    assert list(target.spec.inputs) == ["x"]
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    assert target.inferred_inputs == {"x": "first consumed by input_layer (Linear(in_features=8))"}


def test_shared_keeps_constructor_defaults_and_follows_the_module_dict():
    target = resolve("reference_models.shared:SharedNet")
    assert dict(target.spec.init) == {} and target.inferred_init == {}
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    assert target.inferred_inputs == {"x": "first consumed by layers.input (Linear(in_features=8))"}


def test_classifier():
    target = resolve("reference_models.classifier:DynamicClassifier")
    assert dict(target.spec.init) == {}
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 100)))
    assert target.inferred_inputs == {"x": "first consumed by fc1 (Linear(in_features=100))"}


def test_rnn():
    target = resolve("reference_models.rnn:DynamicRNN")
    assert dict(target.spec.init) == SIZES
    inputs = target.spec.inputs
    assert list(inputs) == ["x", "seq_lengths"]
    same(inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    same(inputs["seq_lengths"], dst.sequence_lengths(batch_size="batch", max_length="time"))
    assert target.inferred_inputs["x"] == "first consumed by rnn (RNN(input_size=8, batch_first=True))"
    assert target.inferred_inputs["seq_lengths"].startswith("its name says sequence lengths")

    # x and seq_lengths share the named dimensions within one example.
    @FEW
    @given(from_target(target))
    def agree(example):
        x, lengths = example.args["x"], example.args["seq_lengths"]
        assert lengths.dtype == torch.long and lengths.shape == (x.shape[0],)
        assert 1 <= lengths.min() and lengths.max() <= x.shape[1]
        assert example.dims["batch"] == x.shape[0] and example.dims["time"] == x.shape[1]

    agree()


def test_paddle_branch():
    target = resolve("reference_models.paddle_branch:MyModel")
    assert dict(target.spec.init) == {"input_size": 8, "hidden_size": 6}
    same(target.spec.inputs["inputs"], dst.tensors(shape=("batch", 8)))
    assert target.inferred_inputs == {"inputs": "first consumed by linear1 (Linear(in_features=8))"}


@pytest.mark.parametrize("text", GOOD_TARGETS)
def test_every_reference_model_runs_on_what_is_drawn(text):
    target = resolve(text)
    assert target.inferred_inputs.keys() == target.spec.inputs.keys()  # each one explained
    assert_callable(target, max_examples=8)


# --------------------------------------------------------------------------- small models


def resolved(model, **fields) -> Target:
    return resolve_spec(Spec(model, **fields))


class Conv1(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 4, kernel_size=3)

    def forward(self, x):
        return self.conv(x)


class Conv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)

    def forward(self, image):
        return self.conv(image).relu()


def test_conv1d_first_layer():
    target = resolved(Conv1)
    assert dict(target.spec.init) == {"in_channels": 8}
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8, "length")))
    assert target.inferred_inputs["x"] == "first consumed by conv (Conv1d(in_channels=8))"
    assert dict(target.spec.dims) == {"length": (3, 9)}  # no padding: at least the kernel
    assert_callable(target)


def test_conv2d_first_layer():
    target = resolved(Conv2)
    same(target.spec.inputs["image"], dst.tensors(shape=("batch", 3, "height", "width")))
    assert target.inferred_inputs["image"] == "first consumed by conv (Conv2d(in_channels=3))"
    assert dict(target.spec.dims) == {"height": (1, 7), "width": (1, 7)}  # padding 1 allows 1
    assert_callable(target)


class Recurrent(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = kind(5, 7)  # batch_first=False: (time, batch, features)

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


@pytest.mark.parametrize("kind", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_layer_without_batch_first_is_time_major(kind):
    target = resolved(Recurrent, init={"kind": kind})
    same(target.spec.inputs["x"], dst.tensors(shape=("time", "batch", 5)))
    assert target.inferred_inputs["x"] == (
        f"first consumed by rnn ({kind.__name__}(input_size=5, batch_first=False))"
    )
    assert_callable(target, max_examples=3)


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, tokens):
        return self.embed(tokens).sum(-1)


def test_embedding_gets_integer_tokens_below_num_embeddings():
    target = resolved(Tokens)
    strategy = target.spec.inputs["tokens"]
    same(strategy, dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=9))
    assert target.inferred_inputs["tokens"] == (
        "first consumed by embed (Embedding(num_embeddings=10): integer tokens)"
    )

    @FEW
    @given(strategy)
    def valid(tokens):
        assert tokens.dtype == torch.long
        assert 0 <= tokens.min() and tokens.max() <= 9

    valid()
    assert find(strategy, lambda t: t.max() == 9).max() == 9  # the last row is reachable
    assert_callable(target)


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Dropout(0.1), nn.Linear(12, 3), nn.ReLU())

    def forward(self, x):
        return self.body(x)


class Keyed(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleDict({"a": nn.Linear(9, 2)})

    def forward(self, x):
        return self.layers["a"](x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(11, 4)

    def forward(self, h):
        return self.inner(h).relu()


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def forward(self, x):
        return self.block(x)


class Assigned(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(13, 2)

    def forward(self, x):
        h = x * 2
        return self.fc(h)


class DropNested(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(14, 2)

    def forward(self, x):
        return self.fc(self.drop(x))


class DropAssigned(DropNested):
    def forward(self, x):
        x = self.drop(x)
        return self.fc(x)


class ListIndexed(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(5, 5), nn.Linear(5, 2)])

    def forward(self, x):
        return self.layers[1](self.layers[0](x))


@pytest.mark.parametrize(
    ("model", "width", "why"),
    [
        (Stack, 12, "first consumed by body (Linear(in_features=12))"),
        (Keyed, 9, "first consumed by layers.a (Linear(in_features=9))"),
        (Outer, 11, "first consumed by block (Linear(in_features=11))"),
        (Assigned, 13, "first consumed by fc (Linear(in_features=13))"),
        (DropNested, 14, "first consumed by fc (Linear(in_features=14))"),
        (DropAssigned, 14, "first consumed by fc (Linear(in_features=14))"),
        (ListIndexed, 5, "first consumed by layers.0 (Linear(in_features=5))"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_first_shaped_layer_is_found(model, width, why):
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", width)))
    assert target.inferred_inputs == {"x": why}
    assert_callable(target, max_examples=3)


class Annotated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, steps: int, flag: bool, scale: float):
        if steps > 4:
            x = self.fc(x)
        if flag:
            x = x * scale
        return x


def test_annotated_arguments_are_python_values():
    target = resolved(Annotated)
    inputs, why = target.spec.inputs, target.inferred_inputs
    same(inputs["steps"], dst.controls(dtype=int, min_value=0, max_value=5, thresholds=(4,)))
    same(inputs["flag"], dst.controls(dtype=bool))
    same(inputs["scale"], dst.controls())
    assert why["steps"] == "annotated int compared with 4 in forward"
    assert why["flag"] == "annotated bool"
    assert why["scale"] == "a control value; drawn as floats"

    @FEW
    @given(from_target(target))
    def plain(example):
        args = example.args
        assert type(args["steps"]) is int and 0 <= args["steps"] <= 5
        assert type(args["flag"]) is bool
        assert type(args["scale"]) is float and 0.0 <= args["scale"] <= 1.0

    plain()
    assert find(inputs["steps"], lambda s: s > 4) == 5
    assert_callable(target)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)


class GateAbove(Gated):
    def forward(self, x, gate):
        if gate > 2.5:
            x = self.fc(x)
        return x


class GateBelowNegative(Gated):
    def forward(self, x, gate):
        if gate < -10:
            x = self.fc(x)
        return x


class GateLarge(Gated):
    def forward(self, x, gate):
        return self.fc(x) if gate >= 100 else x


@pytest.mark.parametrize(
    ("model", "threshold", "lo", "hi"),
    [(GateAbove, 2.5, 1.5, 3.5), (GateBelowNegative, -10, -11.0, -9.0), (GateLarge, 100, 99.0, 101.0)],
    ids=["above-2.5", "below-minus-10", "at-least-100"],
)
def test_control_range_covers_a_threshold_outside_0_1(model, threshold, lo, hi):
    target = resolved(model)
    strategy = target.spec.inputs["gate"]
    same(strategy, dst.controls(min_value=lo, max_value=hi, thresholds=(float(threshold),), as_tensor=True))
    assert target.inferred_inputs["gate"] == (
        f"a control value compared with {threshold!r} in forward; "
        "drawn as one-element tensors, like torch.rand(1)"
    )
    # Both sides of the threshold, and the threshold itself, are drawn.
    assert find(strategy, lambda g: g.item() < threshold).item() >= lo
    assert find(strategy, lambda g: g.item() > threshold).item() <= hi
    assert find(strategy, lambda g: g.item() == threshold).shape == (1,)
    assert_callable(target, max_examples=3)


class WithDefaults(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, scale=2.0, mask=None):
        out = self.fc(x) * scale
        return out if mask is None else out * mask


def test_forward_argument_with_a_default_is_not_passed():
    target = resolved(WithDefaults)
    assert list(target.spec.inputs) == ["x"]
    assert list(target.inferred_inputs) == ["x"]
    example = find(from_target(target), lambda e: True)
    assert set(example.args) == {"x"}
    assert_callable(target)


class Sized(nn.Module):
    def __init__(self, d_model: int, vocab_size, bias: bool, dropout: float, num_layers, eps, hidden=32):
        super().__init__()
        self.fc = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x):
        return self.fc(x)


def test_infer_init_by_annotation_and_name():
    found = infer_init(Sized, {})
    assert {name: i.value for name, i in found.items()} == {
        "d_model": 8, "vocab_size": 6, "bias": False, "dropout": 0.1, "num_layers": 2, "eps": 1e-5,
    }
    assert {name: i.why for name, i in found.items()} == {
        "d_model": "a size", "vocab_size": "a size", "bias": "bool argument",
        "dropout": "float argument", "num_layers": "a count", "eps": "float argument",
    }
    assert "d_model" not in infer_init(Sized, {"d_model": 3})  # given values are kept
    target = resolved(Sized, init={"d_model": 3})
    assert target.spec.init["d_model"] == 3 and "d_model" not in target.inferred_init
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 3)))


# --------------------------------------------------------------------------- uninferable


class UnusedArgument(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, extra):
        return self.fc(x) + extra.sum()


class OnlyDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x).sum()


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(3)

    def forward(self, x):
        return self.fc(x)


class Configured(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.width, 3)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize(
    ("model", "argument", "reason"),
    [
        (UnusedArgument, "extra", "no layer in forward consumes it"),
        (OnlyDropout, "x", "its first consumers (drop) give no input shape"),
        # LazyLinear says in_features=0 until its first call: not a width to draw.
        (Lazy, "x", "its first consumers (fc) give no input shape"),
    ],
)
def test_uninferable_forward_argument_names_it_and_the_spec_to_write(model, argument, reason):
    name = model.__qualname__
    with pytest.raises(TargetError) as info:
        resolved(model)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("--dyncheck ") and f":{name}: " in message
    assert f"cannot infer forward argument {argument!r} of {name} ({reason}); " in message
    assert message.endswith(
        f"write dyncheck.Spec({name}, inputs={{{argument!r}: "
        'dyncheck.strategies.tensors(shape=("batch", 16))})'
    )


def test_uninferable_constructor_argument_names_it_and_the_spec_to_write():
    with pytest.raises(TargetError) as info:
        resolved(Configured)
    message = str(info.value)
    assert message.endswith(
        ":Configured: cannot infer constructor argument 'config' of Configured(config=...); "
        "give it with dyncheck.Spec(Configured, init={'config': ...})"
    )


def test_the_spec_line_from_the_message_works():
    class Config:
        width = 4

    target = resolved(Configured, init={"config": Config()})
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 4)))
    target = resolved(UnusedArgument, inputs={"extra": dst.tensors(shape=("batch", 16))})
    assert target.inferred_inputs == {"x": "first consumed by fc (Linear(in_features=3))"}
    assert_callable(target, max_examples=3)


def test_a_layer_reached_by_iterating_a_module_list():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(5, 5) for _ in range(3)])

        def forward(self, x):
            for block in self.blocks[:2]:
                x = block(x)
            return x

    target = resolve_spec(Spec(Stack))
    assert repr(target.spec.inputs["x"]) == "tensors(shape=('batch', 5))"
    assert target.inferred_inputs["x"] == "first consumed by blocks.0 (Linear(in_features=5))"
