"""Resolution's model calls, recorded and reused (``dyncheck.probing``): a process that
resolves a target after another (an xdist worker after the controller) comes to the same
Target without calling the model where the calls are the same, and calls it again from
the first one that is not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dyncheck import probing
from dyncheck.errors import one_line
from dyncheck.target import resolve, resolve_spec
from dyncheck.spec import Spec
from reference_models import GOOD_TARGETS


def _outcome(target):
    """What a resolution decided, as comparable values (strategies by their repr)."""
    return (
        target.inferred_init, target.inferred_inputs, target.inferred_dims, target.positional,
        repr(target.spec.inputs), repr(target.spec.dims), target.spec.init,
    )


@pytest.fixture
def counted(monkeypatch):
    """The number of model calls resolution really makes (each runs on a copy)."""
    calls = []
    original = probing.clone
    monkeypatch.setattr(probing, "clone", lambda model: calls.append(1) or original(model))
    monkeypatch.setattr(probing, "_REPLAY", {})
    return calls


@pytest.mark.parametrize("text", GOOD_TARGETS)
def test_a_replayed_resolution_decides_the_same_without_calling_the_model(counted, text):
    first = resolve(text)
    record = probing.recorded()[text]
    made = len(counted)
    assert made == len(record)
    counted.clear()
    probing.replay({text: record})
    again = resolve(text)
    assert _outcome(again) == _outcome(first)
    assert counted == []


def test_a_record_that_travelled_through_execnet_is_reused(counted):
    # execnet hands tuples over as lists.
    def listed(value):
        return [listed(v) for v in value] if isinstance(value, (list, tuple)) else value

    first = resolve("reference_models.lenet:LeNet")
    record = probing.recorded()["reference_models.lenet:LeNet"]
    assert record, "LeNet's sizes are probed"
    counted.clear()
    probing.replay({"reference_models.lenet:LeNet": listed(record)})
    assert _outcome(resolve("reference_models.lenet:LeNet")) == _outcome(first)
    assert counted == []


def test_the_first_call_that_differs_from_the_record_and_all_after_it_run_the_model(counted):
    text = "reference_models.lenet:LeNet"
    first = resolve(text)
    record = list(probing.recorded()[text])
    made = len(counted)
    counted.clear()
    # Another process called the model on something else at the fifth call.
    training, arguments = record[4][0]
    record[4] = ((not training, arguments), record[4][1])
    probing.replay({text: record})
    assert _outcome(resolve(text)) == _outcome(first)
    assert len(counted) == made - 4


def test_a_record_of_another_target_is_not_taken(counted):
    text = "reference_models.lenet:LeNet"
    resolve(text)
    made = len(counted)
    counted.clear()
    probing.replay({"reference_models.decision_policy:DecisionPolicy": probing.recorded()[text]})
    resolve(text)
    assert len(counted) == made


def test_a_recorded_error_reads_as_the_original():
    class ModelError(Exception):
        pass

    for error in (
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x576 and 400x120)"),
        TypeError("linear(): argument 'input' (position 1) must be Tensor, not NoneType"),
        KeyError("attention_mask"),
        ModelError("expected 28x28 images\nsee the docs"),
        ValueError(""),
    ):
        stand_in = probing._stand_in(probing._outcome(error))
        assert type(stand_in).__name__ == type(error).__name__
        assert one_line(stand_in) == one_line(error)
    # A built-in keeps its class, so what resolution asks of the error is answered alike.
    assert type(probing._stand_in(("TypeError", "x"))) is TypeError
    assert type(probing._stand_in(("AttributeError", "x"))) is AttributeError


class NeedsMask(nn.Module):
    """Runs only with both inputs: with ``mask`` left out, a None reaches ``torch.where``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x, mask=None):
        features = self.conv(x).mean(-1)
        return self.head(features * mask.unsqueeze(-1))


def test_no_size_is_tried_beyond_the_doubled_ones_when_an_argument_is_missing(counted):
    # Called on x alone, every size raises "'NoneType' object has no attribute 'unsqueeze'":
    # the doubled sizes show it, and neither the sizes between them nor x without its
    # channel axis are tried.
    resolve_spec(Spec(NeedsMask), text="needs_mask")
    record = probing.recorded()["needs_mask"]
    shapes = [dict(arguments[1][1])["x"][1] for arguments, _ in record]
    assert shapes[:7] == [(2, 1, 3 * 2**k) for k in range(7)]  # up to 256, from the kernel's 3
    assert shapes[7:] == [(2, 1, 3)]  # then whether one sample gives NaN in train mode (a pair raises too)
    assert all("NoneType" in outcome[1] for _, outcome in record)


class SizedHead(nn.Module):
    """A Linear over the flattened features of a 12-long input: only lengths 12 and 13 run."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.pool = nn.MaxPool1d(2)
        self.head = nn.Linear(10, 2)

    def forward(self, x):
        return self.head(self.pool(self.conv(x)).flatten(1))


def test_sizes_between_the_doubled_ones_are_still_tried_when_the_error_is_about_size():
    target = resolve_spec(Spec(SizedHead), text="sized_head")
    assert target.spec.dims["length"] == (12, 13)


class TenOnly(nn.Module):
    """A positional table for one length: at any other, ``.get`` gives None and a None
    reaches the addition. Runs at length 10 only (8 after the convolution)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.pos = nn.ParameterDict({"8": nn.Parameter(torch.zeros(2, 8))})
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.conv(x)
        return self.head((h + self.pos.get(str(h.shape[-1]))).flatten(1))


def test_a_none_of_the_sizes_own_doing_still_has_every_size_tried():
    # TypeError on NoneType at every doubled size, but forward leaves no argument at None:
    # the None comes from the size, and the scan between the doubled sizes finds 10.
    target = resolve_spec(Spec(TenOnly), text="ten_only")
    assert target.spec.dims["length"] == (10, 10)


class ShapeError(TypeError):
    pass


def _ten_only(raise_at_other_lengths):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 2, 3)
            self.head = nn.Linear(16, 2)

        def forward(self, x, mask=None):
            h = self.conv(x)
            if h.shape[-1] != 8:
                raise_at_other_lengths(h.shape[-1])
            return self.head(h.flatten(1))

    return Model


def _shape_error(length):
    raise ShapeError(f"no positional table for length {length}: got NoneType")


def _second_line(length):
    raise TypeError(f"cannot add the positional table for length {length}\n  table entry: NoneType")


@pytest.mark.parametrize(("raising", "length"), [(_shape_error, (3, 9)), (_second_line, (10, 10))])
def test_a_replayed_error_is_read_as_the_original_was(counted, raising, length):
    # A TypeError subclass of the model's own, and a message naming NoneType below its first
    # line: a worker replaying the controller's record decides as the controller did.
    import json

    model = _ten_only(raising)
    first = resolve_spec(Spec(model), text="ten_only_mask")
    assert first.spec.dims["length"] == length
    record = json.loads(json.dumps(probing.recorded()["ten_only_mask"]))  # lists, as execnet hands it
    counted.clear()
    probing.replay({"ten_only_mask": record})
    assert _outcome(resolve_spec(Spec(model), text="ten_only_mask")) == _outcome(first)
    assert counted == []


def test_a_stand_in_keeps_the_built_in_class_its_original_derives_from():
    stand_in = probing._stand_in(probing._outcome(ShapeError("got NoneType\nmore")))
    assert type(stand_in).__name__ == "ShapeError"
    assert isinstance(stand_in, TypeError)
    assert one_line(stand_in) == "got NoneType …"
    # What execnet hands over (a list), and a KeyError subclass whose message is not quoted.
    class MissingKey(KeyError):
        pass

    stand_in = probing._stand_in(list(probing._outcome(MissingKey("attention_mask"))))
    assert isinstance(stand_in, KeyError)
    assert one_line(stand_in) == one_line(MissingKey("attention_mask"))
