"""Inference with no user spec: constructor sizes, forward input strategies, their
explanations, and the errors (with the Spec line to write) when inference cannot decide.

Strategies are compared by their repr, which is the public call a user would write
(``--dyncheck-explain`` prints it), and by drawing from them.
"""

from __future__ import annotations

import ast
import enum
import importlib
import random
import warnings
from typing import Literal, NamedTuple

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import dyncheck.strategies as dst
from dyncheck.strategies import DEFAULT_DIMS
from dyncheck.errors import InvalidArgument, TargetError
from dyncheck.examples import from_target, strategy_arguments, strategy_kind, strategy_members
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
    module, _, name = text.partition(":")
    value = getattr(importlib.import_module(module), name)
    # a Spec target gives its inputs itself
    declared = value.inputs if isinstance(value, Spec) else getattr(value, "__dyncheck__", {}).get("inputs", {})
    # each one explained: inferred, or declared by the model
    assert target.inferred_inputs.keys() | declared.keys() == target.spec.inputs.keys()
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


class Upsampler(nn.Module):
    """A generator's first layer: a transposed convolution (its padding trims 2 from each side)."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 2, kernel_size=3, padding=2)

    def forward(self, z):
        return self.up(z)


def test_transposed_conv_first_layer():
    target = resolved(Upsampler)
    same(target.spec.inputs["z"], dst.tensors(shape=("batch", 4, "height", "width")))
    assert target.inferred_inputs["z"] == "first consumed by up (ConvTranspose2d(in_channels=4))"
    # (L - 1) - 4 + 2 + 1 outputs: L = 3 gives the first one.
    assert dict(target.spec.dims) == {"height": (3, 9), "width": (3, 9)}
    assert target.inferred_dims == {}  # every size in the range runs: no probing moved it
    assert_callable(target)


class Pooled(nn.Module):
    """A convolution that runs at height 1, then MaxPool2d(2), which does not."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1))

    def forward(self, x):
        return self.body(x).mean((2, 3))


class Broken(nn.Module):
    """A convolution whose 4 channels a Linear over 7 features cannot take, at any size."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(7, 2)

    def forward(self, x):
        return self.fc(self.conv(x).movedim(1, -1))


def test_spatial_sizes_start_where_pooling_further_in_can_run():
    target = resolved(Pooled)
    assert dict(target.spec.dims) == {"height": (2, 8), "width": (2, 8)}  # the range keeps its width
    assert target.inferred_dims["height"] == target.inferred_dims["width"] == (
        "at height and width 1 the model raised RuntimeError (Given input size: (4x1x1). Calculated output size: "
        "(4x0x0). Output size is too small); 2 is the smallest size that ran"
    )
    assert_callable(target)


def test_spatial_sizes_of_a_head_sized_for_one_input_are_the_sizes_that_run():
    from reference_models.lenet import LeNet

    target = resolved(LeNet)
    assert dict(target.spec.dims) == {"height": (32, 35), "width": (32, 35)}
    assert target.inferred_dims["height"].endswith("; it ran at 32-35 only")
    assert_callable(target, max_examples=20)


class UNet(nn.Module):
    """One level of a U-Net: the skip connection concatenates the input's features with
    the pooled and upsampled ones, which have the same size only for even sizes."""

    def __init__(self):
        super().__init__()
        self.down, self.inner = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1)
        self.up, self.out = nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Conv2d(8, 1, 1)

    def forward(self, x):
        skip = torch.relu(self.down(x))
        inner = torch.relu(self.inner(torch.max_pool2d(skip, 2)))
        return self.out(torch.cat([skip, self.up(inner)], 1))


class FixedLength(nn.Module):
    """A Conv1d whose flattened output a Linear sized for one position takes: it runs at the
    kernel's length only, the smallest size of the inferred range."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(2, 4, 3), nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_spatial_sizes_above_one_that_runs_are_probed_too():
    target = resolved(FixedLength)
    assert dict(target.spec.dims) == {"length": (3, 3)}
    assert target.inferred_dims["length"] == (
        "at length 4 the model raised RuntimeError (mat1 and mat2 shapes cannot be multiplied (2x8 and 4x1)); "
        "it ran at 3 only"
    )
    assert_callable(target)


class Mono(nn.Module):
    """Raw audio as [batch, length]: forward adds the channel axis its Conv1d(1, ...) takes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)

    def forward(self, x):
        return self.conv(x[:, None]).mean(-1)


def test_a_single_channel_input_the_forward_adds_the_axis_to_loses_it():
    target = resolved(Mono)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "length")))
    assert target.inferred_inputs["x"] == (
        "first consumed by conv (Conv1d(in_channels=1)); without its channel axis: on ['batch', 1, 'length'] it "
        "raised RuntimeError (Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: "
        "[2, 1, 1, 3]) at every size, on ['batch', 'length'] it ran (forward adds the axis)"
    )
    assert dict(target.spec.dims) == {"length": (3, 9)}
    assert_callable(target)


class MaskedInTraining(nn.Module):
    """Runs at any length in eval mode; in training it masks spans of 6 steps, which a
    shorter output cannot hold (as wav2vec2's training-time masking)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3)

    def forward(self, x):
        h = self.conv(x)
        if self.training and h.shape[-1] < 6:
            raise ValueError(f"mask_length 6 has to be smaller than sequence_length {h.shape[-1]}")
        return h.mean(-1)


def test_spatial_sizes_run_in_training_too():
    target = resolved(lambda: MaskedInTraining().eval())  # handed over in eval mode
    assert dict(target.spec.dims) == {"length": (8, 14)}
    assert target.inferred_dims["length"].startswith("at length 3 the model raised ValueError (mask_length 6")
    model = target.build().train()
    model(torch.zeros(2, 2, 8))


class BrokenForGood(nn.Module):
    """Refuses images narrower than 3, and is left unable to run at all once it has (as
    Swin shrinks its attention windows to a small input for good)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = 1.0

    def forward(self, x):
        if x.shape[-1] < 3:
            self.scale = None
            raise ValueError("narrower than 3")
        return self.conv(x) * self.scale


def test_each_size_is_probed_on_a_copy_of_its_own():
    target = resolved(BrokenForGood)
    assert dict(target.spec.dims) == {"height": (3, 9), "width": (3, 9)}
    assert target.inferred_dims["width"] == (
        "at height and width 1 the model raised ValueError (narrower than 3); 3 is the smallest size that ran"
    )
    assert_callable(target)


class SquareOnly(nn.Module):
    """Takes square images only (a windowed attention that partitions height and width as one)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        if x.shape[-2] != x.shape[-1]:
            raise ValueError(f"expected a square image, got {x.shape[-2]}x{x.shape[-1]}")
        return self.conv(x)


def test_height_and_width_that_must_agree_become_one_size():
    target = resolved(SquareOnly)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 3, "height", "height")))
    assert target.inferred_inputs["x"].endswith(
        "; square (height, width as one size 'height'): at height 1 and width 7 it raised ValueError "
        "(expected a square image, got 1x7)"
    )
    assert dict(target.spec.dims)["height"] == (1, 7)
    assert_callable(target, max_examples=20)


def test_spatial_sizes_that_run_apart_are_sampled_from():
    target = resolved(UNet)
    for dim in ("height", "width"):
        same(target.spec.dims[dim], st.sampled_from([2, 4, 6, 8, 10, 12, 14]))
        assert target.inferred_dims[dim].endswith("; it ran at 2, 4, 6, 8, 10, 12, 14")
    assert_callable(target, max_examples=20)


class _PaddedCausal(nn.Module):
    """WaveNet's causal convolutions: k - 1 steps of padding on the left, made in forward."""

    def __init__(self, pad: bool = True):
        super().__init__()
        self.pad = pad
        self.conv1 = nn.Conv1d(4, 8, 3)
        self.conv2 = nn.Conv1d(8, 2, 3, dilation=2)

    def forward(self, x):
        h = torch.relu(self.conv1(nn.functional.pad(x, (2, 0)) if self.pad else x))
        return self.conv2(nn.functional.pad(h, (4, 0)) if self.pad else h)


class _CatPadded(nn.Module):
    """Causal padding concatenated along time, in a module of the model's own."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, 3)

    def forward(self, x):
        pad = x.new_zeros(x.size(0), x.size(1), 2)
        return self.conv(torch.cat([pad, x], dim=-1))


class CatPaddedTCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.head = _CatPadded(5, 16), _CatPadded(16, 16), nn.Conv1d(16, 2, 1)

    def forward(self, x):
        return self.head(torch.relu(self.c2(torch.relu(self.c1(x)))))


def test_a_convolutions_input_concatenated_along_time_keeps_its_channels():
    # A concatenation along the last axis joins features only for a layer that reads them
    # there: a convolution's last axis is time. Read as features, the input was drawn with the
    # head's 16 channels, and every check crashed.
    target = resolved(CatPaddedTCN)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 5, "length")
    assert_callable(target, max_examples=5)


class TransposedIntoLSTM(nn.Module):
    """tsai's RNN classifiers: [batch, variables, steps], transposed for a batch-first LSTM."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = x.transpose(2, 1)  # bound on a line of its own, read from the source too
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def test_steps_a_model_transposes_before_its_rnn_are_drawn_last_not_pinned():
    # Drawn [batch, time, 3], only time 3 ran (as many steps as features): the sequence length
    # never varied.
    target = resolved(TransposedIntoLSTM)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 3, "time")
    assert target.inferred_inputs["x"].endswith("it reaches rnn through transpose(1, 2)"), target.inferred_inputs["x"]
    assert target.spec.dims.get("time", DEFAULT_DIMS["time"]) == (1, 8)  # not pinned at 3
    assert_callable(target, max_examples=5)


def test_lengths_below_the_kernels_reach_are_drawn_where_the_model_pads_them_itself():
    # pytorch-tcn's lengths started at its kernel size, though it runs on one step.
    target = resolved(_PaddedCausal())
    assert target.spec.dims["length"] == (1, 7)
    assert target.inferred_dims["length"] == (
        "it ran at 1-7, below 3, which the first layer's kernel reaches (the model pads its input itself)"
    )
    assert_callable(target, max_examples=10)
    # unpadded, 3 is the first layer's smallest and 7 the whole stack's: no shorter one runs
    assert resolved(_PaddedCausal(pad=False)).spec.dims["length"] == (7, 13)


def test_spatial_sizes_are_left_alone_when_given_or_when_no_size_runs():
    # Given in the spec, the sizes are the user's: the checks report the crash at height 1.
    assert dict(resolved(Pooled, dims={"height": (1, 3)}).spec.dims) == {"height": (1, 3), "width": (2, 8)}
    # No size runs: the model's own crash, which the checks report as it is.
    broken = resolved(Broken)
    assert dict(broken.spec.dims) == {"height": (1, 7), "width": (1, 7)}
    assert broken.inferred_dims == {}


def test_a_sequence_shorter_than_a_convolution_over_its_embeddings_is_not_drawn():
    from reference_models.text_cnn import TextCNN

    target = resolved(TextCNN)
    assert dict(target.spec.dims) == {"time": (4, 11)}  # the default range's width, from 4
    assert target.inferred_dims["time"] == (
        "at time 1 the model raised RuntimeError (Calculated padded input size per channel: (1). Kernel size: (2). "
        "Kernel size can't be greater than actual input size); 4 is the smallest size that ran"
    )
    assert_callable(target, max_examples=20)


def test_a_sequence_is_drawn_up_to_the_longest_the_model_runs():
    # recurrent-memory-transformer's segment: 4 learned positions and assert n <= seq_len;
    # drawn up to 8 steps, every check failed on the assert, and its mask (probed at 5 steps
    # and more only) was left at None in silence
    from reference_models.segment_positions import SegmentLM

    target = resolved(SegmentLM)
    assert dict(target.spec.dims)["time"] == (1, 4)
    assert target.inferred_dims["time"] == (
        "at time 8 the model raised AssertionError (sequence length 8 must be at most 4); 4 is the longest that "
        "ran (a model built for a longest length)"
    )
    same(target.spec.inputs["mask"], dst.attention_masks(dtype=torch.bool))
    assert_callable(target, max_examples=20)
    # a mask it raises beside at every padded length tried is said so, not dropped in silence
    target = resolved(_TwoSteps)
    assert "mask" not in target.spec.inputs
    assert target.kept_defaults["mask"] == (
        "not probed as mask: the model raised without it at every padded length tried (5, 16, 64, 256, 4, 3 steps)"
    )
    assert dict(target.spec.dims)["time"] == (1, 2)


class _TwoSteps(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.pos = nn.Embedding(20, 8), nn.Parameter(torch.zeros(2, 8))

    def forward(self, x, mask=None):
        h = self.emb(x) + self.pos[: x.shape[1]].expand(x.shape[0], 2, 8)
        return h if mask is None else h * mask[..., None]


class _FlaggedTextCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.conv, self.out = nn.Embedding(20, 8), nn.Conv1d(8, 4, kernel_size=4), nn.Linear(4, 3)

    def forward(self, ids, return_logits=True):
        logits = self.out(self.conv(self.emb(ids).transpose(1, 2)).amax(-1))
        return logits if return_logits else logits.softmax(-1)


@pytest.mark.parametrize("flag", [st.just(True), st.sampled_from([True, False])])
def test_sizes_are_probed_beside_a_value_the_spec_gives(flag):
    # A Spec giving only a flag turned the probe off: time was drawn from 1, and every check
    # reported the model's refusal of sequences shorter than its kernel.
    from dyncheck.target import resolve_spec

    target = resolve_spec(Spec(_FlaggedTextCNN, inputs={"return_logits": flag}))
    assert dict(target.spec.dims) == {"time": (4, 11)}
    assert_callable(target, max_examples=10)


def test_a_length_that_runs_only_because_the_batch_folds_into_it_is_not_drawn():
    # Nystromformer's landmarks: reshape(-1, 4, 16 // 4, dim) runs a batch of 2 at length 8.
    from reference_models.landmark_attention import LandmarkAttention

    target = resolved(LandmarkAttention)
    assert dict(target.spec.dims) == {"time": (16, 16)}
    assert target.inferred_dims["time"] == (
        "at time 1 the model raised RuntimeError (shape '[-1, 4, 4, 8]' is invalid for input of size 16); it ran "
        "at 16 only (at 8 with a batch of 2 only: with 3 it raised RuntimeError (shape '[-1, 4, 4, 8]' is invalid "
        "for input of size 192), the batch folded into the time)"
    )
    assert_callable(target, max_examples=20)


def test_an_input_whose_consumers_give_no_shape_is_probed_at_their_parameters_sizes():
    # lucidrains' MoE: a gate and experts that are raw parameters used through einsum.
    from reference_models.einsum_moe import EinsumMoE

    target = resolved(EinsumMoE)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    assert target.inferred_inputs["x"] == (
        "its first consumers (_Gate, _Experts) give no input shape: called on vectors [2, F] and sequences "
        "[2, 3, F] for F in their parameters' sizes 8, 4, 16, it first ran on [2, 3, 8] (on [2, 8] it raised "
        "ValueError: not enough values to unpack (expected 3, got 2))"
    )
    assert_callable(target, max_examples=20)


class AttentionMaskArgument(nn.Module):
    """nn.Transformer's convention: mask is a [time, time] attention mask, True where forbidden."""

    def __init__(self):
        super().__init__()
        self.embed, self.attention = nn.Embedding(10, 4), nn.MultiheadAttention(4, 1, batch_first=True)

    def forward(self, tokens, mask=None):
        h = self.embed(tokens)
        return self.attention(h, h, h, attn_mask=mask)[0]


class FloatMasked(nn.Module):
    """forward(x, mask=None) on float features: a Linear first, which takes any rank."""

    def __init__(self):
        super().__init__()
        self.project_in, self.qkv, self.head = nn.Linear(6, 8), nn.Linear(8, 24), nn.Linear(8, 3)

    def forward(self, x, mask=None):
        h = self.project_in(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], -1e9)
        return self.head(h + torch.softmax(scores, -1) @ v)


class FeatureMask(nn.Module):
    """mask=None is a mask over features, [batch, features], not over time."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x, mask=None):
        return self.fc(x if mask is None else x * mask)


class LengthsOfSomethingElse(nn.Module):
    """lens=None scales the output: not the lengths of tokens."""

    def __init__(self):
        super().__init__()
        self.embed, self.fc = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, tokens, lens=None):
        h = self.fc(self.embed(tokens)).mean(1)
        return h if lens is None else h / lens[:, None]


class SamplesScaled(nn.Module):
    """Raw samples into a Conv1d, and lengths=None that scales the output: not lengths."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 5, stride=2)

    def forward(self, waveforms, lengths=None):
        h = self.conv(waveforms[:, None]).mean(-1)
        return h if lengths is None else h / lengths[:, None]


class PaddingFlags(nn.Module):
    """src_key_padding_mask=None scales the output: all False is not no mask, so not a key padding mask."""

    def __init__(self):
        super().__init__()
        self.embed, self.fc = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, tokens, src_key_padding_mask=None):
        h = self.fc(self.embed(tokens))
        return h if src_key_padding_mask is None else h * 2.0


@pytest.mark.parametrize(
    ("factory", "argument", "kind", "why", "other"),
    [
        # x-transformers' TransformerWrapper: forward(x, mask=None), True at tokens.
        ("padding_mask:MaskedTokenEncoder", "mask", ("attention_masks", "tokens"),
         "the padding mask of x: True for tokens, False for padding on the right (forward takes mask=None, and a "
         "call with a mask of all True gave the output of a call without one)",
         # an attention mask of another shape and meaning
         AttentionMaskArgument),
        # its ContinuousTransformerWrapper: forward(x, lens=None) on float features.
        ("padded_features:FeatureSequenceEncoder", "lens", ("sequence_lengths", None),
         "the lengths of x: one per sample, each between 1 and the padded length 'time' (forward takes lens=None, "
         "and a call with lengths of the full padded length gave the output of a call without one)",
         # lengths that change the output when every sequence is full
         LengthsOfSomethingElse),
        # torchaudio's Wav2Vec2Model: forward(waveforms, lengths=None) on raw samples [batch, samples],
        # whose channel axis forward adds (found by the size probe, after the first look for lengths).
        ("raw_audio:RawAudioEncoder", "lengths", ("sequence_lengths", None),
         "the lengths of waveforms: one per sample, each between 1 and the padded length 'length' (forward takes "
         "lengths=None, and a call with lengths of the full padded length gave the output of a call without one)",
         SamplesScaled),
        # nn.TransformerEncoder's convention: src_key_padding_mask=None, True at padding.
        ("key_padding:PaddedTransformerClassifier", "src_key_padding_mask", ("attention_masks", "padding"),
         "the key padding mask of tokens (PyTorch's convention): True at padding on the right, False at tokens "
         "(forward takes src_key_padding_mask=None, and a call with a mask of all False gave the output of a call "
         "without one)",
         # a mask of all False that changes the output
         PaddingFlags),
    ],
    ids=["mask", "lengths", "raw-samples-lengths", "key-padding-mask"],
)
def test_an_optional_padding_argument_is_drawn_when_every_step_valid_changes_nothing(
    factory, argument, kind, why, other
):
    module, _, name = factory.partition(":")
    target = resolved(getattr(importlib.import_module(f"reference_models.{module}"), name))
    assert list(target.spec.inputs)[1:] == [argument]
    strategy = target.spec.inputs[argument]
    assert strategy_kind(strategy) == kind[0]
    assert strategy_arguments(strategy).get("marks", "tokens" if kind[1] else None) == kind[1]
    assert target.inferred_inputs[argument] == why
    assert_callable(target, max_examples=10)
    # The same name meaning something else stays at its default.
    assert argument not in resolved(other).spec.inputs


def test_an_input_only_the_last_layer_describes_is_a_sequence_by_its_mask():
    # x-transformers' Encoder: the consumers seen are projections left as None, and its final
    # norm held in a local name (before, not followed: probed at the model's own sizes)
    from reference_models.layer_stack import LayerStack

    target = resolved(LayerStack)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 8)
    assert target.inferred_inputs["x"] == (
        "first consumed by final_norm (LayerNorm([8])); drawn as sequences [batch, time, 8], not vectors: forward "
        "takes mask=None, and on sequences a call with a mask of all True gave the output of a call without one"
    )
    assert strategy_kind(target.spec.inputs["mask"]) == "attention_masks"
    assert_callable(target, max_examples=10)


def test_a_layer_that_takes_what_an_earlier_one_made_of_the_rebound_name_says_nothing_of_it():
    # PyG's MLP: x = lin(x) with lin an F.linear over its own weight, then x = norm(x) with a
    # BatchNorm over 16 features. The name x no longer holds the argument at the norm.
    from reference_models.functional_linear import FunctionalLinearMLP

    target = resolved(FunctionalLinearMLP)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 8)
    # read off the first layer's weight (before, found by calling the model at its sizes)
    assert target.inferred_inputs["x"] == "first consumed by lins.0 (Linear(in_features=8))"
    assert_callable(target, max_examples=10)


class _Weights(nn.Module):
    """The weights the functional layers below are handed, and a head after them."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 5))  # F.linear: 5 in, 6 out
        self.u, self.v = nn.Parameter(torch.randn(5, 2)), nn.Parameter(torch.randn(2, 6))
        self.filters = nn.Parameter(torch.randn(6, 2, 3, 3))  # 2 channels a group
        self.register_buffer("table", torch.randn(11, 6))
        self.head = nn.Linear(6, 3)


class _Linear(_Weights):
    def forward(self, x):
        return self.head(torch.relu(F.linear(x, self.w)))


class _Product(_Weights):
    def forward(self, x):
        return self.head(torch.relu(x @ self.w.T))


class _Matmul(_Weights):
    def forward(self, x):
        return self.head(torch.relu(torch.matmul(x, self.w.t())))


class _Sampled(_Weights):
    def forward(self, x):
        w = self.w + 0.1 * torch.randn_like(self.w) if self.training else self.w
        return self.head(torch.relu(F.linear(x, w)))


class _Grouped(_Weights):
    def forward(self, x):
        return self.head(F.conv2d(x, self.filters, padding=1, groups=3).mean((2, 3)))


class _Table(_Weights):
    def forward(self, x):
        return self.head(F.embedding(x, self.table).mean(1))


class _Bags(_Weights):
    def forward(self, x, offsets):
        return self.head(F.embedding_bag(x, self.table, offsets, mode="mean"))


class _Factored(_Weights):
    def forward(self, x):
        # a weight made as a product of two: neither factor's shape, not read
        return self.head(torch.relu(x @ (self.u @ self.v)))


class _TiedTransposed(_Weights):
    def forward(self, x):
        # an autoencoder's decoder tied to its encoder: F.linear over w and its transpose
        return F.linear(torch.relu(F.linear(x, self.w)), self.w.t())


class _Normalised(_Weights):
    def forward(self, x):
        # a weight-normalised first layer (not read) before a plain one: what the first made
        # of x says nothing of x (before the fix, the second was read as x's layer)
        h = torch.relu(F.linear(x, self.w / self.w.norm(dim=1, keepdim=True)))
        return F.linear(h, self.head.weight)


@pytest.mark.parametrize(("model", "shape", "note"), [
    (_Linear, ("batch", 5), "first consumed by F.linear(..., w) (Linear(in_features=5))"),
    (_Product, ("batch", 5), "first consumed by ... @ w.T (Linear(in_features=5))"),
    (_Matmul, ("batch", 5), "first consumed by torch.matmul(..., w.T) (Linear(in_features=5))"),
    (_Sampled, ("batch", 5), "first consumed by F.linear(..., w) (Linear(in_features=5))"),
    (_Grouped, ("batch", 6, "height", "width"), "first consumed by F.conv2d(..., filters, groups=3) (Conv2d(in_channels=6))"),
    (_Table, ("batch", "time"), "first consumed by F.embedding(..., table) (Embedding(num_embeddings=11): integer tokens)"),
    (_Bags, ("batch", "time"), "first consumed by F.embedding_bag(..., table) (EmbeddingBag(num_embeddings=11): integer"),
])
def test_a_functional_layer_over_the_models_weight_is_read_as_the_layer_it_stands_for(model, shape, note):
    # F.linear(x, self.weight), x @ W, F.conv2d(x, W) and F.embedding(ids, W) say the input's
    # shape through the weight's, as nn.Linear's, nn.Conv2d's and nn.Embedding's do. Before,
    # the head after them was read first: x drawn as images of 6 channels that ran by chance
    # on their last axis of 5, or, for the convolution, as vectors.
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == shape
    assert target.inferred_inputs["x"].startswith(note), target.inferred_inputs["x"]
    if model is _Bags:  # F.embedding_bag's offsets are an EmbeddingBag's: None, one bag a row
        assert target.inferred_inputs["offsets"].startswith(
            "handed to F.embedding_bag(..., table) as its bags' offsets: drawn as None"
        ), target.inferred_inputs["offsets"]
    assert_callable(target, max_examples=5)


def test_only_a_functional_layer_the_argument_itself_enters_says_its_shape():
    target = resolved(_TiedTransposed)
    assert target.inferred_inputs["x"].startswith("first consumed by F.linear(..., w) (Linear(in_features=5))")
    target = resolved(_Normalised)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 5)
    assert "F.linear(..., head.weight)" not in target.inferred_inputs["x"]
    assert target.inferred_inputs["x"].startswith("no layer gives its shape"), target.inferred_inputs["x"]


def test_a_weight_made_of_a_product_is_not_read_as_either_factor():
    # u [5, 2] @ v [2, 6] has neither's shape: no stand-in, the head is read as before
    target = resolved(_Factored)
    assert target.inferred_inputs["x"].startswith("first consumed by head (Linear(in_features=6))")


def test_a_functional_stand_in_needs_a_weight_of_the_layers_rank_the_model_holds():
    from dyncheck.infer.flow import functional_layer

    model = _Linear()
    assert functional_layer(model, "F.linear(..., w)").in_features == 5
    assert functional_layer(model, "torch.matmul(..., w)").in_features == 6
    assert functional_layer(model, "F.conv2d(..., filters, groups=3)").in_channels == 6
    assert functional_layer(model, "F.conv1d(..., filters)") is None  # a 4-D weight
    assert functional_layer(model, "F.linear(..., missing)") is None
    assert functional_layer(model, "F.conv2d(..., filters, groups=4)") is None  # 6 filters in 4 groups
    assert functional_layer(model, "head") is None


class _RawGRU(nn.Module):
    """A GRU over raw weights: its type says nothing of its input's width."""

    def __init__(self, size, hidden):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3 * hidden, size) / size ** 0.5)
        self.u = nn.Parameter(torch.randn(3 * hidden, hidden) / hidden ** 0.5)
        self.hidden = hidden

    def forward(self, x):
        h, steps = x.new_zeros(x.shape[0], self.hidden), []
        for t in range(x.shape[1]):
            r, z, n = (x[:, t] @ self.w.T).chunk(3, -1)
            hr, hz, hn = (h @ self.u.T).chunk(3, -1)
            r, z = torch.sigmoid(r + hr), torch.sigmoid(z + hz)
            h = (1 - z) * torch.tanh(n + r * hn) + z * h
            steps.append(h)
        return torch.stack(steps, 1), h


class RawGRUTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = _RawGRU(6, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x, _ = self.rnn(x)
        return self.head(self.norm(x))


def test_names_a_tuple_target_rebinds_to_a_layers_output_say_nothing_of_the_argument():
    # x, _ = self.rnn(x): x holds the recurrent layer's 16-wide steps at the norm, as x =
    # self.rnn(x)[0] would. Before, x was drawn as the norm's [batch, 16].
    target = resolved(RawGRUTagger)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 6)
    # its width read off x[:, t] @ self.w.T, its steps found by calling the model
    assert target.inferred_inputs["x"].startswith("first consumed by rnn (Linear(in_features=6)); a sequence of them")
    assert_callable(target, max_examples=10)


class OptionalProjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = None  # the widths agree: no projection
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        if self.proj is not None:
            x = self.proj(x)
        x = self.norm(x)
        return self.fc(x)


def test_a_slot_left_at_none_does_not_rebind_the_argument():
    # x = self.proj(x) under a guard, the slot None: x reaches the norm as it is.
    target = resolved(OptionalProjection)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 12)
    assert target.inferred_inputs["x"] == "first consumed by norm (LayerNorm([12]))"


def test_float_vectors_beside_a_padding_mask_are_drawn_as_sequences():
    target = resolved(FloatMasked)
    assert list(target.spec.inputs) == ["x", "mask"]
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 6)
    assert strategy_kind(target.spec.inputs["mask"]) == "attention_masks"
    # read from the attention its forward writes out (the mask's probe found the same before)
    assert target.inferred_inputs["x"].endswith("; a sequence, as forward attends over its steps (q @ k.transpose(-1, -2))")
    assert_callable(target, max_examples=20)
    # A mask over features fails on sequences: the input stays vectors, the mask at its default.
    target = resolved(FeatureMask)
    assert list(target.spec.inputs) == ["x"]
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 6)


class MaskedConv(nn.Module):
    """Token ids and Hugging Face's attention mask into a convolution three tokens wide."""

    def __init__(self):
        super().__init__()
        self.embed, self.conv = nn.Embedding(10, 4), nn.Conv1d(4, 2, 3)

    def forward(self, input_ids, attention_mask):
        e = self.embed(input_ids) * attention_mask[..., None]
        return self.conv(e.transpose(1, 2)).amax(-1)


def test_lengths_and_masks_beside_the_tokens_are_probed_with_them():
    # A padded batch's lengths (every sequence as long as the batch) and an attention mask
    # (all tokens) go with the token ids the probe draws, so such a model is probed too.
    from reference_models.text_cnn import MaskedTextCNN

    for model, shortest, reason in ((MaskedTextCNN, 4, "(2)"), (MaskedConv, 3, "(3)")):
        target = resolved(model)
        assert target.spec.dims["time"] == (shortest, shortest + 7), model
        assert f"Kernel size: {reason}" in target.inferred_dims["time"]
        assert_callable(target, max_examples=20)
    lengths = resolved(MaskedTextCNN).spec.inputs["lengths"]
    assert strategy_kind(lengths) == "sequence_lengths"


class TokenGRU(nn.Module):
    """Token ids into a GRU, which runs on a sequence of any length."""

    calls: list[int] = []

    def __init__(self):
        super().__init__()
        self.embed, self.rnn = nn.Embedding(10, 4), nn.GRU(4, 4, batch_first=True)

    def forward(self, tokens):
        TokenGRU.calls.append(tokens.shape[1])
        return self.rnn(self.embed(tokens))[0]


def test_a_sequence_that_runs_at_its_shortest_and_longest_is_left_alone():
    TokenGRU.calls.clear()
    target = resolved(TokenGRU)
    assert "time" not in dict(target.spec.dims) and target.inferred_dims == {}
    # at the shortest length, in eval and in train mode, then at the longest (a model built
    # for a longest length raises there); then a batch of two in train mode, and its first
    # sample alone (finite: a batch of 1 stays allowed)
    assert TokenGRU.calls == [1, 1, 8, 8, 1, 1]


def test_a_layer_over_the_input_reduced_over_an_axis_puts_the_axis_back():
    from reference_models.length_branch import LengthBranch

    target = resolved(LengthBranch)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 4)))
    assert target.inferred_inputs["x"] == (
        "first consumed by short (Linear(in_features=4)); it reaches short reduced over axis 1"
    )
    assert_callable(target, max_examples=20)


class _Stepped(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell, self.out = nn.Linear(8, 6), nn.Linear(6, 4)

    def step(self, x_t, h):
        return torch.tanh(self.cell(x_t) + 0.5 * h)


class TimeMajorLoop(_Stepped):
    # snntorch's and norse's tutorials: [time, batch, features], one step at a time
    def forward(self, data):
        h, out = 0.0, []
        for t in range(data.size(0)):
            h = self.step(data[t], h)
            out.append(self.out(h))
        return torch.stack(out)


class BatchFirstLoop(_Stepped):
    def forward(self, x):
        h = 0.0
        for t in range(x.shape[1]):
            h = torch.tanh(self.cell(x[:, t]) + 0.5 * h)
        return self.out(h)


class UnboundLoop(_Stepped):
    def forward(self, x):
        h = 0.0
        for x_t in x.unbind(1):
            h = torch.tanh(self.cell(x_t) + 0.5 * h)
        return self.out(h)


class RowsCounted(_Stepped):
    # counts axis 0, reads column t of x: not one step of an axis
    def forward(self, x):
        return sum(self.out(self.step(x[:, t:t + 1].expand(-1, 8), 0.0)) for t in range(x.size(0)))


class BoundByName(_Stepped):
    # labml's HyperLSTM: the loop's bound held in a name, n_steps, batch_size = x.shape[:2]
    def forward(self, x):
        n_steps, batch_size = x.shape[:2]
        h = x.new_zeros(batch_size, 6)
        for t in range(n_steps):
            h = self.step(x[t], h)
        return self.out(h)


class BoundBySize(_Stepped):
    def forward(self, x):
        steps = x.size(1)
        h = 0.0
        for t in range(steps):
            h = self.step(x[:, t], h)
        return self.out(h)


class ListCarried(_Stepped):
    # labml's FeedbackTransformer: earlier steps kept in a list the loop grows and reads
    def forward(self, x):
        outs, memory = [], []
        for x_t in torch.unbind(x, dim=0):
            h = self.step(x_t, torch.stack(memory).mean(0) if memory else 0.0)
            memory.append(h)
            outs.append(self.out(h))
        return torch.stack(outs, 1)


class ConcatenatedAndRead(_Stepped):
    # the steps so far gathered by concatenation and read back by the next step: a state
    def forward(self, x):
        memory = x.new_zeros(1, x.size(1), 6)
        for t in range(x.size(0)):
            h = self.step(x[t], memory.mean(0))
            memory = torch.cat([memory, h.unsqueeze(0)])
        return self.out(memory[1:])


class _KeptState(nn.Module):
    """A neuron that keeps its state on itself between calls (snntorch's init_hidden=True)."""

    def __init__(self):
        super().__init__()
        self.lin, self.mem = nn.Linear(8, 6), None

    def forward(self, x):
        self.mem = self.lin(x) if self.mem is None else 0.5 * self.mem + self.lin(x)
        return self.mem


class _Looked(nn.Module):
    """Keeps its last output to be looked at: no state."""

    def __init__(self):
        super().__init__()
        self.lin, self.last = nn.Linear(8, 6), None

    def forward(self, x):
        self.last = self.lin(x)
        return self.last


class StateInTheModule(nn.Module):
    def __init__(self, layer=_KeptState):
        super().__init__()
        self.layer = layer()

    def forward(self, x):
        self.layer.mem = None
        out = []
        for t in range(x.size(0)):
            out.append(self.layer(x[t]))
        return torch.stack(out, 1)


class LookedAtInALoop(StateInTheModule):
    def __init__(self):
        super().__init__(_Looked)


class ProjectedSteps(nn.Module):
    # SRU's shape: what a Linear made of the whole sequence, stepped through by the loop
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 6)

    def forward(self, x):
        U = self.lin(x)
        c = U.new_zeros(U.shape[1:])
        for t in range(x.size(0)):
            c = torch.sigmoid(U[t]) * c + U[t]
        return c


class BackwardSteps(ProjectedSteps):
    def forward(self, x):
        U = self.lin(x)
        c = U.new_zeros(U.shape[1:])
        length = U.size(0) if U.dim() == 3 else 1
        time_seq = range(length - 1, -1, -1)  # a backward direction's steps
        for t in time_seq:
            c = torch.sigmoid(U[t]) * c + U[t]
        return c


@pytest.mark.parametrize(("model", "shape", "note"), [
    (ProjectedSteps, ("time", "batch", 8), "; a sequence: a loop carrying a state steps through axis 0 (U[t])"),
    (BackwardSteps, ("time", "batch", 8), "; a sequence: a loop carrying a state steps through axis 0 (U[t])"),
    (TimeMajorLoop, ("time", "batch", 8), "; a loop hands cell one step of axis 0 at a time"),
    (StateInTheModule, ("time", "batch", 8), "; a loop hands layer one step of axis 0 at a time"),
    (ListCarried, ("time", "batch", 8), "; a loop hands cell one step of axis 0 at a time"),
    (ConcatenatedAndRead, ("time", "batch", 8), "; a loop hands cell one step of axis 0 at a time"),
    (BoundByName, ("time", "batch", 8), "; a loop hands cell one step of axis 0 at a time"),
    (BoundBySize, ("batch", "time", 8), "; a loop hands cell one step of axis 1 at a time"),
    (BatchFirstLoop, ("batch", "time", 8), "; a loop hands cell one step of axis 1 at a time"),
    (UnboundLoop, ("batch", "time", 8), "; a loop hands cell one step of axis 1 at a time"),
])
def test_a_loop_over_the_steps_of_an_axis_puts_the_axis_back(model, shape, note):
    # Read as vectors, a time-major loop walked the batch as time: batch_invariance reported
    # samples coupled that a sequence keeps apart.
    target = resolved(model)
    same(target.spec.inputs[next(iter(target.spec.inputs))], dst.tensors(shape=shape))
    assert next(iter(target.inferred_inputs.values())).endswith(note)
    assert_callable(target, max_examples=10)


class PerSampleLoop(_Stepped):
    # each sample of the batch in turn, nothing carried between them: not steps
    def forward(self, x):
        return torch.stack([self.out(self.step(x[i], 0.0)) for i in range(x.size(0))] + [])


class PerSampleStatement(_Stepped):
    def forward(self, x):
        outs = []
        for i in range(x.size(0)):
            outs.append(self.out(self.step(x[i], 0.0)))
        return torch.stack(outs)


class PerSampleSearch(_Stepped):
    # a search per sample (beam search's generate): each sample's state starts anew, and
    # only the inner loop over the steps carries it
    def forward(self, x):
        outs = []
        for i in range(x.size(0)):
            h = self.step(x[i], 0.0)
            for _ in range(3):
                h = torch.tanh(h + 0.1)
            outs.append(self.out(h))
        return torch.stack(outs)


class PerSampleConcatenated(_Stepped):
    # each sample's row gathered by a running concatenation, read nowhere else: no state
    def forward(self, x):
        out = x.new_zeros(0, 4)
        for i in range(x.size(0)):
            out = torch.cat([out, self.out(self.step(x[i], 0.0)).unsqueeze(0)], dim=0)
        return out


class PerSampleGathered(_Stepped):
    # the rows gathered the `is None` way, into a list by +, and counted: none is a state
    def forward(self, x):
        out, rows, n = None, [], 0
        for i in range(x.size(0)):
            y = self.out(self.step(x[i], 0.0)).unsqueeze(0)
            out = y if out is None else torch.cat([out, y])
            rows = rows + [y]
            n += 1
        return out + torch.cat(rows) / n


class ProjectedPerSample(_Stepped):
    # each sample's row of what a layer made of the batch, normalised one by one and counted
    def forward(self, x):
        u, outs, n = self.cell(x), [], 0
        for i in range(x.size(0)):
            outs.append(torch.nn.functional.normalize(u[i], dim=0))
            n = n + 1
        return self.out(torch.stack(outs))


@pytest.mark.parametrize("model", [
    PerSampleLoop, PerSampleStatement, PerSampleSearch, PerSampleConcatenated, PerSampleGathered, ProjectedPerSample,
])
def test_a_loop_over_the_samples_that_carries_nothing_is_not_one_over_steps(model):
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))


@pytest.mark.parametrize(("body", "carried"), [
    ("h = cell(x[t], h)", True),
    ("spk, mem = lif(fc(x[t]), mem)\nouts.append(spk)", True),
    ("h += x[t]", True),
    ("if t == 0:\n    h = start\nh = cell(x[t], h)", True),  # h comes from the step before when t > 0
    ("for k in range(3):\n    h = f(x[t])\ny = g(h)", True),  # the inner loop may not run
    ("outs.append(out(x[i]))", False),
    ("h = enc(x[i])\nfor _ in range(3):\n    h = cell(h)\nouts.append(h)", False),
    ("if flag:\n    h = a(x[i])\nelse:\n    h = b(x[i])\nouts.append(h)", False),
    ("with torch.no_grad():\n    h = enc(x[i])\nouts.append(h)", False),
])
def test_a_loop_carries_a_state_when_it_reads_a_name_before_assigning_it(body, carried):
    import ast

    from dyncheck.infer.flow import _carries_state

    assert _carries_state(ast.parse(body).body) is carried


def test_a_counter_used_at_another_place_is_not_a_step():
    target = resolved(RowsCounted)
    assert "loop" not in target.inferred_inputs["x"] and "time" not in target.spec.inputs["x"].__repr__()


class HeldScales(nn.Module):
    SCALES = (1.0, 2.0, 4.0, 8.0)

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.sizes = [3, 5]

    def forward(self, x, scale, which: int):
        return self.fc(x * self.SCALES[scale])[:, : self.sizes[which]]


def test_an_index_into_a_tuple_the_model_holds_is_drawn_up_to_its_last():
    target = resolved(HeldScales)
    same(target.spec.inputs["scale"], dst.controls(dtype=int, min_value=0, max_value=3))
    same(target.spec.inputs["which"], dst.controls(dtype=int, min_value=0, max_value=1))
    assert target.inferred_inputs["scale"] == "an index into SCALES (4 values) in forward: each, 0 to 3"
    assert target.inferred_inputs["which"] == "annotated int, an index into sizes (2 values) in forward: each, 0 to 1"


class _RawCell(nn.Module):
    """A recurrent layer over raw weights (norse's LSNN): its own code gives no input shape."""

    def __init__(self, inputs, hidden):
        super().__init__()
        self.w_in = nn.Parameter(torch.randn(hidden, inputs) / inputs)
        self.w_rec = nn.Parameter(torch.randn(hidden, hidden) / hidden)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.w_rec.shape[0])
        return torch.tanh(nn.functional.linear(x, self.w_in) + nn.functional.linear(h, self.w_rec)), h


class ReadoutAfterRawCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.rec = _RawCell(8, 6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        z, _ = self.rec(x)
        return self.fc(z)


def test_a_layer_that_takes_what_another_made_of_the_input_says_nothing_of_it():
    # fc reads z, not x: taken as x's width (6), every check crashed on the correct model
    target = resolved(ReadoutAfterRawCell)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    # read off F.linear(x, self.w_in) (before, found by calling the model at its sizes)
    assert target.inferred_inputs["x"] == "first consumed by rec (Linear(in_features=8))"


def test_ids_that_pick_rows_of_a_layers_weights_are_one_index_per_sample():
    from reference_models.adapter_mixture import AdapterMixture

    target = resolved(AdapterMixture)
    same(target.spec.inputs["adapter_ids"], dst.tensors(shape=("batch",), dtype=torch.long, min_value=0, max_value=2))
    assert target.inferred_inputs["adapter_ids"] == (
        "it picks rows of l1.A (l1.A[adapter_ids], 3 rows): one index per sample, 0 to 2"
    )
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 12)))


def test_a_loop_over_value_and_module_pairs_reads_each_arguments_own_module():
    from reference_models.tabular import TokenizedTabular

    target = resolved(TokenizedTabular)
    same(target.spec.inputs["x_cont"], dst.tensors(shape=("batch", 5)))
    assert target.inferred_inputs["x_cont"] == "first consumed by cont_tokens (Linear(in_features=5))"
    # each column by its own Embedding inside the custom layer: [batch, 2], below the smallest vocabulary
    same(target.spec.inputs["x_cat"], dst.tensors(shape=("batch", 2), dtype=torch.long, min_value=0, max_value=2))
    assert target.inferred_inputs["x_cat"] == (
        "first consumed by cat_tokens (_CategoricalTokens: each column by its own member of embeddings (2 Embeddings), "
        "integer categories below the smallest vocabulary (3))"
    )


def test_arguments_split_evenly_are_split_as_the_model_runs_them():
    from reference_models.carried_memory import CarriedMemory

    target = resolved(CarriedMemory)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    same(target.spec.inputs["memory"], dst.tensors(shape=("batch", 16)))
    assert "16 of 24 features: at an even split the model raised RuntimeError" in target.inferred_inputs["memory"]


class LossInside(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 7))

    def forward(self, x, labels):
        logits = self.net(x)
        return logits, nn.functional.cross_entropy(logits, labels)


def test_targets_of_a_loss_inside_forward_are_one_class_per_sample():
    # no layer takes them: refused before, with a Spec the user had to write
    target = resolved(LossInside)
    same(target.spec.inputs["labels"], dst.tensors(shape=("batch",), dtype=torch.long, min_value=0, max_value=6))
    assert target.inferred_inputs["labels"].endswith("(called beside the other inputs with 6 it ran, with 7 it raised)")
    from reference_models.smoothed_loss import LabelSmoothedClassifier

    smoothed = resolved(LabelSmoothedClassifier)
    same(smoothed.spec.inputs["targets"], dst.tensors(shape=("batch",), dtype=torch.long, min_value=0, max_value=4))


class PaddedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ReflectionPad1d(1)
        self.conv = nn.Conv1d(5, 4, 3)

    def forward(self, x):
        return self.conv(self.pad(x))


def test_a_layer_after_one_that_gives_no_shape_is_read_where_the_model_runs_on_it():
    # only the layers the input reaches as itself counted, and pad gives no shape: refused
    target = resolved(PaddedConv)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 5, "length")))
    assert target.inferred_inputs["x"].startswith(
        "first consumed by conv (Conv1d(in_channels=5)); read where a later layer takes what pad made of it"
    )


class MemoryFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate, self.write = nn.Linear(24, 16), nn.Linear(24, 16)

    def forward(self, memory, x):
        z = torch.cat([x, memory], -1)
        g = torch.sigmoid(self.gate(z))
        return g * memory + (1 - g) * torch.tanh(self.write(z))


class LazyReadout(MemoryFirst):
    def __init__(self):
        super().__init__()
        self.read = nn.LazyLinear(4)  # no shape until its first call

    def forward(self, memory, x):
        return self.read(super().forward(memory, x))


def test_the_split_probe_reads_no_shape_of_a_lazy_parameter():
    # a lazy layer's parameter refuses .shape: the split probe raised inside resolution
    target = resolved(LazyReadout)
    same(target.spec.inputs["memory"], dst.tensors(shape=("batch", 16)))


def test_a_split_as_wide_as_a_layer_is_tried_before_one_a_width_of_one_broadcasts_in():
    # tried from 1 up, memory [batch, 1] broadcast against the gate and won
    target = resolved(MemoryFirst)
    same(target.spec.inputs["memory"], dst.tensors(shape=("batch", 16)))
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))


def test_attention_written_out_in_forward_makes_its_input_a_sequence():
    from reference_models.topk_attention import TopKAttention

    target = resolved(TopKAttention)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    assert target.inferred_inputs["x"].endswith(
        "; a sequence, as forward attends over its steps (q @ keys.transpose(-2, -1))"
    )


class Similarity(nn.Module):
    # a similarity across the batch (a contrastive loss's logits): not attention over steps
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        z = self.fc(x)
        return z @ z.t()


def test_a_similarity_across_the_batch_is_not_attention_over_steps():
    same(resolved(Similarity).spec.inputs["x"], dst.tensors(shape=("batch", 8)))


class PooledThenNamed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        pooled = torch.max(x, dim=-2).values
        return self.fc(pooled)


class KeptAxis(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(x.mean(1, keepdim=True))


def test_a_reduction_is_followed_through_a_name_and_one_that_keeps_its_axis_is_not_one():
    target = resolved(PooledThenNamed)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 5)))
    assert target.inferred_inputs["x"].endswith("; it reaches fc reduced over axis -2")
    kept = resolved(KeptAxis)
    assert "reduced" not in kept.inferred_inputs["x"]


def test_an_argument_annotated_as_a_list_of_tensors_is_a_list_of_sequences():
    from reference_models.sequence_list import SequenceListClassifier

    target = resolved(SequenceListClassifier)
    same(target.spec.inputs["seqs"], dst.sequence_lists(feature_shape=(3,)))
    assert target.inferred_inputs["seqs"] == (
        "first consumed by lstm (LSTM(input_size=3, batch_first=False)); "
        "annotated as a list of tensors: one sequence of its own length per sample"
    )
    assert_callable(target, max_examples=20)


def test_an_argument_named_like_a_control_that_a_layer_is_handed_is_features():
    from reference_models.film import FiLMConditioned

    target = resolved(FiLMConditioned)
    same(target.spec.inputs["condition"], dst.tensors(shape=("batch", 4)))
    assert target.inferred_inputs["condition"].startswith("first consumed by film (Linear(in_features=4))")
    assert_callable(target)

    class Gated(nn.Module):  # compared with a threshold: still a control
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, cond):
            return self.fc(x) if cond > 0.5 else self.fc(x).detach()

    assert strategy_kind(resolved(Gated).spec.inputs["cond"]) == "controls"

    class Flipped(nn.Module):  # handed on to a layer of the user's own, which branches on it
        def __init__(self):
            super().__init__()
            self.block = _FlipBlock()

        def forward(self, x, flag):
            return self.block(x, flag)

    assert strategy_kind(resolved(Flipped).spec.inputs["flag"]) == "controls"


class _FlipBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x, flag):
        y = self.fc(x)
        if flag:
            y = -y
        return y


def test_a_count_beside_vectors_does_not_stop_the_probe_for_sequences():
    from reference_models.unrolled_cell import SteppedGRU

    target = resolved(SteppedGRU)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 6)))
    assert target.inferred_inputs["x"].endswith(
        "; a sequence of them: called on [2, 6] it raised RuntimeError (input has inconsistent input_size: got 2 "
        "expected 6), on [2, 3, 6] it ran"
    ), target.inferred_inputs["x"]
    assert strategy_kind(target.spec.inputs["num_steps"]) == "controls"
    assert_callable(target)


def test_an_int_that_ends_a_slice_of_a_weight_runs_every_width():
    from reference_models.elastic_width import ElasticMLP

    target = resolved(ElasticMLP)
    same(target.spec.inputs["active"], dst.controls(dtype=int, min_value=0, max_value=12))
    assert target.inferred_inputs["active"] == (
        "a count: used as self.w1[:active] in forward, slicing self.w2 (12 along it); drawn as ints from 0 to 12"
    )
    assert_callable(target)

    class Clamped(ElasticMLP):  # the slice's end computed from the argument
        def forward(self, x, active_channels: int):
            k = min(max(active_channels, 1), len(self.b1))
            h = torch.relu(torch.nn.functional.linear(x, self.w1[:k, :], self.b1[:k]))
            return torch.nn.functional.linear(h, self.w2[:, :k], self.b2)

    target = resolved(Clamped)
    same(target.spec.inputs["active_channels"], dst.controls(dtype=int, min_value=0, max_value=12))
    assert target.inferred_inputs["active_channels"].startswith("annotated int, the end of a slice of self.w2")
    assert_callable(target)

    class Decoder(nn.Module):  # a loop count that also slices a position table: still 0 to 4
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.zeros(512, 3))
            self.fc = nn.Linear(3, 3)

        def forward(self, x, steps: int):
            pos = self.pos[:steps]
            for t in range(steps):
                x = self.fc(x + pos[t])
            return x

    same(resolved(Decoder).spec.inputs["steps"], dst.controls(dtype=int, min_value=0, max_value=4))


def test_a_model_that_gives_nan_on_one_sample_in_training_gets_batches_of_two():
    from reference_models.running_norm import RunningNormClassifier, UnbiasedNormClassifier

    target = resolved(UnbiasedNormClassifier)
    assert dict(target.spec.dims)["batch"] == (2, 4)
    assert target.inferred_dims["batch"] == (
        "in train mode a sample alone gave NaN or inf where in a batch of 2 it did not: statistics over the "
        "batch (a variance of one sample)"
    )
    assert_callable(target)
    # the biased variance of one sample is 0: finite, and a batch of 1 is drawn
    assert "batch" not in resolved(RunningNormClassifier).inferred_dims
    assert "batch" not in resolved(UnbiasedNormClassifier, dims={"batch": (1, 3)}).inferred_dims


def test_a_list_the_model_stacks_is_drawn_of_one_length():
    from reference_models.sequence_list import StackedSequenceTagger

    target = resolved(StackedSequenceTagger)
    same(target.spec.inputs["seqs"], dst.sequence_lists(feature_shape=(3,), equal_lengths=True))
    assert target.inferred_inputs["seqs"] == (
        "first consumed by gru (GRU(input_size=3, batch_first=True)); annotated as a list of tensors: one "
        "sequence per sample; every sequence of one length (equal_lengths=True): on sequences "
        "of lengths 3 and 2 it raised RuntimeError (stack expects each tensor to be equal size, but got [3, 3] at "
        "entry 0 and [2, 3] at entry 1), on two of length 3 it ran"
    )
    assert_callable(target, max_examples=20)


class _StackedBeside(nn.Module):
    """A stacked list beside a per-sample control vector."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.scale = nn.Linear(2, 4)

    def forward(self, seqs: list[torch.Tensor], style: torch.Tensor):
        _, h = self.gru(torch.stack(seqs))
        return h[-1] * self.scale(style)


class _StackedReversed(nn.Module):
    """A stacked list beside a flag, a control value."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)

    def forward(self, seqs: list[torch.Tensor], reverse: bool):
        x = torch.stack(seqs)
        return self.gru(x.flip(1) if reverse else x)[1][-1]


def test_a_stacked_list_beside_another_batch_is_drawn_of_one_length():
    target = resolved(_StackedBeside)
    assert strategy_arguments(target.spec.inputs["seqs"]).get("equal_lengths") is True
    assert_callable(target, max_examples=10)
    target = resolved(_StackedReversed)  # beside a control value, called with its probe value
    assert strategy_arguments(target.spec.inputs["seqs"]).get("equal_lengths") is True
    assert_callable(target, max_examples=10)


class _Columns(nn.Module):
    def __init__(self, layers="embedding"):
        super().__init__()
        make = (lambda n: nn.Embedding(n, 2)) if layers == "embedding" else (lambda n: nn.Linear(1, 2))
        self.embeds = nn.ModuleList(make(n) for n in (6, 4, 9))
        self.head = nn.Linear(6, 2)


class ColumnsInALoop(_Columns):
    def forward(self, x_cat):
        parts = []
        for i, e in enumerate(self.embeds):
            parts.append(e(x_cat[:, i]))
        return self.head(torch.cat(parts, 1))


class ColumnsInAComprehension(_Columns):
    def forward(self, x_cat):
        return self.head(torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], 1))


class ColumnsByIndex(_Columns):
    def forward(self, x_cat):
        return self.head(torch.cat([self.embeds[i](x_cat[:, i]) for i in range(len(self.embeds))], 1))


class ColumnsIntoLinears(_Columns):
    def __init__(self):
        super().__init__(layers="linear")

    def forward(self, x):
        return self.head(torch.cat([e(x[:, i:i + 1]) for i, e in enumerate(self.embeds)], 1))


@pytest.mark.parametrize("model", [ColumnsInALoop, ColumnsInAComprehension, ColumnsByIndex])
def test_columns_embedded_each_by_its_own_member_are_integer_categories(model):
    # fastai's tabular model: the comprehension's members were not followed, and x_cat was drawn
    # as the head's float features
    target = resolved(model)
    same(target.spec.inputs["x_cat"], dst.tensors(shape=("batch", 3), dtype=torch.long, min_value=0, max_value=3))
    assert target.inferred_inputs["x_cat"] == (
        "each of its columns is embedded by its own member of embeds (3 Embeddings): integer categories, one "
        "column a member, each below the smallest vocabulary (4)"
    )
    assert_callable(target, max_examples=20)


class BagsInAComprehension(nn.Module):
    """DLRM's sparse features: field k of each sample a bag of ids, into its own EmbeddingBag."""

    def __init__(self):
        super().__init__()
        self.embs = nn.ModuleList(nn.EmbeddingBag(n, 2, mode="sum") for n in (6, 4, 9))
        self.head = nn.Linear(6, 2)

    def forward(self, sparse):
        return self.head(torch.cat([emb(sparse[:, k]) for k, emb in enumerate(self.embs)], 1))


def test_columns_of_bags_each_into_its_own_embedding_bag_are_drawn_with_a_bag_axis():
    # Drawn [batch, time] as Embeddings' columns are, each field was one id per sample, and
    # every check raised "offsets has to be a 1D Tensor but got None".
    target = resolved(BagsInAComprehension)
    same(
        target.spec.inputs["sparse"],
        dst.tensors(shape=("batch", 3, "time"), dtype=torch.long, min_value=0, max_value=3),
    )
    assert target.inferred_inputs["sparse"] == (
        "each of its columns is a bag of ids for its own member of embs (3 EmbeddingBags): [batch, 3, time], each "
        "id below the smallest vocabulary (4)"
    )
    assert_callable(target, max_examples=20)


class FieldsShiftedByABuffer(nn.Module):
    """A factorization machine's fields in one shared table, each shifted to its own rows."""

    def __init__(self, field_dims=(20, 5, 10)):
        super().__init__()
        self.emb = nn.Embedding(sum(field_dims), 4)
        self.register_buffer("offs", torch.tensor([0, 20, 25]))
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        e = self.emb(x + self.offs)
        return self.fc(0.5 * (e.sum(1) ** 2 - (e ** 2).sum(1)))


class FieldsShiftedAsPytorchFm(nn.Module):
    """pytorch-fm's FeaturesEmbedding: the offsets an array on the module, not a buffer."""

    def __init__(self, field_dims=(20, 5, 10)):
        super().__init__()
        self.embedding = nn.Embedding(sum(field_dims), 4)
        self.offsets = (0, 20, 25)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        x = x + x.new_tensor(self.offsets).unsqueeze(0)
        return self.fc(self.embedding(x).sum(1))


@pytest.mark.parametrize(("model", "table"), [(FieldsShiftedByABuffer, "emb"), (FieldsShiftedAsPytorchFm, "embedding")])
def test_fields_shifted_into_one_shared_table_are_drawn_one_column_a_field(model, table):
    # Drawn [batch, time] below the whole table's 35 rows: a broadcast error where time was
    # not 3, an IndexError where a field's id went past its part of the table.
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 3), dtype=torch.long, min_value=0, max_value=4))
    assert target.inferred_inputs["x"] == (
        f"3 fields, each shifted to its own rows of {table} by the model's offsets [0, 20, 25]: integers below the "
        "smallest field's 5 rows"
    )
    assert_callable(target, max_examples=10)


class OneFieldShifted(nn.Module):
    """One field's ids [batch, time] shifted into its rows by one of the offsets: a pick, not
    every field."""

    def __init__(self):
        super().__init__()
        self.offsets = (0, 10, 30)
        self.emb, self.rnn = nn.Embedding(40, 4), nn.GRU(4, 4, batch_first=True)

    def forward(self, x):
        return self.rnn(self.emb(x + self.offsets[1]))[0]


def test_one_offset_picked_from_the_array_is_not_read_as_every_fields():
    target = resolved(OneFieldShifted)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time")


class ColumnsBesideContinuous(_Columns):
    """Categorical columns first, continuous ones after them in the same tensor."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        parts = [self.embeds[i](x[:, i].long()) for i in range(len(self.embeds))]
        return self.head(torch.cat([*parts, x[:, 3:].float()], 1))


class ColumnsFromOne(_Columns):
    def forward(self, x):
        return self.head(torch.cat([e(x[:, i]) for i, e in enumerate(self.embeds, 1)], 1))


class ColumnsCast(_Columns):
    def forward(self, x_cat):
        return self.head(torch.cat([e(x_cat[..., i].long()) for i, e in enumerate(self.embeds)], 1))


def test_columns_read_otherwise_too_are_not_only_categories():
    # continuous columns beside them (their width is not the members'), or enumerate from 1
    for model in (ColumnsBesideContinuous, ColumnsFromOne):
        assert "embedded by its own member" not in resolved(model).inferred_inputs["x"]
    target = resolved(ColumnsCast)  # cast to long, or x_cat[..., i]: the same columns
    same(target.spec.inputs["x_cat"], dst.tensors(shape=("batch", 3), dtype=torch.long, min_value=0, max_value=3))


def test_columns_into_other_layers_are_not_categories():
    assert strategy_arguments(resolved(ColumnsIntoLinears).spec.inputs["x"]).get("dtype", torch.float32) == torch.float32


def test_a_series_whose_channels_a_broadcast_parameter_fixes_is_tried_at_its_size():
    # vectors and sequences of 12 raise at RevIN's affine weight, and a signal [2, 12, 5] too;
    # [2, 12, 4] raises, so 3 is the only size
    from reference_models.revin_linear import RevINLinear

    target = resolved(RevINLinear)
    # 3, not a range: at 1 it runs too, broadcast against the weight of 3
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 12, 3)))
    assert target.inferred_inputs["x"].endswith("as sequences too, on [2, 12, 3] it ran")
    assert "length" not in target.spec.dims
    assert_callable(target, max_examples=20)


class MaskOnAnOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x, out_mask):
        return self.fc(x) * out_mask  # the Linear's output [batch, 2], not x's shape


def test_a_mask_multiplied_into_values_of_an_input_gets_its_shape():
    from reference_models.nbeats import NBeats

    target = resolved(NBeats)
    same(target.spec.inputs["input_mask"], dst.tensors(shape=("batch", 8), min_value=0.0, max_value=1.0))
    assert target.inferred_inputs["input_mask"] == (
        "a mask no layer consumes, multiplied into values computed from x ((residuals - backcast) * input_mask): "
        "x's shape, drawn from 0 to 1"
    )
    assert_callable(target, max_examples=10)
    # a mask on a layer's output: x's shape does not run, refused as before
    with pytest.raises(TargetError, match="cannot infer forward argument 'out_mask'"):
        resolved(MaskOnAnOutput)


class _ChannelsLastConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x.permute(0, 2, 1)).transpose(1, 2)


class ConvInsideASubmodule(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = _ChannelsLastConv()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.embed(x))


def test_a_conv_over_an_input_permuted_inside_a_submodule_reads_it_channels_last():
    target = resolved(ConvInsideASubmodule)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "length", 3)))
    assert target.inferred_inputs["x"] == (
        "first consumed by embed (Conv1d(in_channels=3), reached through transpose(1, 2) in _ChannelsLastConv)"
    )
    assert_callable(target)


def test_values_and_time_features_added_step_by_step_share_their_time_axis():
    from reference_models.time_features import TimeFeatureForecaster

    target = resolved(TimeFeatureForecaster)
    for values, features in (("x_enc", "x_mark_enc"), ("x_dec", "x_mark_dec")):
        same(target.spec.inputs[values], dst.tensors(shape=("batch", "time", 3)))
        same(target.spec.inputs[features], dst.tensors(shape=("batch", "time", 4)))
        assert "its length is the time of the inputs beside it: drawn apart, at length 3 and time 2 it raised" in (
            target.inferred_inputs[values]
        )
    assert "length" not in target.spec.dims
    assert_callable(target)


class IgnoredMask(nn.Module):
    """A forecaster whose forward takes mask=None and never reads it."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.out = nn.Linear(8, 3)

    def forward(self, x, mask=None):
        return self.out(self.encoder(x))


def test_an_optional_mask_forward_ignores_stays_at_its_default():
    # a mask of all True gives the plain output, but so does one of padding only: ignored
    target = resolved(IgnoredMask)
    assert set(target.spec.inputs) == {"x"}


class SharedSignature(nn.Module):
    """The Time-Series-Library signature, of which this forecaster reads x_enc alone."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        return self.fc(x_enc)


def test_an_argument_forward_never_reads_is_passed_as_none():
    target = resolved(SharedSignature)
    for name in ("x_mark_enc", "x_dec", "x_mark_dec"):
        same(target.spec.inputs[name], st.none())
        assert target.inferred_inputs[name] == "forward never reads it: passed as None"
    assert_callable(target)


class StackedImages(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, images: list[torch.Tensor]):
        return self.fc(torch.stack(images))


class StackedUnion(StackedImages):
    """vit-pytorch's NaViT annotates ``List[Tensor] | List[List[Tensor]]``."""

    def forward(self, images: list[torch.Tensor] | list[list[torch.Tensor]]):
        return super().forward(images)


@pytest.mark.parametrize("model", [StackedImages, StackedUnion])
def test_a_list_of_tensors_a_layer_takes_as_one_batch_of_vectors_says_what_to_write(model):
    # The union was not read: NaViT's images were drawn [batch, 16], and every check crashed.
    with pytest.raises(TargetError) as excinfo:
        resolved(model)
    assert "annotated as a list of tensors; its consumer takes ['batch', 6], not sequences" in str(excinfo.value)
    assert "hypothesis.strategies.lists(dyncheck.strategies.tensors(shape=...))" in str(excinfo.value)


class Paired(nn.Module):
    """Two inputs side by side into one Linear, as a pair classifier or a critic over
    (state, action) takes them."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x, y):
        return self.fc(torch.cat([x, y], dim=-1))


class UnevenPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9, 3)

    def forward(self, x, y):
        return self.fc(torch.cat((x, y), 1))


def test_arguments_concatenated_into_one_layer_share_its_features():
    target = resolved(Paired)
    for name, other in (("x", "y"), ("y", "x")):
        same(target.spec.inputs[name], dst.tensors(shape=("batch", 5)))
        assert target.inferred_inputs[name] == (
            f"first consumed by fc (Linear(in_features=10)); concatenated with {other} along the last axis: "
            "an even share, 5 of 10 features (give other sizes with Spec(inputs=...))"
        )
    assert_callable(target)
    # 9 features do not split evenly, and any split runs: the spec says which is meant
    with pytest.raises(TargetError) as excinfo:
        resolved(UnevenPair)
    assert str(excinfo.value).endswith(
        "UnevenPair: cannot infer forward argument 'x' of UnevenPair (concatenated with y along the last axis "
        "into a layer of 9 features, which do not split evenly between 2); write dyncheck.Spec(UnevenPair, "
        "inputs={'x': tensors(shape=('batch', A)), 'y': tensors(shape=('batch', 9 - A))}) with the sizes meant, "
        "adding up to 9"
    )


class LabelledPair(nn.Module):
    """Two arguments and a class embedding side by side, the embedding held in a name first."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.head = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Dropout(0.1))
        self.fc = nn.Linear(20, 3)

    def forward(self, x, y, label, z):
        c = self.emb(label)
        h = torch.cat([x, c, y, self.head(z)], -1)
        return self.fc(h)


class NormedPair(nn.Module):
    """Arguments through layers that keep their width (a norm, dropout) before the concatenation."""

    def __init__(self):
        super().__init__()
        self.norm, self.drop, self.fc = nn.LayerNorm(6), nn.Dropout(0.1), nn.Linear(12, 3)

    def forward(self, a, b):
        a = self.norm(a)
        h = self.drop(b)
        return self.fc(torch.cat([a, h], -1))


class TimestepUNet(nn.Module):
    """One level of a diffusion U-Net: the timestep's embedding added to the features, a
    stride-2 convolution down and a transposed one up, so only even sizes run."""

    def __init__(self):
        super().__init__()
        from reference_models.conditional import SinusoidalPosEmb

        self.time_mlp = nn.Sequential(SinusoidalPosEmb(16), nn.Linear(16, 8), nn.SiLU())
        self.inc, self.down = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up, self.out = nn.ConvTranspose2d(16, 8, 2, stride=2), nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x, t):
        h = self.inc(x) + self.time_mlp(t)[:, :, None, None]
        return self.out(torch.cat([self.up(torch.relu(self.down(h))), h], 1))


class ActivatedPart(nn.Module):
    """A part of the concatenation through an activation function: F.silu(self.t_proj(t))."""

    def __init__(self):
        super().__init__()
        self.t_proj = nn.Linear(4, 10)
        self.net = nn.Linear(16, 2)

    def forward(self, x, t):
        temb = torch.nn.functional.silu(self.t_proj(t))
        return self.net(torch.cat([x, torch.tanh(temb)], dim=-1))


def test_a_part_through_an_activation_function_keeps_its_layers_width():
    # Read as a part of no known width, x took the whole 16 and every check crashed.
    target = resolved(ActivatedPart)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 6)))
    assert target.inferred_inputs["x"].endswith(
        "concatenated with self.t_proj(...) (10 features) along the last axis: the other 6 of 16"
    )
    assert_callable(target)


def test_what_a_submodule_returns_beside_arguments_takes_its_width_of_the_layer():
    from reference_models.conditional import ConditionalGenerator, TimestepDenoiser

    target = resolved(ConditionalGenerator)
    same(target.spec.inputs["noise"], dst.tensors(shape=("batch", 16)))
    assert target.inferred_inputs["noise"] == (
        "first consumed by model (Linear(in_features=26)); concatenated with self.label_emb(...) (10 features) "
        "along the last axis: the other 16 of 26"
    )
    # ids into an Embedding are drawn [batch, time] from the layer; the concatenation with a
    # [batch, 16] noise raises on that, and a call shows one label per sample runs
    same(target.spec.inputs["labels"], dst.tensors(shape=("batch",), dtype=torch.int64, min_value=0, max_value=9))
    assert target.inferred_inputs["labels"].endswith(
        "; one value per sample: on ['batch', 'time'] the model raised RuntimeError (Tensors must have same number "
        "of dimensions: got 3 and 2), on ['batch'] it ran"
    )
    assert_callable(target)
    # a Sequential's width is its last Linear's (the activation after it keeps it); the
    # timestep runs only as one number per sample (a sinusoidal embedding makes its features)
    target = resolved(TimestepDenoiser)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 6)))
    assert "concatenated with self.time_mlp(...) (8 features) along the last axis: the other 6 of 14" in (
        target.inferred_inputs["x"]
    )
    same(target.spec.inputs["time"], dst.tensors(shape=("batch",)))
    assert "one value per sample: on ['batch', 8] the model raised RuntimeError" in target.inferred_inputs["time"]
    assert_callable(target)
    # a timestep and a class label both inferred with an axis more: neither alone runs with
    # a batch of 3 (at 2 the label's [batch, time] broadcast against the batch), both do
    from reference_models.timestep_embedding import GuidedDenoiser

    target = resolved(GuidedDenoiser)
    same(target.spec.inputs["t"], dst.tensors(shape=("batch",)))
    same(target.spec.inputs["y"], dst.tensors(shape=("batch",), dtype=torch.int64, min_value=0, max_value=4))
    assert "; one value per sample: on ['batch', 8] the model raised RuntimeError" in target.inferred_inputs["t"]
    assert target.inferred_inputs["t"].endswith(", on ['batch'] (and y so) it ran")
    assert target.inferred_inputs["y"].endswith(", on ['batch'] (and t so) it ran")
    assert_callable(target)
    # the sizes a U-Net takes are found once the timestep is one value per sample: at no
    # size did the model run before
    target = resolved(TimestepUNet)
    same(target.spec.inputs["t"], dst.tensors(shape=("batch",)))
    assert "height" in target.inferred_dims and repr(target.spec.dims["height"]).startswith("sampled_from([2, 4, 6")
    assert_callable(target)
    # a name holding a submodule's output, another submodule called in place, two arguments
    # sharing what is left evenly: 20 - 4 - 6 = 10, 5 each
    target = resolved(LabelledPair, inputs={"label": dst.tensors(shape=("batch",), dtype=torch.int64, max_value=4)})
    for name, other in (("x", "y"), ("y", "x")):
        same(target.spec.inputs[name], dst.tensors(shape=("batch", 5)))
        assert target.inferred_inputs[name].endswith(
            f"concatenated with {other}, self.emb(...) (4 features), self.head(...) (6 features) along the last "
            "axis: an even share, 5 of the other 10 of 20"
        )
    assert_callable(target)
    # a part through a layer that keeps its width is the argument itself
    target = resolved(NormedPair)
    same(target.spec.inputs["b"], dst.tensors(shape=("batch", 6)))
    assert target.inferred_inputs["b"].endswith("concatenated with a along the last axis: an even share, 6 of 12 "
                                                 "features (give other sizes with Spec(inputs=...))")


class PaddingMarkedSets(nn.Module):
    """A set model whose required mask is True at padding (``masked_fill`` zeroes it)."""

    def __init__(self):
        super().__init__()
        self.phi, self.rho = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x, node_mask):
        h = self.phi(x).masked_fill(node_mask.unsqueeze(-1), 0.0)
        return self.rho(h.sum(1) / (~node_mask).sum(1, keepdim=True).clamp(min=1))


class HiddenPositions(nn.Module):
    """A masked-feature model (MAE, BERT's masked positions): the mask says which positions
    a learned token replaces, not where padding is."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Linear(4, 8), nn.Linear(8, 3)
        self.token = nn.Parameter(torch.zeros(8))

    def forward(self, x, mask):
        h = torch.where(mask.unsqueeze(-1), self.token, self.embed(x))
        return self.head(h.mean(1))


def test_a_required_mask_multiplied_into_features_is_the_padding_of_sets():
    from reference_models.buggy.set_mean_over_padding import Model as MeanOverPadding
    from reference_models.deep_sets import DeepSets

    target = resolved(DeepSets)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 4)))
    assert target.inferred_inputs["x"].endswith("; a sequence [batch, time, 4], the steps mask marks")
    same(target.spec.inputs["mask"], dst.attention_masks(dtype=torch.bool))
    assert target.inferred_inputs["mask"] == (
        "a required mask: the padding mask of x (bool, True at real elements, padding on the right); read as "
        "features the model raised, over the steps of x it ran, and 3 steps padded to 5 gave the output of the 3 alone"
    )
    assert_callable(target)
    # the polarity is the one under which padding changes nothing: True at padding here
    target = resolved(PaddingMarkedSets)
    same(target.spec.inputs["node_mask"], dst.attention_masks(dtype=torch.bool, marks="padding"))
    assert "(bool, True at padding, padding on the right)" in target.inferred_inputs["node_mask"]
    # a mask under which padding is never ignored (a model reading its padding, or one whose
    # mask hides positions): any pattern, not a padding mask
    target = resolved(HiddenPositions)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 4)))
    same(target.spec.inputs["mask"], dst.tensors(shape=("batch", "time"), dtype=torch.bool))
    assert "(bool, any pattern)" in target.inferred_inputs["mask"]
    assert target.inferred_inputs["mask"].endswith(
        "so it is not taken for padding and padding_invariance does not run through it; if it marks padding, give "
        "Spec(inputs={'x': dyncheck.strategies.tensors(shape=('batch', 'time', 4)), "
        "'mask': dyncheck.strategies.attention_masks(dtype=torch.bool)}) (True at real elements; marks='padding' if "
        "True marks padding)"
    )
    assert_callable(target)
    # padding_invariance's skip says why the mask was not taken for padding, not only that
    # forward takes no lengths
    from dyncheck.invariants.padding_invariance import PaddingInvariance

    assert PaddingInvariance().applies_to(target) == (
        f"forward takes no lengths argument, and mask is {target.inferred_inputs['mask']}"
    )
    # the buggy set model declares its mask, so that padding_invariance runs
    declared = resolve("reference_models.buggy.set_mean_over_padding:Model")
    assert strategy_kind(declared.spec.inputs["mask"]) == "attention_masks"
    assert strategy_kind(resolved(MeanOverPadding).spec.inputs["mask"]) == "tensors"  # undeclared: any pattern


def test_a_declared_mask_makes_the_vectors_beside_it_sequences():
    # The Spec the skip suggests, given with the mask alone: the sets were inferred without
    # it, as vectors [batch, 4], and every check crashed.
    declared = {"node_mask": dst.attention_masks(dtype=torch.bool, marks="padding")}
    target = resolved(PaddingMarkedSets, inputs=declared)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 4)))
    assert "a sequence of them beside node_mask, whose padded length no input had" in target.inferred_inputs["x"]
    assert "node_mask" not in target.inferred_inputs
    assert_callable(target)


class Cells(nn.Module):
    """An architecture the cells are not zipped with: its length is not shown."""

    def __init__(self):
        super().__init__()
        self.cells = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))

    def forward(self, x, arch: list[int]):
        for i in range(len(self.cells)):
            x = self.cells[i](x) if arch[i] else x
        return x


class WalkedStack(nn.Module):
    """Layers of other widths walked by index: the input is the first one's, not any member's."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 6), nn.Linear(6, 5)])

    def forward(self, x):
        for i in range(len(self.layers)):
            x = self.layers[i](x)
        return x


class PerTask(nn.Module):
    """A head per task, and an auxiliary layer for the first two tasks only."""

    def __init__(self):
        super().__init__()
        self.aux = nn.ModuleList(nn.Linear(4, 4) for _ in range(2))
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(5))

    def forward(self, x, task: int):
        if task < 2:
            x = x + self.aux[task](x)
        return self.heads[task](x)


def test_an_architecture_is_one_index_per_cell_into_its_candidates():
    from reference_models.supernet import ChoiceCell, SlimmableMLP, Supernet

    target = resolved(Supernet)
    assert target.inferred_inputs["arch"] == (
        "annotated list[int], an architecture: one choice per member of cells (3), each an index into that "
        "member's own modules (4, 4, 4)"
    )
    for arch in ([0, 0, 0], [3, 3, 3], [1, 2, 3]):
        assert find(target.spec.inputs["arch"], lambda a, arch=arch: a == arch) == arch  # a list, each reachable
    assert_callable(target)
    # a cell alone: the choice is each candidate's index; the candidates, not alike, all
    # take the cell's input
    target = resolved(ChoiceCell, init={"dim": 6})
    same(target.spec.inputs["choice"], dst.controls(dtype=int, min_value=0, max_value=3))
    assert target.inferred_inputs["choice"] == "annotated int, an index into ops (4 modules) in forward: each, 0 to 3"
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 6)))
    # of two containers it indexes, the larger; the condition that guards the smaller splits the range
    target = resolved(PerTask)
    same(target.spec.inputs["task"], dst.controls(dtype=int, min_value=0, max_value=4, thresholds=(2,)))
    assert target.inferred_inputs["task"] == "annotated int, an index into heads (5 modules) compared with 2 in forward: each, 0 to 4"
    assert_callable(target)
    # the slimmable net's width is found by a call at the top of the multiplier's range
    target = resolved(SlimmableMLP)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    assert "(with width_mult=1.0), it first ran on [2, 8]" in target.inferred_inputs["x"]
    with pytest.raises(TargetError) as excinfo:
        resolved(Cells, inputs={"x": dst.tensors(shape=("batch", 4))})
    assert str(excinfo.value).endswith(
        "cannot infer forward argument 'arch' of Cells (annotated list[int]: which ints and how many are read from "
        "forward only for an architecture, zipped with a ModuleList whose members pick their own modules by it); "
        "write dyncheck.Spec(Cells, inputs={'arch': hypothesis.strategies.lists(hypothesis.strategies.integers(0, N), "
        "min_size=K, max_size=K)}) with the values and length it takes; keep the input your Spec gives ('x') beside it"
    )
    # members of other widths walked by index agree on no input: calling the model finds it
    same(resolved(WalkedStack).spec.inputs["x"], dst.tensors(shape=("batch", 4)))


class SqueezeExcite(nn.Module):
    """The classic squeeze-excite layer: its only Linears read the image pooled."""

    def __init__(self, channel=16, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channel, channel // reduction), nn.ReLU(), nn.Linear(channel // reduction, channel))

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        return x * torch.sigmoid(self.fc(y)).view(b, c, 1, 1)


def test_a_layer_whose_linear_reads_its_images_pooled_takes_images():
    from reference_models.cond_conv import CondConv2d

    for model, channels in ((CondConv2d, 8), (SqueezeExcite, 16)):
        target = resolved(model)
        same(target.spec.inputs["x"], dst.tensors(shape=("batch", channels, "height", "width")))
        assert target.inferred_inputs["x"].endswith(
            f"; images of {channels} channels: as vectors [2, {channels}] it raised ValueError (not enough values to "
            f"unpack (expected 4, got 2)), as sequences too, on [2, {channels}, 5, 5] it ran"
        ), target.inferred_inputs["x"]
        assert_callable(target)


def test_a_dict_of_inputs_read_by_key_has_each_entry_inferred():
    from reference_models.dict_batch import DictBatchClassifier

    target = resolved(DictBatchClassifier)
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "tokens": dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=29),
        "lengths": dst.sequence_lengths(),
    }))
    assert target.inferred_inputs["batch"] == (
        "a dict of inputs, read by key: ['tokens'] first consumed by embed (Embedding(num_embeddings=30): "
        "integer tokens); ['lengths'] its name says sequence lengths: one per sample, each between 1 and the "
        "padded length 'time'"
    )
    assert_callable(target, max_examples=20)


def test_an_attention_mask_entry_is_the_mask_of_the_token_ids():
    # Inferred from its use alone it was a float tensor of another length: the model raised on every example.
    from reference_models.dict_batch import DictMaskedClassifier

    target = resolved(DictMaskedClassifier)
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "input_ids": dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=29),
        "attention_mask": dst.attention_masks(batch_size="batch", max_length="time"),
    }))
    assert target.inferred_inputs["batch"].endswith(
        "['attention_mask'] the mask of input_ids: 1 for tokens, 0 for padding on the right, at least one token a row"
    )
    assert_callable(target, max_examples=20)


def test_a_dict_forward_adds_entries_to_and_hands_back_is_a_dict_of_inputs():
    # sentence-transformers' modules: features["sentence_embedding"] = ...; return features
    from reference_models.dict_batch import FeaturesPooler

    target = resolved(FeaturesPooler)
    same(target.spec.inputs["features"], st.fixed_dictionaries({
        "input_ids": dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=29),
        "attention_mask": dst.attention_masks(batch_size="batch", max_length="time"),
    }))
    assert_callable(target, max_examples=20)

    class Updating(FeaturesPooler):
        def forward(self, features):
            features.update({"token_embeddings": self.embed(features["input_ids"])})
            return features

    same(resolved(Updating).spec.inputs["features"], st.fixed_dictionaries({
        "input_ids": dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=29),
    }))

    class Overwriting(nn.Module):  # an entry read, then written back: an input
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, features):
            features["hidden"] = self.lin(features["hidden"])
            return features

    same(resolved(Overwriting).spec.inputs["features"], st.fixed_dictionaries({
        "hidden": dst.tensors(shape=("batch", 4)),
    }))


class DictFrames(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, batch):
        h = self.proj(batch["frames"])
        mask = torch.arange(h.shape[1])[None, :] < batch["lengths"][:, None]
        return (h * mask[..., None]).sum(1) / batch["lengths"][:, None]


def test_float_frames_beside_lengths_in_a_dict_are_a_padded_sequence():
    # The lengths beside the frames were looked for among forward's arguments only: the
    # frames were drawn as (batch, 8) and the model raised on every example.
    target = resolved(DictFrames)
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "frames": dst.tensors(shape=("batch", "time", 8)),
        "lengths": dst.sequence_lengths(),
    }))
    assert target.inferred_inputs["batch"].startswith(
        "a dict of inputs, read by key: ['frames'] first consumed by proj (Linear(in_features=8)); a padded "
        "sequence, as forward takes batch['lengths']; ['lengths'] its name says sequence lengths"
    )
    assert_callable(target, max_examples=20)


def test_lengths_under_a_name_of_their_own_in_a_dict_are_declared_as_forward_reads_them():
    from reference_models.dict_batch import DictFramesClassifier

    target = resolve("reference_models.dict_batch:DictFramesClassifier")  # its __dyncheck__ declares them
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "frames": dst.tensors(shape=("batch", "time", 8)),
        "n_valid": dst.sequence_lengths(),
    }))
    assert_callable(target, max_examples=20)
    with pytest.raises(TargetError) as excinfo:
        resolved(DictFramesClassifier, lengths="batch['n_vaild']")
    assert str(excinfo.value).endswith(
        "Spec(lengths=\"batch['n_vaild']\") names batch['n_vaild'], but the dict of inputs batch holds "
        "'frames', 'n_valid'; did you mean 'n_valid'?"
    )
    with pytest.raises(TargetError) as excinfo:
        resolved(DictFramesClassifier, lengths="bach['n_valid']")
    assert "Spec(lengths=\"bach['n_valid']\") names an argument DictFramesClassifier.forward does not take; " \
        "did you mean 'batch'?" in str(excinfo.value)
    built = st.builds(dict, frames=dst.tensors(shape=(2, 3, 8)), n_valid=st.just(torch.tensor([3, 1])))
    with pytest.raises(TargetError) as excinfo:
        resolved(DictFramesClassifier, lengths="batch['n_valid']", inputs={"batch": built})
    assert "Spec(inputs={'batch': ...}) is not drawn by hypothesis.strategies.fixed_dictionaries" in str(excinfo.value)
    with pytest.raises(InvalidArgument, match=r"or an entry of a dict of inputs, e\.g\. lengths=\"batch\['n_valid'\]\""):
        Spec(DictFramesClassifier, lengths="batch[n_valid]")


def test_a_dict_inside_a_dict_of_inputs_is_inferred_as_the_outer_one_is():
    # Read one level deep, batch["text"] was drawn as one tensor: the model raised on every example.
    target = resolve("reference_models.dict_batch:NestedBatchClassifier")  # text = batch["text"]; text["input_ids"]
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "text": st.fixed_dictionaries({
            "input_ids": dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=29),
            "attention_mask": dst.attention_masks(batch_size="batch", max_length="time"),
        }),
        "image": dst.tensors(shape=("batch", 12)),
    }))
    assert target.inferred_inputs["batch"] == (
        "a dict of inputs, read by key: ['text']['input_ids'] first consumed by embed (Embedding(num_embeddings=30): "
        "integer tokens); ['text']['attention_mask'] the mask of input_ids: 1 for tokens, 0 for padding on the "
        "right, at least one token a row; ['image'] first consumed by image (Linear(in_features=12))"
    )
    assert_callable(target, max_examples=20)


class FramesBesideLengths(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, batch, lengths):
        h = self.proj(batch["frames"])
        return (h * (torch.arange(h.shape[1])[None, :] < lengths[:, None])[..., None]).sum(1)


class UnreadableEntry(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, batch):
        text = batch["text"]
        return self.fc(batch["image"]) * text["scale"].sum()


class DictToHelper(nn.Module):
    """pytorch-forecasting's DeepAR: forward reads the batch by key and hands it whole to a
    method of its own, which reads other keys."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(6, 8, batch_first=True)
        self.out = nn.Linear(8, 1)

    def encode(self, x):
        _, state = self.rnn(x["encoder_cont"])
        return state

    def forward(self, x):
        y, _ = self.rnn(x["decoder_cont"], self.encode(x))
        return self.out(y)


def test_a_dict_handed_to_a_method_of_the_model_is_read_there_too():
    # Read as a tensor (the LSTM's input) once forward handed it to self.encode: every check
    # raised IndexError on x["encoder_cont"].
    target = resolved(DictToHelper)
    same(target.spec.inputs["x"], st.fixed_dictionaries({
        "decoder_cont": dst.tensors(shape=("batch", "time", 6)),
        "encoder_cont": dst.tensors(shape=("batch", "time", 6)),
    }))
    assert_callable(target, max_examples=3)


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.head = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 3)

    def forward(self, windows_batch):
        h, _ = self.rnn(windows_batch["insample_y"])
        return self.head(h[:, -1] * windows_batch["scale"])


class ScaledBySplat(Forecaster):
    """neuralforecast's subclasses: the dict copied with one entry replaced, handed on to the
    parent's forward, which reads it by key."""

    def forward(self, windows_batch):
        y = windows_batch["insample_y"]
        windows_batch = {**windows_batch, "insample_y": y / (y.abs().amax(1, keepdim=True) + 1)}
        return super().forward(windows_batch)


class ScaledByDict(Forecaster):
    def forward(self, windows_batch):
        y = windows_batch["insample_y"]
        windows_batch = dict(windows_batch, insample_y=y / (y.abs().amax(1, keepdim=True) + 1))
        return super(ScaledByDict, self).forward(windows_batch)


class AddsScaleInItsCopy(Forecaster):
    """The copy adds the entry the parent reads beside the caller's: not an input."""

    def forward(self, windows_batch):
        y = windows_batch["insample_y"]
        windows_batch = {**windows_batch, "scale": y.new_ones(y.shape[0], 8)}
        return super().forward(windows_batch)


def test_an_entry_the_copy_adds_before_the_parents_forward_is_not_drawn():
    target = resolved(AddsScaleInItsCopy)
    same(target.spec.inputs["windows_batch"], st.fixed_dictionaries({
        "insample_y": dst.tensors(shape=("batch", "time", 1)),
    }))
    assert_callable(target, max_examples=3)


@pytest.mark.parametrize("model", [ScaledBySplat, ScaledByDict])
def test_a_dict_copied_with_an_entry_replaced_and_handed_to_the_parents_forward_is_read_there(model):
    # Read as one tensor, the GRU's input: every check raised IndexError on windows_batch["insample_y"].
    target = resolved(model)
    same(target.spec.inputs["windows_batch"], st.fixed_dictionaries({
        "insample_y": dst.tensors(shape=("batch", "time", 1)),
        "scale": dst.tensors(shape=("batch", 8)),
    }))
    assert_callable(target, max_examples=3)


class _PermutingEncoder(nn.Module):
    """neuralforecast's TemporalConvolutionEncoder: [batch, steps, channels] permuted for its
    convolution on a line of its own, and back."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 2, padding=1)

    def forward(self, x):
        x = x.permute(0, 2, 1).contiguous()
        x = torch.relu(self.conv(x)[..., :-1])
        return x.permute(0, 2, 1).contiguous()


class PermutedOnItsOwnLine(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.head = _PermutingEncoder(), nn.Linear(8, 2)

    def forward(self, windows_batch):
        return self.head(self.enc(windows_batch["insample_y"]).mean(1))


class PermutedOnlyIfConfigured(nn.Module):
    """A permute under a switch the configuration leaves off: the input is channels first."""

    def __init__(self, channels_last=False):
        super().__init__()
        self.channels_last = channels_last
        self.conv, self.head = nn.Conv1d(4, 8, 3, padding=1), nn.Linear(8, 2)

    def forward(self, batch):
        x = batch["x"]
        if self.channels_last:
            x = x.permute(0, 2, 1)
        return self.head(self.conv(x).mean(2) * batch["w"])


def test_a_permute_that_may_not_run_is_not_undone():
    # Taken as always run, it turned a correct model's input channels last: every check raised.
    target = resolved(PermutedOnlyIfConfigured)
    same(target.spec.inputs["batch"], st.fixed_dictionaries({
        "x": dst.tensors(shape=("batch", 4, "length")), "w": dst.tensors(shape=("batch", 8)),
    }))
    assert_callable(target, max_examples=3)


def test_a_permute_on_its_own_line_before_the_layer_is_undone():
    # The permute was undone only where written inside the layer's call: the entry was drawn
    # channels first, ('batch', 1, 'length'), and every check raised.
    target = resolved(PermutedOnItsOwnLine)
    same(target.spec.inputs["windows_batch"], st.fixed_dictionaries({
        "insample_y": dst.tensors(shape=("batch", "length", 1)),
    }))
    assert_callable(target, max_examples=3)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.back, self.fore = nn.Linear(6, 16), nn.Linear(16, 6), nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.fc(x))
        return self.back(h), self.fore(h)


class ColumnPickedThenPaired(nn.Module):
    """pytorch-forecasting's N-BEATS: the target column picked, then bound beside the
    forecast in one statement, and handed to the blocks."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_Block(), _Block()])

    def forward(self, x):
        target = x["encoder_cont"][..., 0]
        backcast, forecast = target, 0
        for block in self.blocks:
            b, f = block(backcast)
            backcast, forecast = backcast - b, forecast + f
        return forecast, backcast


def test_names_bound_side_by_side_keep_what_each_value_held():
    # backcast, forecast = target, 0 dropped what target held (a picked column): the entry was
    # drawn [batch, 6], whose column 0 is one number a sample, and every check raised.
    target = resolved(ColumnPickedThenPaired)
    same(target.spec.inputs["x"], st.fixed_dictionaries({"encoder_cont": dst.tensors(shape=("batch", 6, 1))}))
    assert_callable(target, max_examples=3)


def test_lengths_beside_a_dict_of_inputs_are_an_argument_or_an_entry_further_out():
    target = resolved(FramesBesideLengths)
    same(target.spec.inputs["batch"], st.fixed_dictionaries({"frames": dst.tensors(shape=("batch", "time", 8))}))
    assert target.inferred_inputs["batch"].endswith("a padded sequence, as forward takes lengths")


def test_an_entry_of_a_dict_inside_a_dict_that_cannot_be_inferred_is_named_as_forward_reads_it():
    # The Spec draws the whole dict, the entries inferred filled in: with the refused entry
    # alone, pasted, it replaced the dict and every check raised KeyError on the others
    # (pytorch-forecasting's N-BEATS: 'encoder_cont').
    with pytest.raises(TargetError) as excinfo:
        resolved(UnreadableEntry)
    assert str(excinfo.value).endswith(
        "cannot infer forward argument batch['text']['scale'] of UnreadableEntry (no layer in forward consumes it); "
        "a dict of inputs: write dyncheck.Spec(UnreadableEntry, inputs={'batch': "
        "hypothesis.strategies.fixed_dictionaries({'text': ..., 'image': dyncheck.strategies.tensors(shape=('batch', 4))})})"
    )


def test_a_forward_that_needs_a_second_optional_argument_gets_it_inferred():
    # CLIP's forward(input_ids=None, pixel_values=None, ...): with input_ids alone it raises.
    target = resolve("reference_models.two_tower:TwoTower")
    assert list(target.spec.inputs) == ["input_ids", "attention_mask", "pixel_values"]
    same(target.spec.inputs["pixel_values"], dst.tensors(shape=("batch", 3, "height", "width")))
    assert target.inferred_inputs["pixel_values"].startswith(
        "first consumed by patch_embedding (Conv2d(in_channels=3)); forward needs it beside input_ids: with "
        "input_ids alone it raised TypeError (conv2d() received an invalid combination of arguments"
    )
    assert_callable(target, max_examples=20)
    # A model that runs on its first argument alone keeps its other optional ones at None.
    assert "pixel_values" not in resolve("reference_models.hf_style:TinyCausalLM").spec.inputs


def test_a_forward_that_needs_several_optional_arguments_gets_them_inferred_together():
    # A Decision Transformer's forward(states=None, actions=None, rewards=None, returns_to_go=None,
    # timesteps=None, attention_mask=None) needs four; no one beside states is enough.
    target = resolve("reference_models.decision_policy:DecisionPolicy")
    assert list(target.spec.inputs) == ["states", "actions", "returns_to_go", "timesteps"]  # not rewards, not the mask
    for name, shape in (("states", 4), ("actions", 2), ("returns_to_go", 1)):
        same(target.spec.inputs[name], dst.tensors(shape=("batch", "time", shape)))
    same(
        target.spec.inputs["timesteps"],
        dst.tensors(dtype=torch.int64, min_value=0, max_value=15, shape=("batch", "time")),
    )
    assert target.inferred_inputs["actions"].endswith(
        "; forward needs it beside states, returns_to_go and timesteps: with states alone it raised TypeError "
        "(embedding(): argument 'indices' (position 2) must be Tensor, not NoneType), and with any one of them "
        "left out too"
    )
    assert target.inferred_inputs["states"].endswith(
        "; a sequence of them: called on [2, 4] it raised RuntimeError (The size of tensor a (2) must match the "
        "size of tensor b (3) at non-singleton dimension 1), on [2, 3, 4] it ran"
    )
    assert_callable(target, max_examples=20)


class ReadWhole(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x["features"]) if isinstance(x, dict) else self.fc(x)


def test_an_argument_also_read_whole_is_not_a_dict():
    same(resolved(ReadWhole).spec.inputs["x"], dst.tensors(shape=("batch", 4)))


def test_indices_into_another_input_are_one_line_with_the_spec_to_write():
    # edge_index reaches lin1 only through x[src]: drawn as lin1's floats it crashed every
    # check. The helper is a @staticmethod, followed like a method.
    from reference_models.graph_conv import GraphConv

    with pytest.raises(TargetError) as excinfo:
        resolved(GraphConv)
    assert str(excinfo.value) == (
        "--dyncheck reference_models.graph_conv:GraphConv: cannot infer forward argument 'edge_index' of GraphConv (it holds indices into "
        "another input: torch.zeros_like(x).index_add_(0, dst, x[src])); write dyncheck.Spec(GraphConv, "
        "inputs={'edge_index': dyncheck.strategies.tensors(shape=(2, 'edges'), dtype=torch.int64, max_value=3)}, "
        "dims={'batch': (4, 8)}, skip={'batch_invariance': 'samples are coupled through edge_index'}), its shape "
        "and max_value below the smallest size it indexes"
    )
    # token ids are indices too, into an embedding's table: still inferred
    same(resolved(TokenGRU).spec.inputs["tokens"], dst.tensors(shape=("batch", "time"), dtype=torch.int64,
                                                             min_value=0, max_value=9))


def test_a_value_computed_from_the_argument_that_indexes_is_not_the_argument():
    # EVA's patch dropout: x, keep = self.patch_drop(x), then a helper gathers the positional
    # table by keep. The image was read as indices and refused.
    from reference_models.patch_dropout import PatchDropViT

    same(resolved(PatchDropViT).spec.inputs["x"], dst.tensors(shape=("batch", 3, "height", "height")))
    # ... nor when the rate is 0 and the slot is None (timm's Eva as built by default)
    same(resolved(PatchDropViT, init={"patch_drop": 0.0}).spec.inputs["x"],
         dst.tensors(shape=("batch", 3, "height", "height")))


#: Message passing in code with no source to read (PyTorch Geometric generates its
#: ``propagate`` at run time): the edge list's use as indices is not seen.
_PROPAGATE = eval("lambda x, edge_index: torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])")


class _MessagePassing(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.lin = nn.Linear(size, size)

    def forward(self, x, edge_index):
        return _PROPAGATE(self.lin(x), edge_index)


class HiddenPropagation(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _MessagePassing(8)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


def test_an_edge_list_whose_use_is_not_read_is_refused_with_an_edge_lists_spec():
    # PyG's GCNConv over (x, edge_index): the refusal for edge_index suggested float
    # tensors over the batch, and left out the x the user's Spec already gave.
    with pytest.raises(TargetError) as excinfo:
        resolved(HiddenPropagation, inputs={"x": dst.tensors(shape=("batch", 8))})
    message = str(excinfo.value)
    assert "cannot infer forward argument 'edge_index' of HiddenPropagation (named like a graph's edge list" in message
    assert "inputs={'edge_index': dyncheck.strategies.tensors(shape=(2, 'edges'), dtype=torch.int64, max_value=3)}" in (
        message
    )
    assert message.endswith("; keep the input your Spec gives ('x') beside it")
    # given both, the model runs on what the Spec draws
    spec = {"x": dst.tensors(shape=("batch", 8)),
            "edge_index": dst.tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3)}
    assert_callable(resolved(HiddenPropagation, inputs=spec, dims={"batch": (4, 8)}), max_examples=5)


class GraphPool(nn.Module):
    """Node features summed per graph by a graph-id vector (torch_geometric's `batch`)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x, batch):
        size = int(batch.max()) + 1
        return self.lin(x.new_zeros(size, x.size(1)).index_add_(0, batch, x))


def test_a_vector_of_indices_gets_a_vector_in_the_spec_to_write():
    # An edge list is read as two rows (src, dst = edge_index); a graph-id vector is not, and
    # was given (2, 'edges') too, which crashed every check once pasted.
    with pytest.raises(TargetError) as excinfo:
        resolved(GraphPool)
    # graph ids as a batch of graphs numbers them: in order, none skipped (drawn at random, a
    # graph between two others had no nodes and a readout over its nodes gave NaN)
    ordered = ".map(lambda ids: ids.unique(return_inverse=True)[1].sort().values)"
    assert (
        f"inputs={{'batch': dyncheck.strategies.tensors(shape=('batch',), dtype=torch.int64, max_value=3){ordered}}}"
    ) in str(excinfo.value)
    assert str(excinfo.value).endswith("; the map numbers the groups in order, none skipped, as a batch of graphs does")
    ids = torch.tensor([2, 0, 2, 3, 0])
    assert eval(ordered.removeprefix(".map(").removesuffix(")"))(ids).tolist() == [0, 0, 1, 1, 2]


class _HelperConv(nn.Module):
    """PyG's GCNConv in miniature: its weight, then message passing in a module-level helper."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))

    def forward(self, x, edge_index):
        return _propagate(x @ self.weight, edge_index)


def _propagate(h, edge_index):
    src, dst = edge_index
    return h.index_add(0, dst, h[src])


class GraphClassifier(nn.Module):
    """conv -> sum per graph (into a tensor sized by the graph ids) -> head."""

    def __init__(self):
        super().__init__()
        self.conv = _HelperConv()
        self.head = nn.Linear(8, 3)

    def forward(self, x, edge_index, batch):
        h = torch.relu(self.conv(x, edge_index))
        return self.head(h.new_zeros(int(batch.max()) + 1, h.shape[1]).index_add(0, batch, h))


class _Bundle(NamedTuple):
    alpha_j: torch.Tensor
    index: torch.Tensor


class GATLike(nn.Module):
    """PyG's GATConv in miniature: x (or a pair, bipartite) into a Linear, attention logits
    gathered per edge into a NamedTuple beside the edges' indices, a softmax per node."""

    def __init__(self):
        super().__init__()
        self.lin, self.att = nn.Linear(4, 8), nn.Parameter(torch.randn(8))

    def collect(self, alpha, edge_index):
        return _Bundle(alpha[edge_index[0]], edge_index[1])

    def forward(self, x, edge_index):
        if isinstance(x, torch.Tensor):
            x_src = x_dst = self.lin(x)
        else:  # a pair, already projected
            x_src, x_dst = x
        kw = self.collect((x_src * self.att).sum(-1), edge_index)
        a = _edge_softmax(kw.alpha_j, kw.index, x_dst.shape[0])
        return torch.zeros_like(x_dst).index_add_(0, edge_index[1], x_src[edge_index[0]] * a[:, None])


def _edge_softmax(src, index, nodes):
    """torch_geometric.utils.softmax: over the edges into each node."""
    out = src.exp()
    return out / torch.zeros(nodes).index_add_(0, index, out).index_select(0, index)


def test_features_a_layer_takes_as_they_are_are_not_refused_as_indices():
    # x reaches the bundle through the bipartite branch, and kw.index carries it as far as
    # the flow can tell. Before, x was refused as indices, with a Spec drawing it as int64.
    with pytest.raises(TargetError) as excinfo:
        resolved(GATLike)
    message = str(excinfo.value)
    assert "argument 'x'" not in message
    assert "cannot infer forward argument 'edge_index' of GATLike (it holds indices into another input" in message
    target = resolved(GATLike, inputs={"edge_index": dst.tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3)},
                      dims={"batch": (4, 8)})
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 4)
    assert_callable(target, max_examples=5)


class _OpaqueConv(nn.Module):
    """A graph convolution whose message passing has no source to read (PyG generates it)."""

    def __init__(self, size, out):
        super().__init__()
        self.lin = nn.Linear(size, out)

    def forward(self, x, edge_index):
        return _PROPAGATE(self.lin(x), edge_index)


class _PickingConv(nn.Module):
    """A graph convolution whose Linear takes the node features beside what the edges picked."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x, edge_index):
        src, dst = edge_index
        return self.lin(x + torch.zeros_like(x).index_add(0, dst, x[src]))


class PickingGNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _PickingConv()

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


class StraightThrough(nn.Module):
    """A hard one-hot of the features' argmax with the gradient of the soft ones."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(5, 4, 3)

    def forward(self, x):
        hard = x.new_zeros(x.shape).scatter_(1, x.argmax(1, keepdim=True), 1.0)
        return self.conv(hard - x.detach() + x)


class OneHotLabels(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(7, 2)

    def forward(self, x, labels):
        return self.fc(torch.cat([x, torch.zeros(x.size(0), 3).scatter_(1, labels[:, None], 1.0)], 1))


def test_an_argument_is_features_only_where_a_layer_takes_it_as_it_is():
    # edge_index reaches conv as itself, and conv's Linear takes what it picked: still indices
    with pytest.raises(TargetError) as excinfo:
        resolved(PickingGNN)
    assert "'edge_index' of PickingGNN (it holds indices into another input" in str(excinfo.value)
    # x scattered into a tensor shaped as itself is not indices (sized by its shape only)
    target = resolved(StraightThrough)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 5, "length")
    # class labels one-hot along axis 1 are no graph ids: no map that orders them
    with pytest.raises(TargetError) as excinfo:
        resolved(OneHotLabels, inputs={"x": dst.tensors(shape=("batch", 4))})
    assert "'labels' of OneHotLabels (it holds indices" in str(excinfo.value)
    assert ".map(" not in str(excinfo.value)


class _Trim(nn.Module):
    """PyG's TrimToLayer: the nodes and edges a sampled hop no longer needs, cut (here kept)."""

    def forward(self, hop, x, edge_index):
        return x, edge_index


class StackedGNN(nn.Module):
    """PyG's BasicGNN (GCN, GAT, GraphSAGE, GIN): x = conv(x, edge_index) layer after layer,
    both trimmed first when sampled hops are given."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([_OpaqueConv(4, 8), _OpaqueConv(8, 8)])
        self._trim = _Trim()

    def forward(self, x, edge_index, hops=None):
        for i, conv in enumerate(self.convs):
            if hops is not None:
                x, edge_index = self._trim(i, x, edge_index)
            x = torch.relu(conv(x, edge_index))
        return x


def test_an_edge_list_is_not_read_off_the_layer_that_takes_what_it_made():
    # x, edge_index = self._trim(i, x, edge_index) makes x of edge_index, so the conv's input
    # was read for it: drawn as float [batch, 4], every check crashed in the message passing.
    with pytest.raises(TargetError) as excinfo:
        resolved(StackedGNN)
    message = str(excinfo.value)
    assert "cannot infer forward argument 'edge_index' of StackedGNN (named like a graph's edge list" in message
    assert "argument 'x'" not in message


def test_indices_used_in_a_layers_helper_or_sized_into_a_new_tensor_are_refused_as_indices():
    # Before, neither use was seen: edge_index and batch were read off the head after the
    # conv, drawn as float [batch, 8], and every check crashed in the scatter.
    with pytest.raises(TargetError) as excinfo:
        resolved(GraphClassifier)
    message = str(excinfo.value)
    assert "'edge_index' of GraphClassifier (it holds indices into another input: h.index_add(0, dst, h[src]))" in message
    assert (
        "'batch' of GraphClassifier (it holds indices into another input: "
        "h.new_zeros(int(batch.max()) + 1, h.shape[1]).index_add(0, batch, h))"
    ) in message
    # the Spec it names runs, x inferred beside it from the conv's weight
    ids = dst.tensors(shape=("batch",), dtype=torch.int64, max_value=3).map(
        lambda ids: ids.unique(return_inverse=True)[1].sort().values
    )
    target = resolved(GraphClassifier, inputs={
        "edge_index": dst.tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3), "batch": ids,
    }, dims={"batch": (4, 8)})
    assert target.inferred_inputs["x"] == "first consumed by conv (Linear(in_features=4))"
    assert_callable(target, max_examples=5)


class ForwardTagScore(nn.Module):
    """A linear-chain CRF's score of its tags, its loop in forward: tags index the start scores."""

    def __init__(self, num_tags=5):
        super().__init__()
        self.start = nn.Parameter(torch.randn(num_tags))
        self.trans = nn.Parameter(torch.randn(num_tags, num_tags))

    def forward(self, emissions, tags):
        seq_length, batch_size = tags.shape
        score = self.start[tags[0]]
        score += emissions[0, torch.arange(batch_size), tags[0]]
        for i in range(1, seq_length):
            score += self.trans[tags[i - 1], tags[i]]
            score += emissions[i, torch.arange(batch_size), tags[i]]
        return score


class ChainTagScore(ForwardTagScore):
    """A linear-chain CRF's score of its tags (pytorch-crf's ``_compute_score``): emissions
    ``[time, batch, tags]``, tag ids ``[time, batch]`` stepped through by a loop in a helper."""

    def forward(self, emissions, tags):
        if emissions.size(2) != self.start.numel():
            raise ValueError("expected last dimension of emissions to be num_tags")
        return self._compute_score(emissions, tags)

    _compute_score = ForwardTagScore.forward


def test_indices_stepped_through_by_a_loop_get_steps_in_the_spec_to_write():
    # tags[0] read as an edge list's first row gave (2, 'edges'), a batch of 4-8 and a
    # batch_invariance skip: a graph's Spec for a CRF's tag ids, one per step and sample.
    with pytest.raises(TargetError) as excinfo:
        resolved(ChainTagScore)
    text = str(excinfo.value)
    assert "it holds indices into another input, one per step: emissions[0, torch.arange(batch_size), tags[0]]" in text
    assert "'tags': dyncheck.strategies.tensors(shape=('time', 'batch'), dtype=torch.int64, max_value=3)" in text
    assert "edges" not in text and "skip=" not in text


class ComprehensionTagScore(ForwardTagScore):
    """ForwardTagScore with its steps in a list comprehension."""

    def forward(self, emissions, tags):
        seq_length, batch_size = tags.shape
        rows = torch.arange(batch_size)
        score = self.start[tags[0]] + emissions[0, rows, tags[0]]
        steps = [self.trans[tags[i - 1], tags[i]] + emissions[i, rows, tags[i]] for i in range(1, seq_length)]
        return score + sum(steps)


@pytest.mark.parametrize("model", [ForwardTagScore, ComprehensionTagScore])
def test_indices_of_a_weight_stepped_through_by_a_loop_are_one_per_step_and_sample(model):
    # start[tags[0]] gave one index per sample, ('batch',): every check crashed on
    # `seq_length, batch_size = tags.shape`.
    from dyncheck.strategies import tensors

    target = resolved(model, inputs={"emissions": tensors(shape=("time", "batch", 5))})
    arguments = strategy_arguments(target.spec.inputs["tags"])
    assert arguments["shape"] == ("time", "batch") and arguments["max_value"] == 4
    assert "one index per step and sample, 0 to 4" in target.inferred_inputs["tags"]
    assert_callable(target, max_examples=3)


class PerRowBias(nn.Module):
    """One class id per sample, its bias looked up row by row in a loop over the batch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bias = nn.Parameter(torch.randn(5, 8))

    def forward(self, x, label):
        h = self.fc(x)
        rows = []
        for i in range(x.shape[0]):
            rows.append(h[i] + self.bias[label[i]])
        return torch.stack(rows)


def test_indices_picked_in_a_loop_over_the_batch_stay_one_per_sample():
    target = resolved(PerRowBias)
    assert strategy_arguments(target.spec.inputs["label"])["shape"] == ("batch",)
    assert_callable(target, max_examples=3)


class NearestNeighbour(nn.Module):
    """Each point beside its nearest neighbour: the points are what torch.gather picks from."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 4)

    def forward(self, pos):
        idx = torch.cdist(pos, pos).topk(2, dim=-1, largest=False).indices[..., 1:]
        neighbour = torch.gather(pos, 1, idx.expand(-1, -1, pos.size(-1)))
        return self.lin(torch.cat([pos, neighbour - pos], -1)).amax(1)


class MaxReadout(nn.Module):
    """Nodes pooled per graph: x is what scatter_reduce puts in, by a graph-id index."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x, graph):
        index = graph.unsqueeze(-1).expand_as(x)
        pooled = torch.zeros(int(graph.max()) + 1, x.size(1)).scatter_reduce(0, index, x, "amax", include_self=False)
        return self.lin(pooled)


@pytest.mark.parametrize(("model", "name"), [(NearestNeighbour, "pos"), (MaxReadout, "x")])
def test_what_an_indexing_call_picks_from_or_puts_in_is_not_indices(model, name):
    # Only the index argument of gather/scatter_reduce/index_add_ holds indices: the points,
    # and the node features, were refused with a Spec of int64 edges that crashed every check.
    graph = {"graph": dst.tensors(shape=("batch",), dtype=torch.int64, max_value=0)}
    target = resolved(model, inputs=graph if model is MaxReadout else {})
    assert strategy_kind(target.spec.inputs[name]) == "tensors"
    assert strategy_arguments(target.spec.inputs[name]).get("dtype", torch.float32) == torch.float32


def test_what_kind_of_thing_an_argument_is_says_nothing_of_its_values():
    # diffusers' UNet picks a dtype by isinstance(timestep, float), then looks it up in a
    # dict: the timestep was refused as indices into that dict
    import ast

    from dyncheck.infer.source import _mentions_data

    def carries(code: str) -> bool:
        return _mentions_data(ast.parse(code, mode="eval").body, {"t"})

    assert not carries("torch.float64 if isinstance(t, float) else torch.int64")
    assert not carries("type(t) is float or hasattr(t, 'shape') or callable(t) or len(t)")
    assert carries("t.float() * 2") and carries("table[t]")


def test_the_index_argument_of_each_form_of_an_indexing_call():
    from dyncheck.infer.forward import _index_argument

    def picked(source: str) -> tuple[str, str]:
        index, tensor = _index_argument(ast.parse(source, mode="eval").body)
        return ast.unparse(index), ast.unparse(tensor)

    assert picked("out.index_add_(0, dst, msg)") == ("dst", "out")
    assert picked("torch.gather(x, 1, idx)") == ("idx", "x")
    assert picked("torch.zeros(3).scatter_reduce(0, index, src, 'amax')") == ("index", "torch.zeros(3)")
    assert picked("x.gather(1, index=idx)") == ("idx", "x")
    assert picked("x.index_put_((rows, cols), values)") == ("(rows, cols)", "x")
    assert picked("torch.gather(input=h, dim=1, index=picks)") == ("picks", "h")
    assert picked("torch.Tensor.index_select(h, 0, picks)") == ("picks", "h")
    assert _index_argument(ast.parse("x.gather(1)", mode="eval").body) is None


class SetList(nn.Module):
    """A list of point sets of their own sizes, each pooled alone."""

    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8))
        self.rho = nn.Linear(16, 4)

    def forward(self, sets: list[torch.Tensor]) -> torch.Tensor:
        pooled = []
        for s in sets:
            h = self.phi(s)
            pooled.append(torch.cat([h.mean(0), h.max(0).values]))
        return self.rho(torch.stack(pooled))


class GatedHeads(nn.Module):
    """Heads called in a list comprehension over a ModuleList, each gated (hard-concrete gates)."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(8, 4) for _ in range(3)])
        self.gate = nn.Parameter(torch.ones(3))
        self.out = nn.Linear(12, 2)

    def forward(self, x):
        outs = [self.gate[i] * head(x) for i, head in enumerate(self.heads)]
        return self.out(torch.cat(outs, -1))


def test_a_module_list_called_in_a_comprehension_consumes_the_argument():
    target = resolved(GatedHeads)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    assert target.inferred_inputs["x"] == "first consumed by heads.0 (Linear(in_features=8))"
    assert_callable(target)


def test_a_comprehensions_variables_are_its_own():
    # z of the comprehension is not the z of the rest of forward (a global here)
    import ast

    from dyncheck.infer.flow import _flow

    tree = ast.parse(
        "def forward(self, x, h):\n"
        "    parts = [z * 2 for z in x]\n"
        "    return self.fc(z), parts\n"
    ).body[0]
    model = nn.Module()
    model.fc = nn.Linear(3, 3)
    assert _flow(tree, "x", model).consumers == []
    assert _flow(ast.parse("def forward(self, x):\n    return [self.fc(z) for z in x]\n").body[0], "x", model).consumers == [
        "fc"
    ]


def test_a_list_annotation_is_drawn_as_a_list_when_no_layer_gives_the_shape():
    # A Sequential first: no layer says the shape; the probe of vectors and sequences ran on
    # [2, 3, 3], a dense tensor whose "sets" were never ragged.
    target = resolved(SetList)
    same(target.spec.inputs["sets"], dst.sequence_lists(feature_shape=(3,)))
    assert target.inferred_inputs["sets"].startswith(
        "annotated as a list of tensors, whose layers give no shape: called on two sequences [3, F] and [2, F]"
    )
    assert_callable(target)


def test_a_list_of_batches_one_per_view_is_drawn_so():
    # Two views of each sample scored against each other (z[0] * z[1]): no list of
    # sequences of their own lengths runs; lists of equal batches do, one row per sample.
    from hypothesis import strategies as st

    from reference_models.two_views import TwoViewContrast

    target = resolved(TwoViewContrast)
    same(target.spec.inputs["views"], st.lists(dst.tensors(shape=("batch", 6)), min_size=2, max_size=3))
    # each view reaches the encoder inside a list comprehension, [self.embed(view) for view in views]
    assert target.inferred_inputs["views"] == (
        "annotated as a list of tensors, whose consumer takes ['batch', 6], not sequences; on 2 and 3 such batches "
        "it gave a row per sample (in each): a list of batches, one per view of the samples"
    )
    assert_callable(target)


class ProjectedViews(nn.Module):
    """Two views handed to a Linear each: the layer gives the shape, [batch, 6]."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 4)

    def forward(self, views: list[torch.Tensor]):
        return (self.proj(views[0]) * self.proj(views[1])).sum(-1)


class CroppedImages(nn.Module):
    """Crops of the same images through one convolution, concatenated (DINO's multi-crop)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, crops: list[torch.Tensor]):
        return self.conv(torch.cat(crops)).mean((2, 3))


def test_a_list_of_batches_a_layer_gives_the_shape_of_is_drawn_so_or_named_in_the_refusal():
    from hypothesis import strategies as st

    target = resolved(ProjectedViews)
    same(target.spec.inputs["views"], st.lists(dst.tensors(shape=("batch", 6)), min_size=2, max_size=3))
    assert target.inferred_inputs["views"] == (
        "annotated as a list of tensors, whose consumer takes ['batch', 6], not sequences; on 2 and 3 such batches "
        "it gave a row per sample (in each): a list of batches, one per view of the samples"
    )
    assert_callable(target)
    # Images: their height and width may be limited by the model, which no probe here reads.
    with pytest.raises(TargetError) as excinfo:
        resolved(CroppedImages)
    assert str(excinfo.value).endswith(
        "(annotated as a list of tensors; its consumer takes ['batch', 3, 'height', 'width'], not sequences; on 2 "
        "and 3 such batches it gave a row per sample (in each): a batch per element, one per view of the samples, "
        "whose height and width the model may limit); write dyncheck.Spec(CroppedImages, inputs={'crops': "
        "hypothesis.strategies.lists(dyncheck.strategies.tensors(shape=('batch', 3, 'height', 'width')), min_size=2, "
        "max_size=3)}, dims={'height': (..., ...), 'width': (..., ...)})"
    ), str(excinfo.value)


class StackedHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))

    def forward(self, x, task: int):
        return torch.stack([head(x) for head in self.heads], 0)[task]


class StackedAlongFeatures(StackedHeads):
    def forward(self, x, task: int):
        return torch.stack([head(x) for head in self.heads], -1)[task]  # a row of x, not a head


class OneHotHeads(StackedHeads):
    def forward(self, x, task: int):
        weights = nn.functional.one_hot(torch.tensor(task), len(self.heads)).to(x.dtype)
        return (torch.stack([head(x) for head in self.heads]) * weights[:, None, None]).sum(0)


def test_an_index_into_the_stacked_results_of_a_container_takes_each_member():
    target = resolved(StackedHeads)
    same(target.spec.inputs["task"], dst.controls(dtype=int, min_value=0, max_value=2))
    assert target.inferred_inputs["task"] == "annotated int, an index into heads (3 modules) in forward: each, 0 to 2"
    along = resolved(StackedAlongFeatures, inputs={"x": dst.tensors(shape=("batch", 4))})
    assert along.inferred_inputs["task"] == "annotated int"
    # a one-hot weight over the members picks one too (it drew one past the end: one_hot raised)
    one_hot = resolved(OneHotHeads, inputs={"x": dst.tensors(shape=("batch", 4))})
    same(one_hot.spec.inputs["task"], dst.controls(dtype=int, min_value=0, max_value=2))


class StackedSamples(nn.Module):
    """A list of samples of one shape (sequences of one length) stacked into a batch, behind
    a Sequential (no layer gives the shape): it runs on lists of equal batches too, but
    gives a row per element of the list."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    def forward(self, samples: list[torch.Tensor]):
        return self.net(torch.stack(samples))


def test_a_list_of_samples_stacked_is_not_read_as_views():
    with pytest.raises(TargetError) as excinfo:
        resolved(StackedSamples)
    assert "cannot infer forward argument 'samples'" in str(excinfo.value)


SET_LISTS = """
    import torch
    from torch import nn


    class SetList(nn.Module):
        def __init__(self):
            super().__init__()
            self.phi = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8))
            self.rho = nn.Linear(8, 4)

        def forward(self, sets: list[torch.Tensor]) -> torch.Tensor:
            return self.rho(torch.stack([self.phi(s).sum(0) / self.size(s, sets) for s in sets]))

        def size(self, s, sets):
            return len(s)


    class LargestSize(SetList):
        def size(self, s, sets):
            return max(len(t) for t in sets)  # the bug: every set divided by the batch's largest
"""


def test_lists_drawn_ragged_catch_a_set_scaled_by_the_largest_in_the_batch(dyncheck_run, pytester):
    pytester.makepyfile(set_lists=SET_LISTS)
    run = dyncheck_run(
        "--dyncheck", "set_lists:SetList", "--dyncheck", "set_lists:LargestSize",
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=3",
    )
    assert run.outcomes() == {
        "dyncheck::set_lists:SetList::batch_invariance": "PASSED",
        "dyncheck::set_lists:LargestSize::batch_invariance": "FAILED",
    }, run.text


def propagate(x, edges):
    src, dst = edges
    return torch.zeros_like(x).index_add_(0, dst, x[src])


class UndirectedGraphConv(nn.Module):
    """Makes the graph undirected before a helper propagates along it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 8)

    def forward(self, x, edge_index):
        return self.lin(propagate(x, torch.cat([edge_index, edge_index.flip(0)], dim=1)))


class OneBasedGraphConv(nn.Module):
    """Edge ids counted from 1, made 0-based before the helper."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 8)

    def forward(self, x, edge_index):
        return self.lin(propagate(x, edge_index - 1))


class AttentionLayer(nn.Module):
    """A GAT layer of its own: the edges are indices inside its forward."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 8)

    def forward(self, x, edge_index):
        src, dst = edge_index
        h = self.lin(x)
        return torch.zeros_like(h).index_add_(0, dst, h[src])


class LayeredGraph(nn.Module):
    """edge_index handed to custom layers: their forward reads it as indices."""

    def __init__(self):
        super().__init__()
        self.layer = AttentionLayer()

    def forward(self, x, edge_index):
        return self.layer(x, edge_index)


@pytest.mark.parametrize("model", [UndirectedGraphConv, OneBasedGraphConv, LayeredGraph])
def test_index_arithmetic_on_the_argument_before_a_helper_is_still_indices(model):
    with pytest.raises(TargetError, match=r"cannot infer forward argument 'edge_index' .* \(it holds indices into"):
        resolved(model)


class TokenRouter(nn.Module):
    """A mixture-of-experts layer over a sequence of vectors: its gate (the first layer to
    consume x) says 16 features, its forward unpacks three axes."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(16, 2)
        self.experts = nn.ModuleList([nn.Linear(16, 16) for _ in range(2)])

    def forward(self, x):
        batch, tokens, features = x.shape
        choice = self.gate(x).argmax(-1)
        out = torch.zeros_like(x)
        for index, expert in enumerate(self.experts):
            out = torch.where((choice == index)[..., None], expert(x), out)
        return out


def test_vectors_that_the_model_refuses_become_sequences():
    target = resolved(TokenRouter)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 16)))
    assert target.inferred_inputs["x"] == (
        "first consumed by gate (Linear(in_features=16)); a sequence of them: called on [2, 16] it raised "
        "ValueError (not enough values to unpack (expected 3, got 2)), on [2, 3, 16] it ran"
    )
    assert_callable(target)
    # A model that takes vectors keeps them.
    plain = resolved(Plain)
    same(plain.spec.inputs["x"], dst.tensors(shape=("batch", 16)))
    assert plain.inferred_inputs["x"] == "first consumed by fc (Linear(in_features=16))"


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(x)


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


class Attending(nn.Module):
    def __init__(self, d_model, nhead, drop_path_rate):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.drop_path_rate = drop_path_rate

    def forward(self, x):
        return self.attention(x, x, x)[0]


def test_a_number_of_heads_is_a_count_that_divides_the_width():
    found = infer_init(Attending, {})
    assert {name: (i.value, i.why) for name, i in found.items()} == {
        "d_model": (8, "a size"), "nhead": (2, "a count"), "drop_path_rate": (0.1, "float argument"),
    }
    assert_callable(resolved(Attending))

    class Audio(nn.Module):  # an int annotated rate is no drop rate
        def __init__(self, sample_rate: int, n_mels, layer_drop_rate):
            super().__init__()

    found = infer_init(Audio, {})
    assert {name: (i.value, i.why) for name, i in found.items()} == {
        "sample_rate": (8, "a size"), "n_mels": (6, "a size"), "layer_drop_rate": (0.1, "float argument"),
    }


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
        'dyncheck.strategies.tensors(shape=("batch", ...))})'
    )


class Patched(nn.Module):
    """A ViT's patch embedding: the image reshaped into patches, then normed and projected."""

    def __init__(self):
        super().__init__()
        self.to_patches = nn.Sequential(nn.PixelUnshuffle(2), nn.Flatten(2))
        self.norm = nn.LayerNorm(12)
        self.proj = nn.Linear(12, 4)

    def forward(self, img):
        return self.proj(self.norm(self.to_patches(img).transpose(1, 2))).mean(1)


def test_an_input_reshaped_before_any_layer_that_gives_a_shape_is_refused_not_guessed():
    # Read through to the LayerNorm after the reshape, the image was drawn [batch, time, 12]
    # and every check crashed.
    with pytest.raises(TargetError) as info:
        resolved(Patched)
    assert (
        "cannot infer forward argument 'img' of Patched (its first consumer, to_patches, reshapes it (PixelUnshuffle) "
        "before any layer that gives a shape); write dyncheck.Spec(Patched, inputs={'img': "
    ) in str(info.value)
    # given, it runs
    assert_callable(resolved(Patched, inputs={"img": dst.tensors(shape=("batch", 3, 4, 4))}))
    # a Flatten first is no such reshape: what it flattens is as often flat already
    flat = resolved(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)))
    same(flat.spec.inputs["input"], dst.tensors(shape=("batch", 12)))


def small_dropout() -> OnlyDropout:
    return OnlyDropout()


def test_the_spec_a_refusal_gives_for_a_factory_builds_the_factory():
    # Spec(OnlyDropout, ...) pasted would build the class with inferred arguments, not the
    # factory's configuration
    with pytest.raises(TargetError) as info:
        resolved(small_dropout)
    message = str(info.value)
    assert "cannot infer forward argument 'x' of OnlyDropout (" in message
    assert message.endswith(
        "write dyncheck.Spec(small_dropout, inputs={'x': dyncheck.strategies.tensors(shape=(\"batch\", ...))})"
    ), message


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


class _Pairs(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(7, 7) for _ in range(2)])
        self.heads = nn.ModuleList([nn.Linear(7, 7) for _ in range(2)])


class Zipped(_Pairs):
    def forward(self, x):
        for block, head in zip(self.blocks, self.heads):
            x = head(block(x))
        return x


class Enumerated(_Pairs):
    def forward(self, x):
        for i, block in enumerate(self.blocks):
            x = block(x) * (i + 1)
        return x


class ZippedSliced(_Pairs):
    def forward(self, x):
        for head, block in zip(self.heads[:1], self.blocks):
            x = block(x) + head(x)
        return x


@pytest.mark.parametrize(
    ("model", "consumer"), [(Zipped, "blocks.0"), (Enumerated, "blocks.0"), (ZippedSliced, "blocks.0")]
)
def test_a_layer_reached_through_zip_or_enumerate(model, consumer):
    target = resolve_spec(Spec(model))
    assert repr(target.spec.inputs["x"]) == "tensors(shape=('batch', 7))"
    assert target.inferred_inputs["x"] == f"first consumed by {consumer} (Linear(in_features=7))"


# --------------------------------------------------------------------------- padded sequences


class PackedProjection(nn.Module):
    """A Linear before packing: the input is a padded batch-first sequence."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)
        self.gru = nn.GRU(6, 4, batch_first=True)

    def forward(self, x, lengths):
        h = self.proj(x)
        packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        return out.data


class PackedNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(5)
        self.lstm = nn.LSTM(5, 3, batch_first=True)

    def forward(self, x, seq_lengths):
        packed = pack_padded_sequence(self.norm(x), seq_lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return out.data


class PackedTimeMajor(PackedProjection):
    """pack_padded_sequence's default batch_first=False: the padded input is time-major."""

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.proj(x), lengths, enforce_sorted=False)
        out, _ = self.gru(packed)
        return out.data


class MaskedTimeMajor(nn.Module):
    """No packing: the layout is the RNN's own."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(7, 6)
        self.rnn = nn.RNN(6, 4)

    def forward(self, x, lengths):
        out, _ = self.rnn(self.proj(x))
        steps = torch.arange(out.shape[0]).unsqueeze(1)
        return out * (steps < lengths.unsqueeze(0)).unsqueeze(-1)


class PackedBatchNorm(nn.Module):
    """BatchNorm1d takes (batch, channels, time): the (batch, time, channels) input is
    transposed on the way in."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(8)
        self.gru = nn.GRU(8, 4, batch_first=True)

    def forward(self, x, lengths):
        h = self.bn(x.transpose(1, 2)).transpose(1, 2)
        out, _ = self.gru(pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False))
        return out.data


@pytest.mark.parametrize(
    ("model", "shape", "why"),
    [
        (PackedProjection, ("batch", "time", 8),
         "first consumed by proj (Linear(in_features=8)); a padded sequence, as forward takes lengths"),
        (PackedNorm, ("batch", "time", 5),
         "first consumed by norm (LayerNorm([5])); a padded sequence, as forward takes seq_lengths"),
        (PackedTimeMajor, ("time", "batch", 8),
         "first consumed by proj (Linear(in_features=8)); a padded sequence, as forward takes lengths "
         "(time-major, as pack_padded_sequence has batch_first=False)"),
        (MaskedTimeMajor, ("time", "batch", 7),
         "first consumed by proj (Linear(in_features=7)); a padded sequence, as forward takes lengths "
         "(time-major, as rnn has batch_first=False)"),
        (PackedBatchNorm, ("batch", "time", 8),
         "first consumed by bn (BatchNorm1d(8)); a padded sequence, as forward takes lengths; "
         "it reaches bn through transpose(1, 2)"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_a_layer_before_packing_gets_a_time_axis_when_forward_takes_lengths(model, shape, why):
    target = resolved(model)
    (lengths,) = [s for n, s in target.spec.inputs.items() if n != "x"]
    same(target.spec.inputs["x"], dst.tensors(shape=shape))
    same(lengths, dst.sequence_lengths(batch_size="batch", max_length="time"))
    assert target.inferred_inputs["x"] == why
    assert_callable(target)


def test_without_lengths_a_linear_input_has_no_time_axis():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(8, 6)

        def forward(self, x, scale_by):
            return self.proj(x) * scale_by.sum()

    target = resolved(Plain, inputs={"scale_by": dst.tensors(shape=(1,))})
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))


def test_a_transposed_input_to_a_conv_is_swapped_back():
    class Transposed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(6, 4, kernel_size=1)

        def forward(self, x):
            return self.conv(x.transpose(1, 2))

    target = resolved(Transposed)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "length", 6)))
    assert target.inferred_inputs["x"] == (
        "first consumed by conv (Conv1d(in_channels=6)); it reaches conv through transpose(1, 2)"
    )
    assert_callable(target)


# --------------------------------------------------------------------------- choices


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Choosing(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)


class ModeAnnotatedStr(Choosing):
    def forward(self, x, mode: str):
        if mode == "a":
            return self.a(x)
        elif mode == "b":
            return self.b(x)
        raise ValueError(mode)


class ModeComparedOnly(Choosing):
    def forward(self, x, mode):
        if mode in ("sum", "mean"):
            x = self.a(x)
        if mode != "none":
            x = self.b(x)
        return x


class ActivationMatched(Choosing):
    def forward(self, x, activation):
        match activation:
            case "relu":
                return self.a(x).relu()
            case "tanh" | "gelu":
                return self.b(x).tanh()
        raise ValueError(activation)


class ModeEnum(Choosing):
    def forward(self, x, mode: Mode):
        return self.a(x) if mode is Mode.FAST else self.b(x)


class ReduceLiteral(Choosing):
    def forward(self, x, reduce: Literal["sum", "mean"]):
        out = self.a(x)
        return out.sum(0) if reduce == "sum" else out.mean(0)


@pytest.mark.parametrize(
    ("model", "argument", "choices", "why"),
    [
        (ModeAnnotatedStr, "mode", ["a", "b"], "annotated str, compared with 'a', 'b' in forward"),
        (ModeComparedOnly, "mode", ["sum", "mean", "none"],
         "a string compared with 'sum', 'mean', 'none' in forward"),
        (ActivationMatched, "activation", ["relu", "tanh", "gelu"],
         "a string compared with 'relu', 'tanh', 'gelu' in forward"),
        (ModeEnum, "mode", Mode, "annotated Mode, an Enum: each member"),
        (ReduceLiteral, "reduce", ["sum", "mean"], "annotated Literal['sum', 'mean']"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) and issubclass(v, nn.Module) else None,
)
def test_string_enum_and_literal_arguments_get_choices(model, argument, choices, why):
    target = resolved(model)
    strategy = target.spec.inputs[argument]
    same(strategy, dst.controls(choices=choices))
    assert target.inferred_inputs[argument] == why
    for choice in choices:  # every choice is drawn, not only the first
        assert find(strategy, lambda value: value == choice) == choice
    assert_callable(target)


def test_string_evidence_wins_over_the_control_like_name():
    # "mode" matches the control-like names, but a mode compared with strings is no float.
    target = resolved(ModeComparedOnly)
    assert repr(target.spec.inputs["mode"]) == "controls(choices=['sum', 'mean', 'none'])"


class Dispatch(Choosing):
    def forward(self, x, name: str):
        return getattr(torch, name)(self.a(x))


def test_a_str_argument_compared_with_no_string_is_uninferable():
    with pytest.raises(TargetError) as info:
        resolved(Dispatch)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(
        ":Dispatch: cannot infer forward argument 'name' of Dispatch (annotated str, but forward "
        "compares it with no string constant); write dyncheck.Spec(Dispatch, "
        "inputs={'name': dyncheck.strategies.controls(choices=[...])})"
    )


# --------------------------------------------------------------------------- counts


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(4)])


class StepsByRange(Counting):
    def forward(self, x, n_steps):
        for _ in range(n_steps):
            x = self.fc(x)
        return x


class DepthBySlice(Counting):
    def forward(self, x, depth):
        for block in self.blocks[:depth]:
            x = block(x)
        return x


class AnyNameInRange(Counting):
    def forward(self, x, k):
        for _ in range(1, k):
            x = self.fc(x)
        return x


class LayersCompared(Counting):
    def forward(self, x, n_layers):
        for i in range(n_layers):
            x = self.blocks[i % 4](x)
        if n_layers > 6:
            x = self.fc(x)
        return x


class Unroll(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(3, 3)

    def forward(self, h, steps):
        for _ in range(steps):
            h = self.cell(h, h)
        return h


class Decoder(nn.Module):
    """The count goes into a submodule as its second argument: its own forward is read
    for that argument, not for the first."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 5)
        self.unroll = Unroll()

    def forward(self, x, num_steps):
        h = self.proj(x)[:, :3]
        return self.unroll(h, num_steps)


class SixSteps(nn.Module):
    # the count indexes six steps, each by the loop's variable: all six must be reachable
    # x reaches a layer only as self.steps[i](x): the first element is its first consumer
    def __init__(self):
        super().__init__()
        self.steps = nn.ModuleList([nn.Linear(3, 3) for _ in range(6)])

    def forward(self, x, num_steps: int):
        for i in range(min(num_steps, len(self.steps))):
            x = self.steps[i](x)
        return x


class SlicedEight(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(8)])

    def forward(self, x, depth):
        for block in self.blocks[:depth]:
            x = block(x)
        return x


class SixStepDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.steps = nn.ModuleList([nn.Linear(3, 3) for _ in range(6)])

    def forward(self, h, n):
        for i in range(min(n, len(self.steps))):
            h = self.steps[i](h)
        return h


class HandedCount(nn.Module):
    # the count handed into a custom layer, which walks its own six steps
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 3)
        self.dec = SixStepDecoder()

    def forward(self, x, num_steps: int):
        return self.dec(self.inp(x), num_steps)


class IterationsCompared(Counting):
    def forward(self, x, n_iters):
        return self.fc(x) if n_iters > 2 else x


@pytest.mark.parametrize(
    ("model", "argument", "low", "high", "thresholds", "why"),
    [
        (StepsByRange, "n_steps", 0, 4, (),
         "a count: used as range(n_steps) in forward; drawn as ints from 0 to 4"),
        (DepthBySlice, "depth", 0, 4, (),
         "a count: used as self.blocks[:depth] in forward; drawn as ints from 0 to 4"),
        (AnyNameInRange, "k", 0, 4, (),
         "a count: used as range(1, k) in forward; drawn as ints from 0 to 4"),
        (LayersCompared, "n_layers", 0, 7, (6,),
         "a count: used as range(n_layers) and compared with 6 in forward; drawn as ints from 0 to 7"),
        (Decoder, "num_steps", 0, 4, (), "a count: used as range(steps) in unroll's forward; drawn as ints from 0 to 4"),
        (IterationsCompared, "n_iters", 0, 4, (2,),
         "a count, by its name; compared with 2 in forward; drawn as ints from 0 to 4"),
        # as far as the container it walks: every step reachable, the last one a dead module before
        (SixSteps, "num_steps", 0, 6, (),
         "a count: used as range(min(num_steps, len(self.steps))) in forward; drawn as ints from 0 to 6"),
        (SlicedEight, "depth", 0, 8, (), "a count: used as self.blocks[:depth] in forward; drawn as ints from 0 to 8"),
        (HandedCount, "num_steps", 0, 6, (),
         "a count: used as range(min(n, len(self.steps))) in dec's forward; drawn as ints from 0 to 6"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_count_like_arguments_are_small_ints(model, argument, low, high, thresholds, why):
    target = resolved(model)
    strategy = target.spec.inputs[argument]
    same(strategy, dst.controls(dtype=int, min_value=low, max_value=high, thresholds=thresholds))
    assert target.inferred_inputs[argument] == why
    assert find(strategy, lambda n: n == high) == high
    assert find(strategy, lambda n: n == low) == low
    assert_callable(target)


# --------------------------------------------------------------------------- batch norm


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))

    def forward(self, x):
        return self.body(x)


def test_batch_norm_narrows_the_batch_to_at_least_two():
    target = resolved(Normed)
    assert dict(target.spec.dims) == {"batch": (2, 4)}
    assert target.inferred_dims == {
        "batch": "body.1 is BatchNorm1d, which in train mode fails on a batch of 1 "
        "('Expected more than 1 value per channel when training')"
    }
    assert_callable(target)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        target.build()(torch.zeros(1, 4))  # what batch size 1 would do


def test_batch_norm_keeps_a_batch_range_the_spec_gives():
    target = resolved(Normed, dims={"batch": (3, 3)})
    assert dict(target.spec.dims) == {"batch": (3, 3)}
    assert target.inferred_dims == {}


def test_no_batch_norm_no_inferred_dims():
    assert resolved(Stack).inferred_dims == {}
    assert "batch" not in resolved(Conv2).spec.dims


# --------------------------------------------------------------------------- *args / **kwargs


class StarInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, *inputs):
        return self.fc(inputs[0])


class KeywordsOnly(StarInputs):
    def forward(self, **kwargs):
        return self.fc(kwargs["x"])


class Both(StarInputs):
    def forward(self, *args, **kwargs):
        return self.fc(args[0])


@pytest.mark.parametrize(
    ("model", "shown"),
    [(StarInputs, "*inputs"), (KeywordsOnly, "**kwargs"), (Both, "*args, **kwargs")],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_forward_with_only_star_arguments_is_a_one_line_error(model, shown):
    name = model.__qualname__
    with pytest.raises(TargetError) as info:
        resolved(model)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(
        f":{name}: {name}.forward takes {shown}; dyncheck passes arguments by name: write a forward "
        "with named arguments, or wrap the model (a factory returning a wrapper module)"
    )


def test_a_data_parallel_wrapper_points_to_the_model_it_wraps():
    # A training script's model, wrapped for several GPUs: its forward takes *inputs.
    def wrapped():
        return nn.DataParallel(nn.Sequential(nn.Linear(4, 3)))

    for fields in ({}, {"inputs": {"x": dst.tensors(shape=("batch", 4))}}):  # with inputs given too
        with pytest.raises(TargetError) as info:
            resolved(wrapped, **fields)
        assert str(info.value).endswith(
            ".wrapped: DataParallel only spreads batches over devices: check the model it wraps, Sequential "
            "(a factory returning it, before the wrapping)"
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's, when torch.compile imports dynamo
def test_a_compiled_model_points_to_the_model_it_compiles():
    # model = torch.compile(model), as training scripts do: its forward takes *args, **kwargs.
    def compiled():
        return torch.compile(nn.Sequential(nn.Linear(4, 3)))

    with pytest.raises(TargetError) as info:
        resolved(compiled)
    assert str(info.value).endswith(
        ".compiled: the model is torch.compile's wrapper of Sequential: check that model (a factory returning it "
        "before torch.compile); --dyncheck-invariants=compile_agreement compares it compiled with eager"
    )


def test_star_arguments_next_to_a_named_one_are_left_alone():
    class Rest(StarInputs):
        def forward(self, x, *rest):
            return self.fc(x)

    target = resolved(Rest)
    assert list(target.spec.inputs) == ["x"]
    assert_callable(target, max_examples=3)


# --------------------------------------------------------------------------- thresholds in range


def control_arguments(strategy) -> dict:
    """The keyword arguments of the ``controls(...)`` call a strategy's repr shows."""
    call = ast.parse(repr(strategy), mode="eval").body
    assert isinstance(call, ast.Call) and call.func.id == "controls"
    return {
        k.arg: k.value.id if isinstance(k.value, ast.Name) else ast.literal_eval(k.value)
        for k in call.keywords
    }


class GateMixed(Gated):
    def forward(self, x, gate):
        if gate > 0.5:
            x = self.fc(x)
        if gate < 3:
            x = x * 2
        return x


class IntFractional(Gated):
    def forward(self, x, level: int):
        if level > 7.5:
            x = self.fc(x)
        return x if level > -2.5 else -x


class CountBothWays(Counting):
    def forward(self, x, n_steps):
        for _ in range(n_steps):
            x = self.fc(x)
        return x if n_steps > -1 else x * 0 + (n_steps >= 9)


@pytest.mark.parametrize(
    ("model", "argument", "fields"),
    [
        (GateAbove, "gate", {}),
        (GateBelowNegative, "gate", {}),
        (GateLarge, "gate", {}),
        (GateMixed, "gate", {}),
        (GateAbove, "gate", {"branches": {"fc": lambda x, gate: gate > 40}}),  # a spec's own threshold
        (IntFractional, "level", {}),
        (CountBothWays, "n_steps", {}),
        (LayersCompared, "n_layers", {}),
    ],
)
def test_inferred_thresholds_lie_inside_the_inferred_range(model, argument, fields):
    target = resolved(model, **fields)
    strategy = target.spec.inputs[argument]
    arguments = control_arguments(strategy)
    low, high = arguments.get("min_value", 0.0), arguments.get("max_value", 1.0)
    assert arguments["thresholds"], arguments
    for threshold in arguments["thresholds"]:
        assert low <= threshold <= high, arguments
        # both sides of every threshold can be drawn
        assert find(strategy, lambda v: float(v) < threshold) is not None
        assert find(strategy, lambda v: float(v) > threshold) is not None
    assert_callable(target, max_examples=3)


# --------------------------------------------------------------------------- arguments handed on


class _GatedBase(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(9, 4)
        self.fc2 = nn.Linear(4, 4)

    def forward(self, x, control):
        h = self.fc1(x)
        if control > 0.3:
            h = self.fc2(h)
        return h


class ViaSuper(_GatedBase):
    def forward(self, x, control):
        return super().forward(x * 2, control)


class ViaSuperExplicit(_GatedBase):
    def forward(self, x, control):
        return super(ViaSuperExplicit, self).forward(x, control=control)


class ViaImpl(_GatedBase):
    """torchvision's form: forward hands everything to ``_forward_impl``."""

    def _forward_impl(self, inputs, gate_value):
        return super().forward(inputs, gate_value)

    def forward(self, x, control):
        return self._forward_impl(x, control)


def _run_gated(model, inputs, switch):
    h = model.fc1(inputs)
    return model.fc2(h) if switch > 0.3 else h


class ViaFunction(_GatedBase):
    def forward(self, x, control):
        return _run_gated(self, inputs=x, switch=control)


@pytest.mark.parametrize("model", [ViaSuper, ViaSuperExplicit, ViaImpl, ViaFunction], ids=lambda m: m.__name__)
def test_an_argument_handed_on_is_followed_with_its_thresholds(model):
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 9)))
    same(target.spec.inputs["control"], dst.controls(thresholds=(0.3,), as_tensor=True))
    assert target.inferred_inputs == {
        "x": "first consumed by fc1 (Linear(in_features=9))",
        "control": "a control value compared with 0.3 in forward; drawn as one-element tensors, like torch.rand(1)",
    }
    assert_callable(target, max_examples=3)


def _apply(layer, t):
    return layer(t).relu()


class ViaModuleArgument(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(6, 6), nn.Linear(6, 3)])

    def forward(self, x):
        return _apply(self.blocks[1], _apply(self.blocks[0], x))


class ViaSubmoduleMethod(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = _Encoder()

    def forward(self, tokens):
        return self.encoder.embed_and_pool(tokens)


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(17, 4)

    def embed_and_pool(self, ids):
        return self._pool(self.embedding(ids))

    def _pool(self, h):
        return h.mean(1)


class ViaRecursiveHelper(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 5)

    def _step(self, h, n):
        return h if n == 0 else self._step(self.fc(h), n - 1)

    def forward(self, x):
        return self._step(x, 2)


class ViaForwardCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc.forward(x)


class TaggerLSTM(nn.LSTM):
    """A subclass of a torch layer whose forward hands its input to torch's own."""

    def __init__(self):
        super().__init__(4, 8, batch_first=True)

    def forward(self, x):
        output, _ = super().forward(x)
        return output


@pytest.mark.parametrize(
    ("model", "argument", "expected", "why"),
    [
        (ViaModuleArgument, "x", dst.tensors(shape=("batch", 6)), "first consumed by blocks.0 (Linear(in_features=6))"),
        (
            ViaSubmoduleMethod,
            "tokens",
            dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=16),
            "first consumed by encoder.embedding (Embedding(num_embeddings=17): integer tokens)",
        ),
        (ViaRecursiveHelper, "x", dst.tensors(shape=("batch", 5)), "first consumed by fc (Linear(in_features=5))"),
        (ViaForwardCall, "x", dst.tensors(shape=("batch", 3)), "first consumed by fc (Linear(in_features=3))"),
        (
            TaggerLSTM,
            "x",
            dst.tensors(shape=("batch", "time", 4)),
            "first consumed by super().forward (TaggerLSTM(input_size=4, batch_first=True))",
        ),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_helpers_submodule_methods_and_torch_parents_are_followed(model, argument, expected, why):
    target = resolved(model)
    same(target.spec.inputs[argument], expected)
    assert target.inferred_inputs == {argument: why}
    assert_callable(target, max_examples=3)


# --------------------------------------------------------------------------- torch layers as targets


def _decoder_layer():
    return nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0)


def _transformer():
    return nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16, dropout=0.0,
                          batch_first=True)


def _linear():
    return nn.Linear(3, 2)


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        ("reference_models.builtin_layers:bidirectional_lstm", {
            "input": (dst.tensors(shape=("batch", "time", 4)), "the target is LSTM(input_size=4, batch_first=True)"),
        }),
        ("reference_models.builtin_layers:time_major_gru", {
            "input": (dst.tensors(shape=("time", "batch", 5)), "the target is GRU(input_size=5, batch_first=False)"),
        }),
        ("reference_models.builtin_layers:encoder_layer", {
            "src": (dst.tensors(shape=("batch", "time", 16)), "the target is TransformerEncoderLayer(d_model=16)"),
            "src_key_padding_mask": (
                dst.attention_masks(batch_size="batch", max_length="time", dtype=torch.bool, marks="padding"),
                "the key padding mask of src (PyTorch's convention): True at padding on the right, False at tokens "
                "(forward takes src_key_padding_mask=None, and a call with a mask of all False gave the output of a "
                "call without one)",
            ),
        }),
        ("reference_models.builtin_layers:encoder", {
            "src": (dst.tensors(shape=("time", "batch", 16)), "the target is TransformerEncoderLayer(d_model=16)"),
        }),
        ("reference_models.builtin_layers:cross_attention", {
            "query": (dst.tensors(shape=("batch", "time", 16)),
                      "the target is MultiheadAttention(embed_dim=16, batch_first=True)"),
            "key": (dst.tensors(shape=("batch", "source", 6)),
                    "the target is MultiheadAttention(kdim=6, batch_first=True); keys and values share the length 'source'"),
            "value": (dst.tensors(shape=("batch", "source", 5)),
                      "the target is MultiheadAttention(vdim=5, batch_first=True); keys and values share the length 'source'"),
        }),
        (_decoder_layer, {
            "tgt": (dst.tensors(shape=("time", "batch", 8)),
                    "the target is TransformerDecoderLayer(d_model=8, batch_first=False: time-major)"),
            "memory": (dst.tensors(shape=("source", "batch", 8)),
                       "the target is TransformerDecoderLayer(d_model=8, batch_first=False: time-major); "
                       "the memory has its own length 'source'"),
        }),
        (_transformer, {
            "src": (dst.tensors(shape=("batch", "source", 8)),
                    "the target is Transformer(d_model=8, batch_first=True); the source has length 'source'"),
            "tgt": (dst.tensors(shape=("batch", "time", 8)),
                    "the target is Transformer(d_model=8, batch_first=True); the target has length 'time'"),
        }),
        (_linear, {"input": (dst.tensors(shape=("batch", 3)), "the target is Linear(in_features=3)")}),
    ],
    ids=lambda v: v.rpartition(":")[2] if isinstance(v, str) else getattr(v, "__name__", None),
)
def test_a_torch_layer_as_the_target_takes_inputs_from_its_attributes(factory, expected):
    if isinstance(factory, str):
        target = resolve(factory)
    else:
        target = resolve_spec(Spec(factory))
    assert list(target.spec.inputs) == list(expected)
    for name, (strategy, why) in expected.items():
        same(target.spec.inputs[name], strategy)
        assert target.inferred_inputs[name] == why
    assert_callable(target, max_examples=3)


def test_a_subclass_of_a_torch_layer_keeping_its_forward_is_one_too():
    class Tagger(nn.GRU):
        def __init__(self):
            super().__init__(3, 4, batch_first=True)

    target = resolve_spec(Spec(Tagger))
    same(target.spec.inputs["input"], dst.tensors(shape=("batch", "time", 3)))
    assert target.inferred_inputs == {"input": "the target is Tagger(input_size=3, batch_first=True)"}


class ViaClosure(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        def project(h):
            return self.fc(h)

        def run():
            return project(x)

        return run()


def test_a_function_defined_inside_forward_is_followed_where_it_is_called():
    target = resolved(ViaClosure)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 7)))
    assert target.inferred_inputs == {"x": "first consumed by fc (Linear(in_features=7))"}


class _Positions(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(16, 4)

    def forward(self, x):
        return self.emb(torch.arange(x.shape[1], device=x.device))


class PositionsFirst(nn.Module):
    """x-transformers' form: a position table called with the tokens, for their length."""

    def __init__(self):
        super().__init__()
        self.pos_emb = _Positions()
        self.token_emb = nn.Embedding(50, 4)

    def forward(self, x):
        positions = self.pos_emb(x)
        return self.token_emb(x) + positions


def test_an_argument_read_for_its_size_only_does_not_make_a_consumer():
    target = resolved(PositionsFirst)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=49))
    assert target.inferred_inputs == {"x": "first consumed by token_emb (Embedding(num_embeddings=50): integer tokens)"}


class ExpandedPositions(nn.Module):
    """RecBole's SASRec and BERT4Rec: positions shaped like the ids (``expand_as``, or
    ``view_as`` of a flat range), looked up before the ids themselves."""

    def __init__(self):
        super().__init__()
        self.position_embedding = nn.Embedding(10, 4)
        self.segment_embedding = nn.Embedding(12, 4)
        self.item_embedding = nn.Embedding(30, 4)

    def forward(self, item_seq):
        position_ids = torch.arange(item_seq.size(1)).unsqueeze(0).expand_as(item_seq)
        segments = torch.arange(item_seq.numel()).remainder(12).view_as(item_seq)
        return (
            self.position_embedding(position_ids) + self.segment_embedding(segments) + self.item_embedding(item_seq)
        )


def test_an_argument_read_for_its_shape_by_expand_as_or_view_as_does_not_make_a_consumer():
    # Before, item_seq was read as the position table's ids, drawn below 10 (or the segment
    # table's, below 12): most of the item table was never looked up.
    target = resolved(ExpandedPositions)
    same(target.spec.inputs["item_seq"], dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=29))
    assert target.inferred_inputs == {
        "item_seq": "first consumed by item_embedding (Embedding(num_embeddings=30): integer tokens)"
    }


class NoiseShapedLike(nn.Module):
    """y is read only for its shape, noise made like it: that noise's layer still says it."""

    def __init__(self):
        super().__init__()
        self.dec = nn.Linear(10, 3)

    def forward(self, z, y):
        return self.dec(torch.cat([z, torch.randn_like(y)], 1))


def test_an_argument_read_only_as_a_noise_template_is_still_inferred():
    # Read as carrying nothing (a first version of the expand_as rule took randn_like so), y
    # had no consumer and the model was refused.
    target = resolved(NoiseShapedLike)
    assert set(target.spec.inputs) == {"z", "y"}
    assert_callable(target, max_examples=3)


class Conv1D(nn.Module):
    """transformers' Conv1D, as GPT-2 uses it: a Linear whose weight is [nx, nf]."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.randn(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.nf)


class GPT2Style(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = Conv1D(12, 5)

    def forward(self, hidden_states):
        return self.c_attn(hidden_states)


def test_gpt2s_conv1d_is_read_as_a_linear():
    target = resolved(GPT2Style)
    same(target.spec.inputs["hidden_states"], dst.tensors(shape=("batch", 5)))
    assert target.inferred_inputs == {"hidden_states": "first consumed by c_attn (Conv1D(nx=5))"}
    assert_callable(target, max_examples=3)


class RequiredMask(nn.Module):
    """attention_mask with no default, used only to mask scores (no layer consumes it)."""

    def __init__(self):
        super().__init__()
        self.embed, self.fc = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids).masked_fill(~attention_mask.bool()[..., None], 0.0)
        return self.fc(h.sum(1))


def test_a_required_attention_mask_beside_token_ids_is_inferred():
    target = resolved(RequiredMask)
    assert strategy_kind(target.spec.inputs["attention_mask"]) == "attention_masks"
    assert_callable(target)


def test_a_required_attention_mask_without_token_ids_is_still_a_one_line_error():
    class NoTokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x, attention_mask):
            return self.fc(x) * attention_mask

    with pytest.raises(TargetError, match=r"cannot infer forward argument 'attention_mask'"):
        resolved(NoTokens)


class Warns(nn.Module):
    def __init__(self):
        super().__init__()
        warnings.warn("built", UserWarning)
        self.fc = nn.Linear(4, 2)

    def forward(self, x, mask=None):
        warnings.warn("called", UserWarning)
        return self.fc(x)


def test_the_probes_calls_warn_nothing_the_constructor_still_does():
    # Resolution's probe calls (nn.TransformerEncoder's nested-tensor notice, three times at
    # the top of `make check`) are dyncheck's own; a warning of building the model is the user's.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resolved(Warns)
    assert [str(w.message) for w in caught] == ["built"]


class _MaxMasked(nn.Module):
    """Its padding mask is as wide as the longest sequence (torchaudio's Conformer builds it so)."""

    def __init__(self, dim=4):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, 1, batch_first=True)

    def padding(self, x, lengths):
        return torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]

    def forward(self, x, lengths):
        return self.attention(x, x, x, key_padding_mask=self.padding(x, lengths), need_weights=False)[0]


class _AnyPadding(_MaxMasked):
    def padding(self, x, lengths):
        return torch.arange(x.shape[1])[None, :] >= lengths[:, None]


class _NeverRuns(_MaxMasked):
    def padding(self, x, lengths):
        raise RuntimeError("not today")


@pytest.mark.parametrize(
    ("model", "padded_to_longest"),
    [(_MaxMasked, True), (_AnyPadding, False), (_NeverRuns, False)],
    ids=["mask-from-lengths-max", "mask-from-padded-length", "raises-on-every-batch"],
)
def test_lengths_are_padded_to_the_longest_when_the_model_takes_no_other_batch(model, padded_to_longest):
    # Only a model that runs on a batch padded to its longest sequence and raises one step
    # past it; a model that raises on both is left to report its own crash.
    target = resolve_spec(Spec(model))
    lengths = target.spec.inputs["lengths"]
    assert strategy_arguments(lengths).get("pad_to_longest", False) is padded_to_longest
    if padded_to_longest:
        assert target.inferred_inputs["lengths"].endswith(
            "; the longest always the padded length (pad_to_longest=True): with every sequence one step shorter "
            "than the padded length 2 it raised AssertionError (Expected key_padded_mask.shape[1] to be 2, but got 1)"
        ), target.inferred_inputs["lengths"]
        assert repr(lengths) == "sequence_lengths(pad_to_longest=True)"


class SubsampledMask(nn.Module):
    """A padding mask as wide as the longest subsampled length (ESPnet's make_pad_mask)."""

    def __init__(self):
        super().__init__()
        self.conv, self.proj = nn.Conv1d(8, 12, kernel_size=3, stride=2), nn.Linear(12, 5)

    def forward(self, feats, lengths):
        h = torch.relu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
        out_lengths = torch.div(lengths - 3, 2, rounding_mode="floor") + 1
        mask = torch.arange(int(out_lengths.max()))[None, :] < out_lengths[:, None]
        h = h.clone()
        h[~mask] = 0.0
        return self.proj(h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1))


class AtariDQN(nn.Module):
    """The Nature DQN's stack on 84x84 frames: the Linear after Flatten takes one size only,
    beyond the sizes the probe scans."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(4, 8, 8, stride=4), nn.ReLU(), nn.Conv2d(8, 8, 4, stride=2), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=1), nn.ReLU(), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Linear(8 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.head(self.conv(x / 255.0))


class TeacherForced(nn.Module):
    """A decoder step fed its target or its own prediction, as a teacher_forcing_ratio says."""

    def __init__(self):
        super().__init__()
        self.cell, self.out = nn.GRUCell(4, 4), nn.Linear(4, 4)

    def forward(self, target, teacher_forcing_ratio):
        h, x, outputs = target.new_zeros(target.shape[0], 4), target[:, 0], []
        for t in range(target.shape[1]):
            h = self.cell(x, h)
            outputs.append(self.out(h))
            x = target[:, t] if random.random() < teacher_forcing_ratio else outputs[-1]
        return torch.stack(outputs, 1)


class MaskedPolicy(nn.Module):
    """An RL policy's logits with invalid actions masked: the mask is as wide as the logits."""

    def __init__(self):
        super().__init__()
        self.body, self.pi = nn.Linear(8, 16), nn.Linear(16, 5)

    def forward(self, obs, action_mask):
        logits = self.pi(torch.tanh(self.body(obs)))
        return logits.masked_fill(~action_mask.bool(), -1e8)


def test_a_mask_no_layer_reads_is_refused_with_the_width_of_what_it_masks():
    with pytest.raises(TargetError) as excinfo:
        resolved(MaskedPolicy)
    assert str(excinfo.value).endswith(
        "cannot infer forward argument 'action_mask' of MaskedPolicy (no layer in forward consumes it; it masks "
        "self.pi(...) (5 features) through masked_fill); write dyncheck.Spec(MaskedPolicy, inputs={'action_mask': "
        "dyncheck.strategies.tensors(shape=(\"batch\", 5), dtype=torch.bool)})"
    )


class RecurrentPolicy(nn.Module):
    """A recurrent policy whose hidden state is reset where an episode ended."""

    def __init__(self):
        super().__init__()
        self.encoder, self.gru, self.pi = nn.Linear(8, 12), nn.GRUCell(12, 12), nn.Linear(12, 4)

    def forward(self, obs, hidden, done):
        hidden = hidden * (1.0 - done.float()).unsqueeze(-1)
        hidden = self.gru(torch.relu(self.encoder(obs)), hidden)
        return self.pi(hidden), hidden


def test_done_flags_are_one_value_per_sample_from_0_to_1():
    target = resolved(RecurrentPolicy)
    same(target.spec.inputs["done"], dst.tensors(shape=("batch",), min_value=0.0, max_value=1.0))
    assert target.inferred_inputs["done"].endswith(
        "on ['batch'] it ran; named like an episode's done flags: drawn from 0 to 1"
    ), target.inferred_inputs["done"]
    assert_callable(target)


def test_done_flags_beside_a_sequence_are_one_per_step_and_sample():
    # CleanRL's get_states: inferred from the LSTM whose state they scale, the flags were
    # drawn [time, batch, 8], reshaped into other environments' flags: a false
    # batch_invariance failure
    from reference_models.episode_lstm import EpisodeLSTMAgent

    target = resolved(EpisodeLSTMAgent)
    same(target.spec.inputs["done"], dst.tensors(shape=("time", "batch"), min_value=0.0, max_value=1.0))
    assert target.inferred_inputs["done"] == (
        "named like an episode's done flags: one per step and sample, ('time', 'batch') as the input beside it "
        "(not ('time', 'batch', 8), the layer's it reaches), drawn from 0 to 1"
    )
    assert_callable(target)
    # torchrl's is_init, a condition of torch.where: booleans
    target = resolved(_WhereReset)
    same(target.spec.inputs["is_init"], dst.tensors(shape=("time", "batch"), dtype=torch.bool))
    assert target.inferred_inputs["is_init"].endswith("drawn booleans (it runs on no floats there)")
    assert_callable(target)
    # tried at a batch of 2 and 3 steps (at 1 and 1 any layout broadcasts): a sequence's
    # episode start, one per sample (sb3's h0 * (1 - episode_starts).view(1, -1, 1)) ...
    target = resolved(_StartedSequence)
    same(target.spec.inputs["episode_starts"], dst.tensors(shape=("batch",), min_value=0.0, max_value=1.0))
    assert_callable(target)
    # ... and a state scaled whole keeps the layer's shape
    same(resolved(RecurrentPolicy).spec.inputs["done"], dst.tensors(shape=("batch",), min_value=0.0, max_value=1.0))
    target = resolved(_ScaledState)
    same(target.spec.inputs["done"], dst.tensors(shape=("batch", 8), min_value=0.0, max_value=1.0))
    assert_callable(target)


class _StartedSequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 8, batch_first=True)

    def forward(self, x, h0, episode_starts):
        return self.gru(x, h0 * (1.0 - episode_starts).view(1, -1, 1))[0]


class _ScaledState(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.cell = nn.Linear(4, 8), nn.GRUCell(8, 8)

    def forward(self, obs, h, done):
        return self.cell(torch.relu(self.enc(obs)), h * (1.0 - done))


class _WhereReset(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(4, 8)

    def forward(self, obs, h, is_init):
        outs = []
        for t in range(obs.shape[0]):
            h = self.cell(obs[t], torch.where(is_init[t].unsqueeze(-1), torch.zeros_like(h), h))
            outs.append(h)
        return torch.stack(outs)


def test_a_ratio_no_layer_reads_is_a_probability():
    target = resolved(TeacherForced, inputs={"target": dst.tensors(shape=("batch", "time", 4))})
    same(target.spec.inputs["teacher_forcing_ratio"], dst.controls())
    assert target.inferred_inputs["teacher_forcing_ratio"] == "a probability, by its name; drawn as floats from 0 to 1"
    assert_callable(target)


def test_a_conv_stack_into_a_linear_gets_the_size_it_takes_from_the_arithmetic():
    from dyncheck.target import _flattened_sizes

    assert _flattened_sizes(AtariDQN(), 2)[:1] == [84]
    target = resolved(AtariDQN)
    assert target.spec.dims["height"] == target.spec.dims["width"] and target.spec.dims["height"][0] == 84
    assert target.inferred_dims["height"].endswith("84 is the smallest size that ran")
    assert_callable(target, max_examples=3)


def test_lengths_too_short_for_a_kernel_are_a_shortest_row_not_padding_to_the_longest():
    # A CTC model subsamples with a kernel of 3: a row of 2 frames has no output frame and
    # packing it raises, at the padded length 3 as at any other; one step shorter at a
    # longer padded length runs.
    from reference_models.ctc_model import CTCModel

    target = resolve_spec(Spec(CTCModel))
    lengths = target.spec.inputs["lengths"]
    assert repr(lengths) == "sequence_lengths(max_length='length', min_length=3)"
    assert target.inferred_inputs["lengths"].endswith(
        "; at least 3 valid a row (min_length=3): with 1 it raised RuntimeError (Length of all samples has to be "
        "greater than 0, but found an element in 'lengths' that is <= 0)"
    )
    assert_callable(target, max_examples=10)
    # A mask over the subsampled frames as wide as the longest: one step shorter at padded
    # length 4 rounds to as many frames (it runs), at 5 and 6 it does not; padded to the longest.
    target = resolve_spec(Spec(SubsampledMask))
    assert strategy_arguments(target.spec.inputs["lengths"]).get("pad_to_longest") is True
    assert_callable(target, max_examples=10)


class _FramesThroughConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 4, 3, padding=1)

    def forward(self, x, lengths):
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


def test_lengths_follow_the_axis_a_conv1d_reads():
    # A Conv1d names its sequence axis "length": lengths drawn for another "time" would not
    # describe it (they could be longer than the input), so they are drawn for "length".
    target = resolve_spec(Spec(_FramesThroughConv1d))
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "length", 8)
    assert repr(target.spec.inputs["lengths"]) == "sequence_lengths(max_length='length')"
    assert "the padded length 'length' (x's sequence axis)" in target.inferred_inputs["lengths"]
    example = find(from_target(target), lambda e: True)
    assert int(example.args["lengths"].max()) <= example.args["x"].shape[1]


def test_attention_mask_is_never_the_decoders():
    # Speech2Text: float input_features for the encoder, token ids for the decoder only. The
    # attention_mask is the encoder's frames', not the decoder tokens'.
    from dyncheck.infer import infer_attention_mask

    def forward(self, input_features, attention_mask=None, decoder_input_ids=None):
        pass

    parameters = dict(list(__import__("inspect").signature(forward).parameters.items())[1:])
    tokens = dst.tensors(shape=("batch", "target"), dtype=torch.long, min_value=0, max_value=9)
    features = dst.tensors(shape=("batch", "time", 8))
    found = infer_attention_mask(parameters, {"input_features": features, "decoder_input_ids": tokens}, {})
    assert found is not None and found.why.startswith("the mask of input_features: 1 at each valid frame")
    assert strategy_arguments(found.value).get("max_length", "time") == "time"
    other = dict(parameters)
    other["features"] = other.pop("input_features")
    assert infer_attention_mask(other, {"features": features, "decoder_input_ids": tokens}, {}) is None
    found = infer_attention_mask(parameters, {"input_ids": tokens, "decoder_input_ids": tokens}, {})
    assert found is not None and found.why.startswith("the mask of input_ids")


class _Subsampler(nn.Module):
    """Speech2Text's Conv1dSubsampler: frames [batch, time, features], transposed for the convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 4, 3, stride=2)

    def forward(self, features):
        return self.conv(features.transpose(1, 2).contiguous()).transpose(1, 2)


class _SpeechEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.subsample = _Subsampler()
        self.out = nn.Linear(4, 3)

    def forward(self, input_features):
        return self.out(self.subsample(input_features))


def test_a_conv1d_input_the_model_transposes_on_the_way_is_drawn_channels_last():
    # Seen from forward, input_features reach a Conv1d(8): channels first. The submodule
    # transposes it (`.contiguous()` after the transpose once hid it, and only the probe found
    # that channels last runs at every length).
    target = resolve_spec(Spec(_SpeechEncoder))
    assert strategy_arguments(target.spec.inputs["input_features"])["shape"] == ("batch", "length", 8)
    why = target.inferred_inputs["input_features"]
    assert why.endswith("reached through transpose(1, 2) in _Subsampler)"), why
    assert isinstance(target.spec.dims["length"], tuple) and target.spec.dims["length"][1] > target.spec.dims["length"][0]
    # A Conv1d the model feeds channels first keeps them first.
    conv = resolve_spec(Spec(nn.Conv1d, init={"in_channels": 8, "out_channels": 4, "kernel_size": 3}))
    assert strategy_arguments(conv.spec.inputs["input"])["shape"][1] == 8


class _Frames(nn.Module):
    """Hugging Face's audio convention: input_values [batch, samples] and their attention_mask;
    a row needs 4 valid samples for the strided convolution to leave it a frame."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 4, stride=2)

    def forward(self, input_values=None, attention_mask=None):
        frames = self.conv(input_values[:, None]).transpose(1, 2)  # [batch, frames, 4]
        if attention_mask is None:
            return frames.mean(1)
        valid = (attention_mask.sum(-1) - 4) // 2 + 1  # frames inside each row's samples
        if bool((valid < 1).any()):
            raise IndexError("a row with no frame")
        keep = torch.arange(frames.shape[1])[None, :] < valid[:, None]
        return (frames * keep[..., None]).sum(1) / valid[:, None]


def test_an_audio_mask_is_inferred_with_the_fewest_samples_a_row_needs():
    target = resolve_spec(Spec(_Frames))
    mask = target.spec.inputs["attention_mask"]
    assert strategy_kind(mask) == "attention_masks"
    assert strategy_arguments(mask)["max_length"] == strategy_arguments(target.spec.inputs["input_values"])["shape"][1]
    assert strategy_arguments(mask)["min_length"] == 4
    why = target.inferred_inputs["attention_mask"]
    assert why.startswith("the mask of input_values: 1 at each valid sample, 0 at padding on the right"), why
    assert why.endswith("; at least 4 valid a row (min_length=4): with 1 it raised IndexError (a row with no frame)"), why


class UnsortedPacking(nn.Module):
    """pack_padded_sequence with enforce_sorted=False: any order of lengths runs."""

    def __init__(self):
        super().__init__()
        self.embed, self.rnn = nn.Embedding(10, 4), nn.GRU(4, 3, batch_first=True)

    def forward(self, tokens, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        return self.rnn(packed)[1][-1]


class TimeMajorHidden(nn.Module):
    """A bidirectional, time-major GRU whose initial state is given by keyword."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 4, num_layers=2, bidirectional=True)

    def forward(self, x, h0):
        return self.rnn(x, hx=h0)[0]


def test_the_hidden_state_an_rnn_is_given_is_drawn_as_one():
    from reference_models.hidden_state import HiddenStateLM

    target = resolved(HiddenStateLM)
    assert strategy_arguments(target.spec.inputs["hidden"])["shape"] == (2, "batch", 8)
    assert target.inferred_inputs["hidden"] == (
        "first consumed by gru (GRU(hidden_size=8, num_layers=2): its initial hidden state, in [-1, 1] as tanh "
        "leaves one)"
    )
    assert_callable(target, max_examples=10)
    # Batch second whatever batch_first says; layers times directions first; by keyword too.
    target = resolved(TimeMajorHidden)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("time", "batch", 5)
    assert strategy_arguments(target.spec.inputs["h0"])["shape"] == (4, "batch", 4)
    assert_callable(target, max_examples=10)


def test_an_embedding_bags_offsets_are_drawn_as_none_and_its_rows_are_the_bags():
    """Drawn as a second batch of tokens, the offsets beside a [batch, time] input were
    refused by the layer on every example."""
    from reference_models.bag_classifier import BagClassifier

    target = resolved(BagClassifier)
    assert strategy_arguments(target.spec.inputs["text"])["shape"] == ("batch", "time")
    assert find(target.spec.inputs["offsets"], lambda _: True) is None
    assert target.inferred_inputs["offsets"].startswith(
        "handed to embedding as its bags' offsets: drawn as None, so the bags are the rows of its input"
    )
    assert_callable(target, max_examples=10)


class RaggedBags(nn.Module):
    """The wrapper the offsets' note names, for code that needs ragged bags: a list of bags,
    concatenated, with their offsets."""

    def __init__(self):
        super().__init__()
        self.embedding, self.fc = nn.EmbeddingBag(40, 8, mode="mean"), nn.Linear(8, 3)

    def forward(self, bags: list[torch.Tensor]):
        offsets = torch.tensor([0] + [len(b) for b in bags[:-1]]).cumsum(0)
        return self.fc(self.embedding(torch.cat(bags), offsets))


def test_ragged_bags_given_as_a_list_are_drawn_bag_by_bag():
    target = resolved(RaggedBags)
    assert strategy_kind(target.spec.inputs["bags"]) == "sequence_lists"
    assert strategy_arguments(target.spec.inputs["bags"])["max_value"] == 39
    assert_callable(target, max_examples=10)


class _LatentState(nn.Module):
    """z is a latent [batch, 16]: projected for the output, and unsqueezed as the GRU's h0."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)
        self.gru = nn.GRU(8, 16, batch_first=True)

    def forward(self, x, z):
        bias = self.fc(z)
        out, _ = self.gru(x, z.unsqueeze(0))
        return out[:, -1, :4] + bias


class _CellStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(8, 16)

    def forward(self, x, h):
        return self.cell(x, h)


class _BagEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(50, 8, mode="sum")

    def forward(self, text, offsets, weights):
        return self.bag(text, offsets, per_sample_weights=weights)


class _WrappedBag(nn.Module):
    """The EmbeddingBag inside a submodule, its per-token weights given by keyword."""

    def __init__(self):
        super().__init__()
        self.encoder = _BagEncoder()
        self.fc = nn.Linear(8, 3)

    def forward(self, text, offsets, weights):
        return self.fc(self.encoder(text, offsets, weights))


def test_lengths_handed_to_pack_padded_sequence_in_a_submodule_are_the_lengths():
    """src_len is no lengths' name: found where the encoder hands it, as the tokens' layout
    is found where the encoder embeds and packs them (time-major)."""
    from reference_models.packed_seq2seq import PackedSeq2Seq

    target = resolved(PackedSeq2Seq)
    assert target.spec.lengths == "src_len"
    assert target.inferred_inputs["src_len"] == (
        "handed to pack_padded_sequence as its lengths: one per sample, each between 1 and the padded length 'time'"
    )
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    assert target.inferred_inputs["src"].endswith("time-major, as pack_padded_sequence has batch_first=False")
    assert strategy_arguments(target.spec.inputs["trg"])["shape"] == ("time", "batch")
    assert_callable(target, max_examples=10)
    # --dyncheck-explain marks them as inferred
    from dyncheck._report import explain

    assert "    # inferred lengths: src_len is handed to pack_padded_sequence as its lengths" in explain(target)


def _time_major_transformer() -> nn.Transformer:
    """nn.Transformer(8, 2, 1, 1, 16), time-major, its encoder told to take no nested tensors."""
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    encoder = nn.TransformerEncoder(layer, 1, nn.LayerNorm(8), enable_nested_tensor=False)
    return nn.Transformer(8, 2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0, custom_encoder=encoder)


class _MaskByHelper(__import__("reference_models.packed_seq2seq", fromlist=["x"]).PackedSeq2Seq):
    """The mask made by a helper that moves its axes (the seq2seq tutorials' create_mask)."""

    def create_mask(self, src):
        return (src != 0).permute(1, 0)

    def forward(self, src, src_len, trg):
        memory, hidden = self.encoder(src, src_len)
        mask = self.create_mask(src)
        scores = []
        for t in range(1, trg.size(0)):
            score, hidden = self.decoder(trg[t - 1], hidden, memory, mask)
            scores.append(score)
        return torch.stack(scores) if scores else memory.new_zeros(0, trg.size(1), 20)


def test_axes_a_helper_moves_on_a_mask_do_not_move_the_ids_on_their_way_to_the_encoder():
    target = resolved(_MaskByHelper)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")


class _Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)

    def forward(self, tokens):
        return self.embedding(tokens.long()) * 8**0.5


class _EmbeddedApart(nn.Module):
    """The translation tutorials' layout: ids embedded by a submodule of their own, then a
    time-major nn.Transformer in forward."""

    def __init__(self):
        super().__init__()
        self.src_emb, self.tgt_emb = _Embed(), _Embed()
        self.transformer = _time_major_transformer()
        self.out = nn.Linear(8, 20)

    def forward(self, src, tgt):
        return self.out(self.transformer(self.src_emb(src), self.tgt_emb(tgt)))


class _TransposedIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.core = _EmbeddedApart()

    def forward(self, src, tgt):
        return self.core(src.t(), tgt.t())


class _TimeMajorCore(nn.Module):
    def __init__(self, batch_first=False):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = nn.GRU(8, 8, batch_first=batch_first)

    def forward(self, ids):
        return self.rnn(self.emb(ids))[0]


class _PermutedIn(nn.Module):
    """Batch-first ids, turned time-major for a time-major core."""

    def __init__(self, batch_first=False):
        super().__init__()
        self.core = _TimeMajorCore(batch_first)
        self.out = nn.Linear(8, 3)

    def forward(self, src):
        return self.out(self.core(src.permute(1, 0)))


class _TransposedForBatchFirst(_PermutedIn):
    def __init__(self):
        super().__init__(batch_first=True)

    def forward(self, src):
        return self.out(self.core(src.t()))


def test_ids_swapped_in_the_call_take_the_submodules_layout_swapped_back():
    # permute(1, 0) into a time-major core: the ids are batch first; t() into a batch-first
    # core: they are time-major.
    assert strategy_arguments(resolved(_PermutedIn).spec.inputs["src"])["shape"] == ("batch", "time")
    assert strategy_arguments(resolved(_TransposedForBatchFirst).spec.inputs["src"])["shape"] == ("time", "batch")


def test_a_submodule_that_only_embeds_the_ids_leaves_their_layout_to_forward():
    # Nothing in _Embed says a layout: the transformer after it, in forward, is time-major.
    target = resolved(_EmbeddedApart)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    assert strategy_arguments(target.spec.inputs["tgt"])["shape"] == ("time", "batch")
    # Handed on transposed (src.t()): forward arranges the layout itself, batch first.
    target = resolved(_TransposedIn)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("batch", "time")


class _TokensMaskedByValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1,
                                         enable_nested_tensor=False)

    def forward(self, tokens):
        return self.enc(self.emb(tokens), src_key_padding_mask=tokens.eq(0))


class _MaskAlsoPooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1,
                                         enable_nested_tensor=False)

    def forward(self, tokens, padding_mask):
        h = self.enc(self.emb(tokens), src_key_padding_mask=padding_mask)
        keep = (~padding_mask).unsqueeze(-1).float()
        return (h * keep).sum(1)


class _CheckedMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.transformer = _time_major_transformer()

    def forward(self, src, tgt, src_mask, padding_mask):
        assert src_mask is None or src_mask.dim() == 2
        # one mask for the source and the memory
        return self.transformer(self.emb(src), self.emb(tgt), src_mask, src_key_padding_mask=padding_mask,
                                memory_key_padding_mask=padding_mask)


def test_a_mask_tested_against_none_or_given_twice_to_the_transformer_is_still_a_mask():
    target = resolved(_CheckedMask)
    for name in ("src_mask", "padding_mask"):
        assert find(target.spec.inputs[name], lambda _: True) is None, name
    assert_callable(target, max_examples=5)


class _DemandedMask(_CheckedMask):
    def forward(self, src, tgt, src_mask, padding_mask):
        assert src_mask is not None
        if padding_mask is None:
            raise ValueError("give the padding mask")
        return self.transformer(self.emb(src), self.emb(tgt), src_mask, src_key_padding_mask=padding_mask)


class _ReadBeforeTest(_CheckedMask):
    def forward(self, src, tgt, src_mask, padding_mask):
        assert src_mask.dim() == 2 or src_mask is None
        return self.transformer(self.emb(src), self.emb(tgt), src_mask, src_key_padding_mask=padding_mask)


def test_a_mask_forward_demands_or_reads_before_testing_it_is_not_drawn_as_none():
    # Not None, and nothing else says its shape: the one-line request for a Spec.
    from dyncheck.errors import TargetError

    for model in (_DemandedMask, _ReadBeforeTest):
        with pytest.raises(TargetError, match="cannot infer forward argument 'src_mask' of"):
            resolved(model)
    target = resolved(_ReadBeforeTest, inputs={"src_mask": st.none()})
    assert find(target.spec.inputs["padding_mask"], lambda _: True) is None  # read only in the call


def test_a_mask_made_from_the_tokens_or_read_again_is_not_drawn_as_none():
    # tokens.eq(0) is not the tokens; a mask forward also reads itself cannot be None.
    target = resolved(_TokensMaskedByValue)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("batch", "time")
    target = resolved(_MaskAlsoPooled)
    assert find(target.spec.inputs["padding_mask"], lambda _: True) is not None


def test_masks_handed_to_a_transformer_in_their_places_are_drawn_as_none():
    """Followed past the transformer, each mask was drawn as the output layer's input."""
    from reference_models.translation_transformer import TranslationTransformer

    target = resolved(TranslationTransformer)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    for name, place in [("src_mask", "src_mask"), ("tgt_mask", "tgt_mask"), ("src_padding_mask", "src_key_padding_mask"),
                        ("tgt_padding_mask", "tgt_key_padding_mask"),
                        ("memory_key_padding_mask", "memory_key_padding_mask")]:
        assert find(target.spec.inputs[name], lambda _: True) is None
        assert target.inferred_inputs[name].startswith(f"handed to transformer as its {place}: drawn as None, no mask")
    assert_callable(target, max_examples=10)


class _LatentIndexed(_LatentState):
    def forward(self, x, z):
        bias = self.fc(z)
        out, _ = self.gru(x, z[None])
        return out[:, -1, :4] + bias


@pytest.mark.parametrize("model", [_LatentState, _LatentIndexed])
def test_a_state_given_through_a_reshape_is_not_the_argument_itself(model):
    # z.unsqueeze(0) (or z[None]) is the GRU's state, z is not: its own consumer, the Linear,
    # says [batch, 16].
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["z"])["shape"] == ("batch", 16)
    assert_callable(target, max_examples=10)


def test_a_cells_state_has_its_hidden_size():
    target = resolved(_CellStep)
    assert strategy_arguments(target.spec.inputs["h"])["shape"] == ("batch", 16)
    assert target.inferred_inputs["h"].startswith("first consumed by cell (GRUCell(hidden_size=16): its hidden state")
    assert_callable(target, max_examples=10)


def test_an_embedding_bag_inside_a_submodule_and_its_per_token_weights():
    target = resolved(_WrappedBag)
    assert find(target.spec.inputs["offsets"], lambda _: True) is None
    assert strategy_arguments(target.spec.inputs["weights"])["shape"] == ("batch", "time")
    assert strategy_arguments(target.spec.inputs["weights"]).get("dtype", torch.float32) == torch.float32
    assert_callable(target, max_examples=10)


def test_a_state_read_through_a_permute_first_is_still_the_rnns_initial_state():
    """A seq2seq decoder's attention reads ``hidden.permute(1, 0, 2)`` before its GRU takes
    ``hidden``: read as the attention's input, the state was drawn [batch, time, hidden]
    and ran only where batch and time were 1."""
    from reference_models.attention_decoder import AttentionDecoder

    target = resolved(AttentionDecoder)
    assert strategy_arguments(target.spec.inputs["encoder_hidden"])["shape"] == (1, "batch", 12)
    assert target.inferred_inputs["encoder_hidden"] == (
        "handed as the initial state to gru (GRU(hidden_size=12, num_layers=1): its initial hidden state, in "
        "[-1, 1] as tanh leaves one)"
    )
    assert strategy_arguments(target.spec.inputs["encoder_outputs"])["shape"] == ("batch", "time", 12)
    assert_callable(target, max_examples=10)


class ProjectedState(nn.Module):
    """An LSTM with proj_size, its (h_0, c_0) given by keyword: h_0 has the projected size."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 6, num_layers=1, proj_size=3, batch_first=True)

    def forward(self, x, state):
        return self.rnn(x, hx=state)[0]


class TransposedTokens(nn.Module):
    """Token ids batch-first, made time-major in forward for a time-major GRU."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.rnn = nn.GRU(4, 4)

    def forward(self, tokens):
        emb = self.embed(tokens)
        emb = emb.transpose(0, 1)
        return self.rnn(emb)[0].transpose(0, 1)


class FeaturesIntoEncoder(nn.Module):
    """Features read by a Linear, then by a transformer encoder in the layout ``batch_first`` says."""

    def __init__(self, batch_first=True, one_step=False):
        super().__init__()
        self.proj = nn.Linear(6, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.one_step = one_step

    def forward(self, x):
        h = self.proj(x)
        return self.encoder(h.unsqueeze(1) if self.one_step else h)


class TimeMajorFeatures(FeaturesIntoEncoder):
    def __init__(self):
        super().__init__(batch_first=False)


class OneStepFeatures(FeaturesIntoEncoder):
    def __init__(self):
        super().__init__(one_step=True)


class TransposedBeforeRNN(nn.Module):
    """DeepSpeech's shape: features [batch, time, F] through a Linear, transposed for a time-major RNN."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.rnn = nn.GRU(8, 8)

    def forward(self, x):
        x = self.fc(x)
        x = x.transpose(0, 1)
        return self.rnn(x)[0]


class TransposedAfterRNN(nn.Module):
    """A time-major tagger whose output is transposed after the RNN: the input stays time-major."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.rnn = nn.GRU(4, 4)

    def forward(self, tokens):
        out, _ = self.rnn(self.embed(tokens))
        return out.transpose(0, 1)


class InlineTransposeEncoder(nn.Module):
    """Batch-first ids, transposed in the call of a time-major encoder."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

    def forward(self, ids):
        h = self.emb(ids)
        return self.enc(h.transpose(0, 1)).transpose(0, 1)


class StepLoop(nn.Module):
    """A teacher-forced decoder: batch-first ids, one time-major step of the GRU at a time."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.rnn = nn.GRU(8, 8)
        self.out = nn.Linear(8, 20)

    def forward(self, tokens):
        emb = self.embed(tokens)
        h, outs = None, []
        for t in range(emb.size(1)):
            o, h = self.rnn(emb[:, t].unsqueeze(0), h)
            outs.append(self.out(o[0]))
        return torch.stack(outs, dim=1)


class OneTimeMajorStep(nn.Module):
    """Vectors made one time-major step of a GRU."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.gru = nn.GRU(16, 16)

    def forward(self, x):
        return self.gru(self.fc(x).unsqueeze(0))[0].squeeze(0)


class InitFromContext(nn.Module):
    """A context vector whose projection is a time-major GRU's initial state."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 16)
        self.init = nn.Linear(8, 16)

    def forward(self, x, context):
        h0 = torch.tanh(self.init(context)).unsqueeze(0)
        return self.gru(x, h0)[0]


class InnerEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, 0.0), 1, enable_nested_tensor=False)

    def forward(self, x):
        return self.enc(x)


class SubmoduleTimeMajor(nn.Module):
    """A time-major encoder inside a submodule of the model's own: the source does not connect it."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.inner = InnerEncoder()

    def forward(self, src):
        return self.inner(self.emb(src))


class TransposedPackWithState(nn.Module):
    """Batch-first ids transposed into a time-major pack, an LSTM state from the caller (a
    tuple: no call confirms the layout, the source alone decides)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8)

    def forward(self, tokens, lengths, hidden):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.emb(tokens).transpose(0, 1), lengths.cpu(), enforce_sorted=False
        )
        return self.lstm(packed, hidden)[1][0][-1]


class DecoderWithMemory(nn.Module):
    """A time-major transformer decoder over the encoder's output (memory) beside target ids."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 8)
        self.dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, 0.0), 1)
        self.fc = nn.Linear(8, 12)

    def forward(self, tgt, memory):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(0))
        return self.fc(self.dec(self.emb(tgt), memory, tgt_mask=mask))


class TransposedMaskBeside(nn.Module):
    """Time-major ids, and a padding mask [time, batch] transposed in the encoder's call."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, 0.0), 1, enable_nested_tensor=False)

    def forward(self, src, mask):
        return self.enc(self.emb(src), src_key_padding_mask=mask.t())


class UnpackedState(nn.Module):
    """An LSTM state passed as one argument and unpacked in forward: ``h, c = state``."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 4, batch_first=True)

    def forward(self, x, state):
        h, c = state
        return self.lstm(x, (h, c))[0]


class PermutedIntoLSTM(nn.Module):
    """Features [batch, time, F] permuted by forward for a time-major LSTM, its first consumer."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 4)

    def forward(self, x):
        return self.lstm(x.permute(1, 0, 2))[0].permute(1, 0, 2)


def test_a_permute_that_swaps_two_axes_into_the_first_consumer_is_a_transpose():
    target = resolved(PermutedIntoLSTM)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 5)
    assert target.inferred_inputs["x"].endswith("; it reaches lstm through transpose(0, 1)")
    assert_callable(target, max_examples=5)


def test_sequences_beside_time_major_ids_and_what_the_input_enters_as():
    # The memory a time-major decoder reads beside time-major ids: a sequence in their layout.
    target = resolved(DecoderWithMemory)
    assert strategy_arguments(target.spec.inputs["tgt"])["shape"] == ("time", "batch")
    assert strategy_arguments(target.spec.inputs["memory"])["shape"] == ("time", "batch", 8)
    assert_callable(target, max_examples=5)
    # A mask transposed beside the ids in the layer's call moves no axis of the ids (the
    # Spec gives the mask, so no call confirms the layout: the source decides).
    target = resolved(TransposedMaskBeside, inputs={"mask": dst.tensors(shape=("time", "batch"), dtype=torch.bool)})
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    # An argument unpacked into both members of the state is the whole tuple.
    target = resolved(UnpackedState)
    assert len(strategy_members(target.spec.inputs["state"])) == 2
    assert_callable(target, max_examples=5)


def test_a_transpose_before_a_time_major_pack_keeps_the_ids_batch_first():
    target = resolved(TransposedPackWithState)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("batch", "time")
    assert_callable(target, max_examples=5)


def test_a_layout_the_source_suggests_is_confirmed_by_calling_the_model():
    # A transpose in the layer's own call arranges the layout: the ids stay batch-first.
    target = resolved(InlineTransposeEncoder)
    assert strategy_arguments(target.spec.inputs["ids"])["shape"] == ("batch", "time")
    assert_callable(target, max_examples=5)
    # Steps taken one at a time: time-major ids mixed the samples, so they stay batch-first.
    target = resolved(StepLoop)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("batch", "time")
    assert target.inferred_inputs["tokens"] == (
        "first consumed by embed (Embedding(num_embeddings=20): integer tokens); ['batch', 'time'], not "
        "['time', 'batch']: on ['time', 'batch'] a sample's outputs depended on the other sample in its batch"
    )
    assert_callable(target, max_examples=5)
    # A time-major layer the source does not connect the ids to: only [time, batch] keeps the samples apart.
    target = resolved(SubmoduleTimeMajor)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    assert target.inferred_inputs["src"].endswith(
        "; time-major: on ['batch', 'time'] a sample's outputs depended on the other sample in its batch, "
        "on ['time', 'batch'] each sample's were its own"
    )
    assert_callable(target, max_examples=5)
    # Vectors made one step, or an initial state, of a time-major GRU: sequences raise.
    for model, name in ((OneTimeMajorStep, "x"), (InitFromContext, "context")):
        target = resolved(model)
        assert strategy_arguments(target.spec.inputs[name])["shape"] == ("batch", 8), model
        assert ", not ['time', 'batch', 8]: on ['time', 'batch', 8] the model raised" in target.inferred_inputs[name]
        assert_callable(target, max_examples=5)


def test_features_a_linear_reads_before_a_sequence_layer_are_a_sequence():
    # Drawn as vectors [batch, 6], they ran, and the encoder read the batch as one sequence.
    target = resolved(FeaturesIntoEncoder)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 6)
    assert target.inferred_inputs["x"] == "first consumed by proj (Linear(in_features=6)); a sequence, as encoder takes one"
    assert_callable(target, max_examples=10)
    target = resolved(TimeMajorFeatures)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("time", "batch", 6)
    assert target.inferred_inputs["x"].endswith("(time-major, as encoder has batch_first=False)")
    # Vectors forward makes a sequence of one step itself: the call on sequences raises, on vectors it runs.
    target = resolved(OneStepFeatures)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 6)
    assert "; ['batch', 6], not ['batch', 'time', 6]: on ['batch', 'time', 6] the model raised" in (
        target.inferred_inputs["x"]
    )
    assert_callable(target, max_examples=10)
    # A forward that moves the axes before the time-major layer arranges the layout itself;
    # one that moves them after the layer does not.
    target = resolved(TransposedBeforeRNN)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 6)
    assert_callable(target, max_examples=10)
    target = resolved(TransposedAfterRNN)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("time", "batch")
    assert_callable(target, max_examples=10)


class SplitState(nn.Module):
    """An LSTM whose state forward builds from two arguments: ``self.lstm(x, (h0, c0))``."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, proj_size=3, batch_first=True)

    def forward(self, x, h0, c0):
        return self.lstm(x, (h0, c0))[0]


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_each_member_of_a_state_tuple_forward_builds_is_drawn_as_that_member():
    target = resolved(SplitState)
    assert strategy_arguments(target.spec.inputs["h0"])["shape"] == (2, "batch", 3)  # at proj_size
    assert strategy_arguments(target.spec.inputs["c0"])["shape"] == (2, "batch", 6)
    assert target.inferred_inputs["c0"] == (
        "first consumed by lstm (LSTM(hidden_size=6, num_layers=2): its initial hidden state, in [-1, 1] as tanh "
        "leaves one; its c_0)"
    )
    assert_callable(target, max_examples=5)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_an_lstm_state_is_drawn_as_the_tuple_and_token_ids_follow_a_time_major_layer():
    from reference_models.word_lm import WordLanguageModel

    target = resolved(WordLanguageModel)
    assert strategy_arguments(target.spec.inputs["input"])["shape"] == ("time", "batch")
    assert target.inferred_inputs["input"] == (
        "first consumed by encoder (Embedding(num_embeddings=40): integer tokens); time-major, as rnn has "
        "batch_first=False"
    )
    assert repr(target.spec.inputs["hidden"]) == (
        "tuples(tensors(max_value=1.0, min_value=-1.0, shape=(2, 'batch', 12)), "
        "tensors(max_value=1.0, min_value=-1.0, shape=(2, 'batch', 12)))"
    )
    assert target.inferred_inputs["hidden"] == (
        "first consumed by rnn (LSTM(hidden_size=12, num_layers=2): its initial hidden state, in [-1, 1] as tanh "
        "leaves one; the tuple (h_0, c_0))"
    )
    assert_callable(target, max_examples=10)
    # h_0 has the projection's size, c_0 the hidden size.
    target = resolved(ProjectedState)
    members = strategy_members(target.spec.inputs["state"])
    assert [strategy_arguments(m) for m in members] == [
        {"shape": (1, "batch", 3), "min_value": -1.0, "max_value": 1.0},
        {"shape": (1, "batch", 6), "min_value": -1.0, "max_value": 1.0},
    ]
    assert_callable(target, max_examples=10)
    # ... and a time-major transformer encoder (the same example's Transformer).
    from reference_models.word_lm import WordTransformerLM

    target = resolved(WordTransformerLM)
    assert strategy_arguments(target.spec.inputs["src"])["shape"] == ("time", "batch")
    assert target.inferred_inputs["src"].endswith("; time-major, as encoder has batch_first=False")
    assert_callable(target, max_examples=10)
    # A forward that moves the axes itself keeps the ids batch-first.
    target = resolved(TransposedTokens)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("batch", "time")
    assert_callable(target, max_examples=10)


def test_one_unbatched_sentence_is_drawn_as_one():
    # PyTorch's BiLSTM-CRF tutorial: forward(sentence) views its embeddings as
    # (len(sentence), 1, -1) for a time-major LSTM; a batch of sentences makes that view wrong.
    from reference_models.crf_tagger import BiLSTMCRFTagger

    target = resolved(BiLSTMCRFTagger)
    assert strategy_arguments(target.spec.inputs["sentence"])["shape"] == ("time",)
    assert target.inferred_inputs["sentence"] == (
        "first consumed by embed (Embedding(num_embeddings=20): integer tokens); time-major, as lstm has "
        "batch_first=False; one sequence, not a batch of them: on ['time', 'batch'] the model raised RuntimeError "
        "(input.size(-1) must be equal to input_size. Expected 6, got 12), on ['time'] it ran"
    )
    assert_callable(target, max_examples=10)
    # A tagger that takes a batch keeps it.
    assert strategy_arguments(resolved(UnsortedPacking).spec.inputs["tokens"])["shape"] == ("batch", "time")


def test_a_captioning_decoders_features_are_vectors_and_its_lengths_longest_first():
    # The image features reach the LSTM only after unsqueeze(1), beside the caption's
    # embeddings; pack_padded_sequence is left at enforce_sorted=True.
    from reference_models.caption_decoder import CaptionDecoder

    target = resolved(CaptionDecoder)
    assert strategy_arguments(target.spec.inputs["features"])["shape"] == ("batch", 8)
    assert target.inferred_inputs["features"] == (
        "first consumed by lstm (LSTM(input_size=8, batch_first=True)); vectors, not sequences: on "
        "['batch', 'time', 8] the model raised RuntimeError (Tensors must have same number of dimensions: got 4 "
        "and 3), on ['batch', 8] it ran"
    )
    assert strategy_arguments(target.spec.inputs["lengths"]).get("descending") is True
    assert target.inferred_inputs["lengths"].startswith(
        "its name says sequence lengths: one per sample, each between 1 and the padded length 'time'; longest "
        "first (descending=True): with the shortest first it raised RuntimeError (`lengths` array must be sorted "
        "in decreasing order when `enforce_sorted` is True."
    )
    assert_callable(target, max_examples=10)
    # Packing that takes any order: the lengths are drawn in any order.
    assert not strategy_arguments(resolved(UnsortedPacking).spec.inputs["lengths"]).get("descending")


KEY_PADDING = """
import torch
from torch import nn


class Attending(nn.Module):
    # a required key padding mask, handed to the attention and read for the pooling
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, tokens, key_padding_mask):
        h = self.emb(tokens)
        a, _ = self.attn(h, h, h, key_padding_mask=key_padding_mask)
        keep = (~key_padding_mask).unsqueeze(-1).to(h.dtype)
        return self.out(((h + a) * keep).sum(1) / keep.sum(1).clamp(min=1))


class Encoding(nn.Module):
    # a required src_key_padding_mask, read nowhere else
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True), 1)
        self.fc = nn.Linear(16, 3)

    def forward(self, tokens, src_key_padding_mask):
        h = self.enc(self.emb(tokens), src_key_padding_mask=src_key_padding_mask)
        return self.fc(h[:, 0])
"""


@pytest.mark.parametrize(("name", "argument", "consumer"), [
    ("Attending", "key_padding_mask", "attn"), ("Encoding", "src_key_padding_mask", "enc"),
])
def test_a_required_key_padding_mask_is_drawn_as_one(dyncheck_run, pytester, name, argument, consumer):
    # Drawn as the output layer's float input ([batch, 16], every check the layer's refusal),
    # or as None (padding_invariance skipped: "forward takes no ... attention mask").
    pytester.makepyfile(key_padding=KEY_PADDING)
    run = dyncheck_run("--dyncheck", f"key_padding:{name}", "--dyncheck-explain", "--co")
    assert (
        f"        # inferred: handed to {consumer} as its {argument}: the key padding mask of the sequence (PyTorch's "
        f"convention): True at padding on the right, False at tokens\n"
        f"        '{argument}': attention_masks(dtype=torch.bool, marks='padding'),"
    ) in run.text, run.text
    checked = dyncheck_run("--dyncheck", f"key_padding:{name}", "--dyncheck-invariants=padding_invariance",
                           "--dyncheck-max-examples=5")
    assert checked.outcomes() == {f"dyncheck::key_padding:{name}::padding_invariance": "PASSED"}, checked.text


INDEXED = """
import torch
from torch import nn


class Reversed(nn.Module):
    # walked backwards by a variable index: the members are alike, any of them says the size
    def __init__(self):
        super().__init__()
        self.dec = nn.ModuleList([nn.Linear(32, 32) for _ in range(3)])

    def forward(self, x):
        for i in reversed(range(len(self.dec))):
            x = torch.relu(self.dec[i](x))
        return x


class Unlike(nn.Module):
    # members of different input sizes: which one a variable picks first is not read
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([nn.Linear(6, 4), nn.Linear(4, 2)])

    def forward(self, x, n: int):
        for i in range(n):
            x = self.stages[i](x)
        return x


class Heads(nn.Module):
    # a head per task, picked by the task's name: the dict's keys are the values it takes
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleDict({"cls": nn.Linear(12, 3), "reg": nn.Linear(12, 1)})

    def forward(self, x, task: str):
        return self.heads[task](x)
"""


def test_a_member_picked_by_a_variable_and_a_key_into_a_module_dict(dyncheck_run, pytester):
    pytester.makepyfile(indexed=INDEXED)
    run = dyncheck_run(*("--dyncheck", "indexed:Reversed", "--dyncheck", "indexed:Heads"), "--dyncheck-explain", "--co")
    assert (
        "        # inferred: first consumed by dec.* (Linear(in_features=32))\n"
        "        'x': tensors(shape=('batch', 32)),"
    ) in run.text, run.text
    assert (
        "        # inferred: annotated str, a key into a ModuleDict in forward: 'cls', 'reg'\n"
        "        'task': controls(choices=['cls', 'reg']),"
    ) in run.text, run.text
    # Unlike members: no first consumer is guessed (member 0 is not read as the first called).
    unlike = dyncheck_run("--dyncheck", "indexed:Unlike", "--dyncheck-explain", "--co")
    assert "first consumed by stages" not in unlike.text, unlike.text


CHANGED_MASK = """
import torch
from torch import nn


class Kept(nn.Module):
    # True at tokens, inverted on its way to the attention: its polarity is in the code between
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, tokens, keep_mask):
        h = self.emb(tokens)
        a, _ = self.attn(h, h, h, key_padding_mask=~keep_mask)
        keep = keep_mask.unsqueeze(-1).to(h.dtype)
        return self.out(((h + a) * keep).sum(1) / keep.sum(1).clamp(min=1))


class MeanOverAll(Kept):
    # the padding averaged in: what padding_invariance run through the inferred mask catches
    def forward(self, tokens, keep_mask):
        h = self.emb(tokens)
        a, _ = self.attn(h, h, h, key_padding_mask=~keep_mask)
        return self.out((h + a).mean(1))


class Compared(Kept):
    # 1 at tokens, compared with 0 on its way: not read
    def forward(self, tokens, keep_mask):
        h = self.emb(tokens)
        a, _ = self.attn(h, h, h, key_padding_mask=keep_mask == 0)
        keep = keep_mask.unsqueeze(-1).to(h.dtype)
        return self.out(((h + a) * keep).sum(1) / keep.sum(1).clamp(min=1))
"""


def test_a_mask_inverted_on_its_way_to_the_attention_is_read_and_other_changes_are_one_clear_line(
    pytester, dyncheck_run
):
    # Followed past the attention into the pooling, it was drawn as the output layer's float
    # input, and the checks failed on a correct model. Inverted into a key padding mask (True
    # at padding), it is True at tokens: drawn so, and padding_invariance runs through it.
    pytester.makepyfile(changed=CHANGED_MASK)
    pytester.syspathinsert()
    target = resolve("changed:Kept")
    same(target.spec.inputs["keep_mask"], dst.attention_masks(dtype=torch.bool))
    assert target.inferred_inputs["keep_mask"] == (
        "handed to attn as its key_padding_mask inverted (~keep_mask): True at padding there (PyTorch's "
        "convention), so True at tokens here, padding on the right"
    )
    run = dyncheck_run(
        "--dyncheck", "changed:Kept", "--dyncheck", "changed:MeanOverAll", "--dyncheck-invariants=padding_invariance"
    )
    assert run.outcomes() == {
        "dyncheck::changed:Kept::padding_invariance": "PASSED",
        "dyncheck::changed:MeanOverAll::padding_invariance": "FAILED",
    }, run.text
    with pytest.raises(TargetError) as info:
        resolve("changed:Compared")
    assert str(info.value) == (
        "--dyncheck changed:Compared: cannot infer forward argument 'keep_mask' of Compared (it reaches attn as its "
        "key_padding_mask, changed on the way: a mask, which way it marks padding is not read from the code); write "
        "dyncheck.Spec(Compared, inputs={'keep_mask': dyncheck.strategies.attention_masks(dtype=torch.bool)}) for "
        "True at tokens, or attention_masks(dtype=torch.bool, marks='padding') for True at padding"
    )


class Sampler(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(4, 5)

    def forward(self, x, temperature: float):
        return torch.softmax(self.head(x) / temperature, dim=-1)


def test_a_temperature_is_drawn_positive():
    # Drawn from [0, 1] it met 0.0, and logits / 0 made finite and grad_isolation fail.
    target = resolved(Sampler)
    same(target.spec.inputs["temperature"], dst.controls(min_value=0.1, max_value=2.0))
    assert "named like a temperature" in target.inferred_inputs["temperature"]


class PairedSteps(nn.Module):
    # GRU-D's decay: x, d = values[:, t], deltas[:, t] gives each name its own member
    def __init__(self):
        super().__init__()
        self.decay = nn.Linear(1, 16)
        self.cell = nn.GRUCell(4, 16)
        self.fc = nn.Linear(16, 2)

    def forward(self, values, deltas):
        h = values.new_zeros(values.size(0), 16)
        for t in range(values.size(1)):
            x, d = values[:, t], deltas[:, t]
            h = self.cell(x, h * torch.exp(-torch.relu(self.decay(d))))
        return self.fc(h)


def test_a_tuple_assignment_pairs_its_members():
    # Both names took both arguments: values was read as the decay's input, [batch, 1].
    target = resolved(PairedSteps)
    assert target.inferred_inputs["values"].startswith("first consumed by cell (GRUCell(input_size=4))")
    assert target.inferred_inputs["deltas"].startswith("first consumed by decay (Linear(in_features=1))")


def test_lengths_whose_steps_past_the_longest_are_read_as_data_fill_the_batch():
    from reference_models.right_context import RightContextEncoder

    target = resolved(RightContextEncoder)
    same(target.spec.inputs["lengths"], dst.sequence_lengths(pad_to_longest=True))
    assert target.inferred_inputs["lengths"].endswith(
        "; the longest always the padded length (pad_to_longest=True): a step of padding past the longest sequence "
        "changed every row's output, while a row one step shorter than the longest gave its output alone (the model "
        "reads the steps past the longest as data, as torchaudio's Emformer reads them as right context)"
    )
    # A model that reads every row's padding (a mean over all steps) is not read so: padding_invariance reports it.
    from reference_models.buggy.mean_over_padding import Model as MeanOverPadding

    assert "pad_to_longest" not in repr(resolved(MeanOverPadding).spec.inputs.get("lengths"))


def test_a_forward_is_read_once_and_a_module_imported_anew_is_read_anew(pytester, monkeypatch):
    # Inference reads one forward many times over: its source is read once per function.
    # A module rewritten and imported again has new functions, read from the new source.
    from dyncheck.infer.source import function_tree

    monkeypatch.setattr("sys.dont_write_bytecode", True)  # the module is rewritten in place
    pytester.syspathinsert()
    source = "from torch import nn\n\nclass Model(nn.Module):\n    def forward(self, x):\n        return x {} 1\n"
    pytester.makepyfile(rewritten=source.format("+"))
    module = importlib.import_module("rewritten")
    first = function_tree(module.Model.forward)
    assert isinstance(first.body[0].value.op, ast.Add)
    assert function_tree(module.Model().forward) is first  # a bound method: its function's tree
    pytester.makepyfile(rewritten=source.format("*"))
    module = importlib.reload(module)
    assert isinstance(function_tree(module.Model.forward).body[0].value.op, ast.Mult)
    # ... and a function whose code is replaced in place, as IPython's autoreload does
    pytester.makepyfile(rewritten=source.format("-"))
    forward = module.Model.forward
    forward.__code__ = importlib.reload(module).Model.forward.__code__
    assert isinstance(function_tree(forward).body[0].value.op, ast.Sub)


class TwoRefused(nn.Module):
    """A graph layer over an edge list, then an architecture of ints: neither can be inferred."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.ops = nn.ModuleList([nn.Identity(), nn.Tanh()])

    def forward(self, x, edge_index, arch: list[int]):
        h = self.lin(x)
        h = h.index_add(0, edge_index[1], h[edge_index[0]])
        for op, pick in zip(self.ops, arch):
            if pick:
                h = op(h)
        return h


def test_every_refused_argument_is_named_in_one_line_with_one_spec():
    # Before, the refusal named edge_index alone; its Spec line, pasted, met the refusal of arch.
    with pytest.raises(TargetError) as excinfo:
        resolved(TwoRefused)
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(
        "--dyncheck test_infer:TwoRefused: cannot infer forward argument 'edge_index' of TwoRefused (it holds indices into another "
        "input: h.index_add(0, edge_index[1], h[edge_index[0]])); cannot infer forward argument 'arch' of TwoRefused "
        "(annotated list[int]: "
    ), message
    spec = message[message.index("write dyncheck.Spec("):]
    assert spec.startswith(
        "write dyncheck.Spec(TwoRefused, inputs={'edge_index': dyncheck.strategies.tensors(shape=(2, 'edges'), "
        "dtype=torch.int64, max_value=3), 'arch': hypothesis.strategies.lists(hypothesis.strategies.integers(0, N), "
        "min_size=K, max_size=K)}, dims={'batch': (4, 8)}, skip={'batch_invariance': 'samples are coupled through "
        "edge_index'}); for 'edge_index': shape and max_value below the smallest size it indexes; for 'arch': the "
        "values and length it takes"
    ), spec
    # The merged Spec, filled in, is what the model takes.
    import hypothesis.strategies as hst

    target = resolved(
        TwoRefused,
        inputs={
            "edge_index": dst.tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3),
            "arch": hst.lists(hst.integers(0, 1), min_size=2, max_size=2),
        },
        dims={"batch": (4, 8)},
    )
    assert_callable(target, max_examples=5)


def test_a_refusal_whose_spec_line_cannot_be_read_names_the_others():
    from dyncheck.target import _refusals

    refused = [("a", "cannot infer forward argument 'a' of M (no layer consumes it)"),
               ("b", "cannot infer forward argument 'b' of M (x); write dyncheck.Spec(M, inputs={'b': ...})")]
    assert _refusals(refused) == (
        "cannot infer forward argument 'a' of M (no layer consumes it); dyncheck cannot infer 'b' either"
    )
    assert _refusals(refused[1:]) == refused[1][1]


class _PooledConv(nn.Module):
    """SpeechBrain's CNN block on [batch, time, 8] over raw weights: scaled features, a
    convolution along time, pairs of features pooled, 16 out."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))
        self.weight = nn.Parameter(torch.randn(4, 1, 3, 1) / 3)

    def forward(self, x):
        h = torch.nn.functional.conv2d((x * self.scale).unsqueeze(1), self.weight, padding=(1, 0))
        h = torch.nn.functional.max_pool2d(h, (1, 2))  # [batch, 4, time, 4]
        return h.permute(0, 2, 1, 3).flatten(2)


class PooledThenPacked(nn.Module):
    """A wrapper that hands SpeechBrain's CRDNN parts its features, then the RNN its relative
    lengths (``wav_lens``), packed as ``round(wav_lens * T)`` steps."""

    def __init__(self):
        super().__init__()
        self.cnn = _PooledConv()
        self.rnn = nn.LSTM(16, 6, batch_first=True)

    def forward(self, feats, wav_lens):
        x = self.cnn(feats)
        steps = torch.round(wav_lens * x.shape[1]).long().clamp(min=1)
        packed = pack_padded_sequence(x, steps, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


def test_features_are_probed_beside_lengths_where_a_later_layer_took_another_width():
    # The RNN takes 16 features, what the CNN made of feats: drawn so, every call raised. The
    # sizes of the model's parameters are tried on sequences, wav_lens beside them at 1.0
    # (3 whole steps raise: 9 steps packed of 3); before, an argument beside feats ended that.
    target = resolved(PooledThenPacked)
    assert strategy_arguments(target.spec.inputs["feats"])["shape"] == ("batch", "time", 8)
    assert "(beside wav_lens of every step), it first ran on [2, 3, 8]" in target.inferred_inputs["feats"]
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {"relative": True, "pad_to_longest": True}
    assert_callable(target, max_examples=10)


def test_merged_refusals_give_each_key_once():
    from dyncheck.target import _refusals

    def refusal(name: str, dims: str) -> tuple[str, str]:
        return name, (
            f"cannot infer forward argument {name!r} of M (edges); write dyncheck.Spec(M, inputs={{{name!r}: "
            f"tensors(shape=(2, 'edges'))}}, dims={dims}, skip={{'batch_invariance': 'coupled through {name}'}})"
        )

    # pos_edge_index and neg_edge_index: one skip of batch_invariance, its first reason
    merged = _refusals([refusal("pos", "{'batch': (4, 8)}"), refusal("neg", "{'batch': (4, 8)}")])
    assert merged.endswith(
        "write dyncheck.Spec(M, inputs={'pos': tensors(shape=(2, 'edges')), 'neg': tensors(shape=(2, 'edges'))}, "
        "dims={'batch': (4, 8)}, skip={'batch_invariance': 'coupled through pos'})"
    ), merged
    # two bounds of one dimension: the first refusal, naming the other
    apart = _refusals([refusal("pos", "{'batch': (4, 8)}"), refusal("neg", "{'batch': (2, 3)}")])
    assert apart.endswith("skip={'batch_invariance': 'coupled through pos'}); dyncheck cannot infer 'neg' either")


class _Patches(nn.Module):
    """A ViT's patch embedding as a module of its own: the image unshuffled into patches
    (a reshaping Sequential first), then a norm and a projection of the patches."""

    def __init__(self):
        super().__init__()
        self.to_patches = nn.Sequential(nn.PixelUnshuffle(2), nn.Flatten(2))
        self.norm = nn.LayerNorm(12)
        self.proj = nn.Linear(12, 16)

    def forward(self, img):
        return self.proj(self.norm(self.to_patches(img).transpose(1, 2)))


class WrappedPatches(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = _Patches()
        self.head = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 3))

    def forward(self, img):
        return self.head(self.embed(img).mean(1))


class BarePatches(nn.Module):
    """vit-pytorch's MAE: the patch embedding's first layer, on its own, then the rest."""

    def __init__(self):
        super().__init__()
        self.to_patch = nn.PixelUnshuffle(2)
        self.patch_to_emb = nn.Sequential(nn.LayerNorm(12), nn.Linear(12, 16))

    def forward(self, img):
        return self.patch_to_emb(self.to_patch(img).flatten(2).transpose(1, 2)).mean(1)


@pytest.mark.parametrize(("model", "reshaping"), [
    (WrappedPatches, "embed, reshapes it (PixelUnshuffle)"), (BarePatches, "to_patch, reshapes it (PixelUnshuffle)"),
])
def test_an_image_a_wrapped_layer_reshapes_first_is_refused_not_read_from_the_patches(model, reshaping):
    # vit-pytorch's Extractor, Dino, CrossViT, MAE: img was drawn [batch, 12] from the LayerNorm
    # over the patches (or [batch, 16], read through to the head), and every check raised.
    with pytest.raises(TargetError) as excinfo:
        resolved(model)
    name = model.__name__
    assert str(excinfo.value) == (
        f"--dyncheck test_infer:{name}: cannot infer forward argument 'img' of {name} (its first consumer, "
        f"{reshaping} before any layer that gives a shape); write dyncheck.Spec({name}, inputs={{'img': "
        "dyncheck.strategies.tensors(shape=(\"batch\", ...))})"
    )


class EinopsMAE(nn.Module):
    """vit-pytorch's MAE: the encoder's Rearrange on its own, then the rest of its patch
    embedding, kept apart as MAE keeps it."""

    def __init__(self):
        super().__init__()
        from reference_models.einops_vit import EinopsViT

        self.encoder = EinopsViT()
        self.to_patch = self.encoder.to_patch_embedding[0]
        self.patch_to_emb = nn.Sequential(*self.encoder.to_patch_embedding[1:])

    def forward(self, img):
        return self.patch_to_emb(self.to_patch(img)).mean(1)


@pytest.mark.parametrize(("model", "largest"), [("EinopsViT", 16), ("PatchFeatures", 16), (EinopsMAE, 28)])
def test_a_vit_patch_embedding_is_worked_back_from_the_layer_after_its_rearrange(model, largest):
    # vit-pytorch's ViT, SimpleViT, CaiT, DeepViT were refused, and the ViT inside Extractor,
    # Dino, CrossViT and MAE too: einops' pattern and the LayerNorm over the patches (48 =
    # p1 * p2 * c) say images of 3 channels, a multiple of the patch high and wide; the probe
    # finds those the positional table holds (the MAE here adds none: seven multiples).
    if isinstance(model, str):
        model = getattr(importlib.import_module("reference_models.einops_vit"), model)
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["img"])["shape"] == ("batch", 3, "height", "width")
    assert "Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)', p1=4, p2=4) then LayerNorm([48])" in (
        target.inferred_inputs["img"]
    )
    for dim in ("height", "width"):
        same(target.spec.dims[dim], st.sampled_from(list(range(4, largest + 1, 4))))
    assert_callable(target)


class _Rearranged(nn.Module):
    def __init__(self, pattern: str, features: int, **lengths: int):
        super().__init__()
        from reference_models.einops_vit import Rearrange

        self.embed = nn.Sequential(Rearrange(pattern, **lengths), nn.LayerNorm(features), nn.Linear(features, 4))

    def forward(self, x):
        return self.embed(x)


@pytest.mark.parametrize(("pattern", "lengths", "features", "shape"), [
    ("b c (n p) -> b n (p c)", {"p": 2}, 6, ("batch", 3, "length")),  # a signal's patches
    ("b c h w -> b (h w) c", {}, 8, ("batch", 8, "height", "width")),  # pixels as tokens
    ("b (h p1) (w p2) c -> b (h w) (p1 p2 c)", {"p1": 2, "p2": 2}, 12, ("batch", "height", "width", 3)),
    ("b c (f pf) (h p) (w q) -> b (f h w) (pf p q c)", {"pf": 2, "p": 2, "q": 2}, 8,
     ("batch", 1, "depth", "height", "width")),  # a video's tubelets
    ("b c (h p1) w -> b (h w) (p1 c)", {"p1": 2}, 48, ("batch", 24, "height", "width")),  # 48 = 2 * c
])
def test_rearranged_inputs_take_their_layout_from_the_pattern(pattern, lengths, features, shape):
    target = resolved(_Rearranged(pattern, features, **lengths))
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == shape
    assert_callable(target, max_examples=3)


def test_a_rearrange_that_cannot_be_undone_is_refused():
    # p2 and c unknown: the LayerNorm's 48 says their product only
    with pytest.raises(TargetError, match=r"embed, reshapes it \(Rearrange\) before any layer that gives a shape"):
        resolved(_Rearranged("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", 48, p1=4))
    from dyncheck.infer.layers import _einops_axes

    assert _einops_axes("b c (h p1) (w p2)") == [["b"], ["c"], ["h", "p1"], ["w", "p2"]]
    for side in ("b ... c", "b 1 c", "b ((h p) w)", "b (h p", "b h) p"):
        assert _einops_axes(side) is None, side


@pytest.mark.parametrize(("layers", "shape"), [
    ((nn.PixelUnshuffle(2), nn.Conv2d(12, 8, 3)), ("batch", 3, "height", "width")),
    ((nn.PixelShuffle(2), nn.Conv2d(3, 8, 3)), ("batch", 12, "height", "width")),
    ((nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3)), ("batch", 64)),
])
def test_torch_reshaping_layers_are_worked_back_from_the_convolution_after_them(layers, shape):
    target = resolved(nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(2)) if len(shape) == 2 else nn.Sequential(*layers))
    assert strategy_arguments(target.spec.inputs["input"])["shape"] == shape
    if isinstance(layers[0], nn.PixelUnshuffle):
        # sizes the unshuffle divides, and big enough for the 3x3 convolution after it
        assert all(size % 2 == 0 and size >= 6 for size in target.spec.dims["height"].elements)
    assert_callable(target, max_examples=3)


@pytest.mark.parametrize(("batch_first", "shape"), [(True, ("batch", "time", 4)), (False, ("time", "batch", 4))])
def test_a_cell_that_concatenates_its_step_with_its_state_is_sized_by_calling_it(batch_first, shape):
    # ncps' CfC: the cell's Linear takes 4 + 8 features, 8 of them the state it carries. The
    # input was drawn [batch, 6] (an even share with the forward argument also named hx) and
    # every check crashed; the calls find 4, and that [2, 4] runs only as one sequence.
    from reference_models.liquid_rnn import LiquidRNN

    target = resolved(LiquidRNN(batch_first=batch_first))
    assert strategy_arguments(target.spec.inputs["input"])["shape"] == shape
    why = target.inferred_inputs["input"]
    assert "what a Linear's inputs leave beside a state of its outputs' width 4" in why
    assert "on [2, 4] a row's outputs depended on the other row" in why
    assert_callable(target, max_examples=3)


class _StateCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.ff = nn.Linear(4 + 8, 8)

    def forward(self, step, h):
        return torch.tanh(self.ff(torch.cat([step, h], 1)))


class StateStepLoop(nn.Module):
    """The textbook loop: a hand-written cell over x[:, t], its state named h."""

    def __init__(self):
        super().__init__()
        self.cell = _StateCell()

    def forward(self, x):
        h = torch.zeros(x.size(0), 8)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h)
        return h


class _InputCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.rec = nn.Linear(4, 8), nn.Linear(8, 8)

    def forward(self, x, h):
        return torch.tanh(self.inp(x) + self.rec(h))


class UnbatchedToo(nn.Module):
    """ncps' LTC: a [time, F] input is one unbatched sequence; its step axis in a variable."""

    def __init__(self):
        super().__init__()
        self.cell = _InputCell()

    def forward(self, x):
        batched = x.dim() == 3
        if not batched:
            x = x.unsqueeze(0)
        seq_dim = 1
        h = torch.zeros(x.size(0), 8)
        for t in range(x.size(seq_dim)):
            h = self.cell(x[:, t], h)
        return h if batched else h.squeeze(0)


class SetCentred(nn.Module):
    """A bug: centred over dim -2, meant as a set's members, which for vectors is the batch.
    As sequences each sample would keep its own outputs, and the bug would hide."""

    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(4, 8), nn.Linear(8, 1)

    def forward(self, x):
        h = torch.relu(self.fc(x))
        return self.head(h - h.mean(-2, keepdim=True))


class BatchCentred(nn.Module):
    """Rows that depend on each other by design, as vectors and as sequences alike."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x - x.mean(0))


class SetCentredBesideASquare(SetCentred):
    """SetCentred's bug beside a 7 x 7 product of a buffer: a size the model makes itself."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mix", torch.eye(7) * 0.5)

    def forward(self, x):
        return super().forward(x) + torch.linalg.matrix_norm(self.mix @ self.mix)


@pytest.mark.parametrize(("model", "shape", "said"), [
    (StateStepLoop, ("batch", "time", 4), "what a Linear's inputs leave beside a state of its outputs' width 4"),
    (UnbatchedToo, ("batch", "time", 4), "on [2, 4] a row's outputs depended on the other row"),
    # a Perceiver's latents attending to keys made of the rows: scores [rows, 4, rows]
    ("latent_reader", ("batch", "time", 6), "on [2, 6] a row's outputs depended on the other row"),
    (BatchCentred, ("batch", 4), "Linear(in_features=4)"),
    (SetCentred, ("batch", 4), "Linear(in_features=4)"),  # one call per module however many rows
    (SetCentredBesideASquare, ("batch", 4), "Linear(in_features=4)"),  # a 7 x 7 that does not follow the rows
])
def test_steps_read_as_rows_are_told_apart_by_calling_the_model(model, shape, said):
    # The cell's Linear read as the step's width took the state's 8 features too (12); rows
    # that one sequence's steps couple were drawn as a batch, and batch_invariance failed.
    # Rows a model couples whatever their layout stay vectors (batch_invariance's to find),
    # and so do rows it couples through the same calls whatever their number (a mean).
    name = "x"
    if model == "latent_reader":
        from reference_models.latent_reader import LatentReader

        model, name = LatentReader, "data"
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs[name])["shape"] == shape
    assert said in target.inferred_inputs[name]
    assert_callable(target, max_examples=3)


class CounterTables(nn.Module):
    """pytorch-tabnet's EmbeddingGenerator: categorical columns, each looked up in the next
    table of a list by a counter, beside continuous ones, in one matrix."""

    def __init__(self):
        super().__init__()
        self.embeddings = nn.ModuleList([nn.Embedding(5, 2), nn.Embedding(3, 2)])
        self.continuous = [False, True, False]
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        columns, counter = [], 0
        for i, continuous in enumerate(self.continuous):
            if continuous:
                columns.append(x[:, i].float().view(-1, 1))
            else:
                columns.append(self.embeddings[counter](x[:, i].long()))
                counter += 1
        return self.head(torch.cat(columns, 1))


def test_ids_for_a_list_of_tables_stay_below_the_smallest_vocabulary():
    # Drawn below the first table's 5 rows, column 2's table of 3 got ids up to 4: every
    # check crashed with "index out of range".
    target = resolved(CounterTables)
    assert strategy_arguments(target.spec.inputs["x"])["max_value"] == 2
    assert "Embedding(num_embeddings=3)" in target.inferred_inputs["x"]
    assert_callable(target, max_examples=10)


class ReshapedPatches(nn.Module):
    """An image cut into 4x4 patches in forward (as einops' rearrange called there does),
    then normed: the LayerNorm says the patches' 48 features, not the image's shape."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(48)
        self.head = nn.Linear(48, 3)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 3, 5, 1).reshape(b, -1, 48)
        return self.head(self.norm(x).mean(1))


def test_an_image_forward_cuts_into_patches_is_found_by_calling_it_as_images():
    # Drawn [batch, 48] from the LayerNorm, it raised on every example ("expected 4, got 2").
    target = resolved(ReshapedPatches)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 3, "height", "width")
    assert "on [2, 3, 16, 16] it ran (forward reshapes them before that layer" in target.inferred_inputs["x"]
    assert all(size % 4 == 0 for size in target.spec.dims["height"].elements)
    assert_callable(target, max_examples=5)


class _Down(nn.Module):
    """A downsampling block: the image unshuffled then projected, plus a strided conv of it."""

    def __init__(self):
        super().__init__()
        self.unshuffle = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, 8, 1))
        self.skip = nn.Conv2d(3, 8, 2, stride=2)

    def forward(self, x):
        return self.unshuffle(x) + self.skip(x)


class DownThenHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = _Down()
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.head(self.down(x))


class _Shuffled(nn.Module):
    """A ShuffleNet unit: channels shuffled (the shape kept) then convolved, plus a projection."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(nn.ChannelShuffle(2), nn.Conv2d(8, 16, 3, padding=1))
        self.proj = nn.Conv2d(8, 16, 1)

    def forward(self, x):
        return self.branch(x) + self.proj(x)


class ShuffledThenHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.unit = _Shuffled()
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.unit(x))


@pytest.mark.parametrize(("model", "channels"), [(DownThenHead, 3), (ShuffledThenHead, 8)])
def test_a_layer_beside_a_reshaping_first_one_still_says_the_input(model, channels):
    # Inside a module of the model's own, a layer that takes the input itself beside the
    # reshaping one (a skip convolution) says its shape; a channel shuffle keeps the shape.
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", channels, "height", "width")
    assert_callable(target, max_examples=5)


class _ScaledNorm(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.g = nn.Parameter(torch.ones(size))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.g


class BuggyAfterNorm(nn.Module):
    """Right inputs read through a custom norm, and a bug of the model's own after them."""

    def __init__(self):
        super().__init__()
        self.norm = _ScaledNorm(16)
        self.ln = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.ln(self.norm(x))) + torch.zeros(3)


def test_inputs_read_through_a_layer_stay_where_the_model_crashes_on_them():
    # The checks report the model's crash, with the example; a refusal would ask for a Spec the
    # user does not need.
    target = resolved(BuggyAfterNorm)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 16)


class BrokenRouting(nn.Module):
    """A gate over raw weights whose mask misses an unsqueeze(-1) (mixture-of-experts'
    'threshold' policy): it raises on every input but one whose steps number the experts."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Parameter(torch.randn(8, 4))

    def forward(self, x):
        scores = torch.einsum("bnd,de->bne", x, self.gate)
        return scores * (scores.amax(-1) > 0).float()


def test_a_refusal_after_probing_says_what_the_model_raised():
    # "its first consumers give no input shape" hid the model's own crash on every call.
    with pytest.raises(TargetError) as excinfo:
        resolved(BrokenRouting)
    message = str(excinfo.value)
    assert (
        "(no layer in forward consumes it; called on vectors [2, F] and sequences [2, 3, F] for F in the model's parameters' "
        "sizes 8, 4, it raised on each, on [2, 3, 8] RuntimeError: The size of tensor a (4) must match the size of "
        "tensor b (3) at non-singleton dimension 2); write dyncheck.Spec(BrokenRouting, "
    ) in message, message


def test_a_pack_whose_consumer_takes_no_sequences_is_refused_with_a_spec_that_parses():
    # allennlp's AugmentedLstm: the Spec closed one brace too many, and pasted it was a SyntaxError.
    from dyncheck.infer.forward import _packed_sequences
    from dyncheck.infer.results import Uninferable

    with pytest.raises(Uninferable) as excinfo:
        _packed_sequences(None, ("batch", 8), "", "inputs", "AugmentedLstm")
    message = str(excinfo.value)
    assert "(a PackedSequence; its consumer takes ['batch', 8], not sequences)" in message
    spec = message.partition("write ")[2]
    assert spec == (
        "dyncheck.Spec(AugmentedLstm, inputs={'inputs': dyncheck.strategies.packed_sequences(feature_shape=(...))})"
    )
    ast.parse(spec.replace("(...)", "(8,)"))


class ListLengthsTagger(nn.Module):
    """OpenNMT-py's RNNEncoder: the lengths handed to pack_padded_sequence as a flat list."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 6, batch_first=True)

    def forward(self, src, src_len):
        packed = pack_padded_sequence(src, src_len.view(-1).tolist(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))[0]


def test_lengths_packed_as_a_list_are_the_lengths():
    # src_len.view(-1).tolist() hid them: drawn as the LSTM's float features, every check crashed.
    target = resolved(ListLengthsTagger)
    assert strategy_kind(target.spec.inputs["src_len"]) == "sequence_lengths"
    assert_callable(target, max_examples=5)


def sort_by_length(tensor, lengths):
    """allennlp's sort_batch_by_length: the batch sorted longest first, and the way back."""
    sorted_lengths, permutation = lengths.sort(0, descending=True)
    _, back = permutation.sort(0)
    return tensor.index_select(0, permutation), sorted_lengths, back


class SortedByLength(nn.Module):
    """allennlp's PytorchSeq2SeqWrapper: a mask's lengths sort the batch before packing."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 6, batch_first=True)

    def forward(self, inputs, mask):
        ordered, lengths, back = sort_by_length(inputs, mask.long().sum(-1))
        out, _ = self.rnn(pack_padded_sequence(ordered, lengths.tolist(), batch_first=True))
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=mask.size(1))
        return out.index_select(0, back)


def test_a_permutation_sorted_from_an_argument_is_not_indices_it_holds():
    # The mask's lengths, sorted, give the permutation index_select takes: the mask was refused
    # as "indices into another input", with a Spec of int64 edges and a batch_invariance skip.
    target = resolved(SortedByLength)
    assert strategy_kind(target.spec.inputs["mask"]) == "attention_masks"
    assert_callable(target, max_examples=5)


def test_keywords_taken_through_kwargs_read_as_names_of_their_own():
    from dyncheck.infer.flow import keyword_entries

    source = """
def forward(self, x, **kwargs):
    a = kwargs["context"]
    b = kwargs.get("context", None) + kwargs.pop("mask")
    kwargs.update(context=self.norm(a), scale=2)
    kwargs["context"] = b
    return self.fn(x, **kwargs) + self.other(kwargs["scale"])
"""
    tree = ast.parse(source).body[0]
    assert ast.unparse(keyword_entries(tree, {"x", "context", "mask"})).splitlines()[1:] == [
        "    a = context",
        "    b = context + mask",
        "    context = self.norm(a)",
        "    kwargs.update(scale=2)",
        "    context = b",
        # mask was taken out (pop): the rest of **kwargs goes on without it
        "    return self.fn(x, context=context, **kwargs) + self.other(kwargs['scale'])",
    ]
    deleted = ast.parse("def forward(self, x, **kwargs):\n    del kwargs['context']\n    return self.fn(x, **kwargs)").body[0]
    assert ast.unparse(keyword_entries(deleted, {"context"})).splitlines()[-1] == "    return self.fn(x, **kwargs)"
    # a keyword its forward names, or no **kwargs: the tree as it is
    assert keyword_entries(tree, {"x"}) is tree
    plain = ast.parse("def forward(self, x, context=None):\n    return x").body[0]
    assert keyword_entries(plain, {"context"}) is plain


def test_an_input_handed_on_through_kwargs_is_sized_where_it_arrives():
    # perceiver-pytorch's PreNorm.forward(x, **kwargs) reads kwargs["context"]: the flow
    # stopped there and sized the input by the latents' LayerNorm(16) the block calls next,
    # a signal [batch, 16, 6] whose mask was never drawn.
    from reference_models.keyword_context import KeywordLatentEncoder

    target = resolved(KeywordLatentEncoder)
    assert strategy_arguments(target.spec.inputs["data"])["shape"] == ("batch", "time", 6)
    assert "first consumed by cross_block (LayerNorm([6]))" in target.inferred_inputs["data"]
    assert "the padding mask of data" in target.inferred_inputs["mask"]
    assert_callable(target, max_examples=3)


class TagScore(nn.Module):
    """A tagger's score of its tags, emissions and transitions under a mask True at tokens,
    named like attention-is-all-you-need-pytorch's ``non_pad_mask``."""

    def __init__(self, num_tags=4):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.emissions = nn.Linear(8, num_tags)
        self.transitions = nn.Parameter(torch.randn(num_tags, num_tags))

    def score(self, tokens, tags, valid):
        emit = self.emissions(self.embedding(tokens)).gather(2, tags.unsqueeze(2)).squeeze(2) * valid
        return emit.sum(1) + (self.transitions[tags[:, :-1], tags[:, 1:]] * valid[:, 1:]).sum(1)

    def forward(self, tokens, tags, non_pad_mask):
        return self.score(tokens, tags, non_pad_mask.float())


class PaddingTrueTagScore(TagScore):
    """The same, its mask True at padding (``mask = tokens == PAD``)."""

    def forward(self, tokens, tags, mask):
        return self.score(tokens, tags, (~mask).float())


class UnmaskedTagScore(TagScore):
    """No mask: the tags alone."""

    def forward(self, tokens, tags):
        return self.score(tokens, tags, torch.ones(tags.shape))


class MaskedTokenLoss(nn.Module):
    """A masked-LM loss: loss_mask marks the positions to predict, not padding (every token
    is attended to)."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.out = nn.Linear(8, 20)

    def forward(self, tokens, labels, loss_mask):
        logits = self.out(self.encoder(self.embedding(tokens)))
        return (nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none") * loss_mask).sum(1)


class FirstStepTagScore(TagScore):
    """Reads the steps its mask marks (a recurrence over the padding) and, as pytorch-crf,
    requires every first step to be a token."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 8, batch_first=True)

    def forward(self, tokens, tags, mask):
        if not mask[:, 0].all():
            raise ValueError("mask of the first timestep must all be on")
        h, _ = self.gru(self.embedding(tokens))
        return self.score(tokens, tags, mask.float()) + h[:, -1].sum(-1)  # the last step, padding or not


@pytest.mark.parametrize(("model", "mask"), [
    ("masked_crf", "tokens"),
    (TagScore, "tokens"),
    (PaddingTrueTagScore, "padding"),
    (UnmaskedTagScore, None),
    (MaskedTokenLoss, "any"),
])
def test_tags_beside_a_sequence_are_one_per_step_and_sample(model, mask):
    # A BiLSTM-CRF's forward(tokens, tags, mask) hands tags and mask to the CRF, which indexes
    # its transitions by the tags: "no layer gives their shape", and the error asked for both.
    # The mask's polarity is what a call on padded steps says, not its name; a mask under
    # which the padding changes the output is not taken for padding (a masked-LM loss's).
    if model == "masked_crf":
        from reference_models.masked_crf import MaskedCRFTagger

        model = MaskedCRFTagger
    target = resolved(model)
    tags = "labels" if model is MaskedTokenLoss else "tags"
    arguments = strategy_arguments(target.spec.inputs[tags])
    top = {MaskedTokenLoss: 19}.get(model, 3)
    assert arguments["shape"] == ("batch", "time") and arguments["max_value"] == top
    assert f"one per step and sample, laid out as the sequence, 0 to {top}" in target.inferred_inputs[tags]
    masks = [n for n in target.spec.inputs if "mask" in n]
    if mask is None:
        assert not masks
    elif mask == "any":
        assert strategy_kind(target.spec.inputs[masks[0]]) == "tensors"
        assert "so it is not taken for padding" in target.inferred_inputs[masks[0]]
    else:
        assert strategy_kind(target.spec.inputs[masks[0]]) == "attention_masks"
        assert strategy_arguments(target.spec.inputs[masks[0]]).get("marks", "tokens") == mask
        said = "True at padding" if mask == "padding" else "True at tokens"
        assert f"no layer takes it: {said}, padding on the right (3 steps padded to 5" in target.inferred_inputs[masks[0]]
    assert_callable(target, max_examples=3)


def test_a_mask_that_is_no_padding_and_takes_no_other_pattern_is_left_to_the_spec():
    with pytest.raises(TargetError) as excinfo:
        resolved(FirstStepTagScore)
    text = str(excinfo.value)
    assert "cannot infer forward argument 'mask'" in text and "under neither polarity" in text
    assert "inputs={'mask': dyncheck.strategies.attention_masks(dtype=torch.bool)}" in text
    assert "'tags'" not in text
    # given that line, the tags are inferred beside it
    target = resolved(FirstStepTagScore, inputs={"mask": dst.attention_masks(dtype=torch.bool)})
    assert strategy_arguments(target.spec.inputs["tags"])["shape"] == ("batch", "time")
    assert_callable(target, max_examples=3)


def test_lengths_a_mask_gives_a_pack_are_not_the_lstms_input():
    # lengths = mask.sum(1); pack_padded_sequence(embedded, lengths): the mask was read as
    # the LSTM's input, [batch, time, 8] floats.
    from dyncheck.infer.source import _mentions_data

    call = ast.parse("pack_padded_sequence(self.embedding(tokens), lengths, batch_first=True)").body[0].value
    assert not _mentions_data(call, {"lengths"}) and _mentions_data(call, {"tokens"})
    keyword = ast.parse("nn.utils.rnn.pack_padded_sequence(input=x, lengths=n)").body[0].value
    assert not _mentions_data(keyword, {"n"}) and _mentions_data(keyword, {"x"})


class PoppedContext(nn.Module):
    """A wrapper that takes the context out of **kwargs and hands the rest on: the context
    reaches to_ctx only, not fn."""

    def __init__(self, dim=16, context_dim=6):
        super().__init__()
        self.fn = nn.Linear(dim, dim)
        self.to_ctx = nn.Linear(context_dim, dim)

    def forward(self, x, **kwargs):
        context = kwargs.pop("context")
        return self.fn(x, **kwargs) + self.to_ctx(context).mean(1, keepdim=True)


class PoppedContextReader(nn.Module):
    def __init__(self):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(4, 16))
        self.block = PoppedContext()

    def forward(self, data):
        return self.block(self.latents.expand(data.shape[0], -1, -1), context=data).mean(1)


def test_a_keyword_taken_out_of_kwargs_is_not_handed_on_with_the_rest():
    # it was read as fn's input: [batch, 16], and every check crashed
    target = resolved(PoppedContextReader)
    assert strategy_arguments(target.spec.inputs["data"])["shape"][-1] == 6
    assert_callable(target, max_examples=3)


class SpeakerRows(nn.Module):
    """One speaker id per sample, picked in a loop over the batch; a comprehension over the
    heads reuses the loop variable's name."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 8)
        self.speaker = nn.Parameter(torch.randn(5, 8))
        self.proj = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])

    def forward(self, x, speaker_id):
        x = self.inp(x)
        rows = []
        for i in range(x.shape[0]):
            rows.append(x[i] + self.speaker[speaker_id[i]])
        h = torch.stack(rows)
        return torch.stack([self.proj[i](h) for i in range(2)], 1).sum(1)


class SpeakerRowsTwoLoops(SpeakerRows):
    def forward(self, x, speaker_id):
        x = self.inp(x)
        rows = []
        for i in range(x.shape[0]):
            rows.append(x[i] + self.speaker[speaker_id[i]])
        h = torch.stack(rows)
        for i in range(2):
            h = self.proj[i](h)
        return h


@pytest.mark.parametrize("model", [SpeakerRows, SpeakerRowsTwoLoops])
def test_a_loop_variable_reused_by_another_loop_picks_what_its_own_loop_reads(model):
    # speaker_id[i] in a loop over the batch, and another loop's i over the heads: drawn as
    # ('time', 'batch') steps, and every check raised IndexError
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["speaker_id"])["shape"] == ("batch",)
    assert_callable(target, max_examples=3)


def test_a_list_the_loop_grows_and_reads_is_a_state_one_it_only_grows_is_not():
    from dyncheck.infer.flow import _carries_state

    def body(source):
        return ast.parse(source).body

    assert _carries_state(body("h = self.cell(x[t], m[-1] if m else None)\nm.append(h)"))
    assert not _carries_state(body("outs.append(self.fc(x[i]))"))
    # a list made anew on every step carries nothing to the next
    assert not _carries_state(body("m = []\nm.append(x[i])\ny = torch.stack(m)"))


def test_a_module_that_only_keeps_what_it_made_to_be_looked_at_keeps_no_state():
    # self.last = self.lin(x), read by nothing: the loop walks the samples of a batch
    target = resolved(LookedAtInALoop)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", 8)


class _BagAttention(nn.Module):
    """Self-attention over one bag's instances [instances, 8]; keeps its last weights to be
    looked at, read by a getter, and counts its calls."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.last_attention, self.calls = None, 0

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        a = (q @ k.T).softmax(-1)
        self.last_attention = a.detach()
        self.calls += 1
        return a @ v

    def attention(self):
        return self.last_attention


class BagsOneByOne(nn.Module):
    """Bags [batch, instances, 8], each encoded on its own in a loop over the batch."""

    def __init__(self):
        super().__init__()
        self.mix, self.head = _BagAttention(), nn.Linear(8, 3)

    def forward(self, x):
        outs = []
        for i in range(x.size(0)):
            outs.append(self.head(self.mix(x[i])))
        return torch.stack(outs)


class BagsReadBack(BagsOneByOne):
    """Reads back what this sample appended: nothing carried to the next."""

    def forward(self, x):
        outs, pooled = [], []
        for i in range(x.size(0)):
            outs.append(self.mix(x[i]))
            pooled.append(self.head(outs[-1] + outs[-1].mean(0)))
        return torch.stack(pooled)


class BagsByBatchSize(BagsOneByOne):
    """The loop's bound a batch size read from the shape, a carried concatenation."""

    def forward(self, x):
        batch_size, n, _ = x.shape
        out = x.new_zeros(0, n, 3)
        for b in range(batch_size):
            out = torch.cat([out, self.head(self.mix(x[b]))[None]], 0)
        return out


@pytest.mark.parametrize("model", [BagsOneByOne, BagsReadBack, BagsByBatchSize])
def test_a_loop_over_the_samples_stays_one_over_the_batch(model):
    # A getter's read of what forward keeps to be looked at, a counter, a list read back
    # after this step grew it, a bound named batch_size: none carries a state from step to
    # step, and the bags were drawn time-major, each x[i] a mix of samples: batch_invariance
    # failed the correct model.
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 8)
    assert_callable(target, max_examples=3)


def test_an_index_read_by_a_later_generator_of_the_comprehension_is_stepped():
    from dyncheck.infer.forward import _stepped

    assert _stepped(ast.parse("[j for i in range(steps) for j in tags[i]]"), "tags")
    assert not _stepped(ast.parse("[j for i in range(len(x)) for j in tags[i]]"), "tags")  # over the batch


class _SeqFirstBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        seq_len, batch_size, _ = x.shape
        return torch.einsum("ijb,jbd->ibd", torch.einsum("ibd,jbd->ijb", x, x).softmax(1), self.lin(x))


class _BatchFirstBlock(_SeqFirstBlock):
    def forward(self, x):
        B, T, C = x.size()
        return (x @ x.transpose(1, 2)).softmax(-1) @ self.lin(x)


class NamedLayoutLM(nn.Module):
    def __init__(self, block=_SeqFirstBlock):
        super().__init__()
        self.embedding, self.block = nn.Embedding(10, 8), block()

    def forward(self, tokens):
        return self.block(self.embedding(tokens))


class BatchFirstNamedLM(NamedLayoutLM):
    def __init__(self):
        super().__init__(_BatchFirstBlock)


@pytest.mark.parametrize(("model", "shape"), [(NamedLayoutLM, ("time", "batch")), (BatchFirstNamedLM, ("batch", "time"))])
def test_a_custom_layer_that_names_its_inputs_axes_says_its_layout(model, shape):
    # seq_len, batch_size, _ = x.shape: labml's attention over time-major inputs; the ids were
    # drawn batch-first and the attention mixed the samples of the batch
    target = resolved(model)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == shape
    if shape[0] == "time":
        assert "block's forward reads its input's shape as seq_len, batch_size, _ = x.shape" in target.inferred_inputs["tokens"]
    assert_callable(target, max_examples=3)


class _EncoderLayerOwnForward(nn.TransformerEncoderLayer):
    """A torch sequence layer subclassed with a forward of its own."""

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        return super().forward(src, src_mask=src_mask, src_key_padding_mask=src_key_padding_mask)


class SubclassedLayerLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 8)
        self.layer = _EncoderLayerOwnForward(8, 2, 16, dropout=0.0, batch_first=True)

    def forward(self, tokens):
        return self.layer(self.embedding(tokens))


class _TransposedFirst(nn.Module):
    """Batch-first outside: transposes, then names the time-major axes it made."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        x = x.transpose(0, 1)
        seq_len, batch_size, _ = x.shape
        mixed = torch.einsum("ijb,jbd->ibd", torch.einsum("ibd,jbd->ijb", x, x).softmax(1), self.lin(x))
        return mixed.transpose(0, 1)


class TransposedFirstNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj, self.block = nn.Linear(6, 8), _TransposedFirst()

    def forward(self, x):
        return self.block(self.proj(x))


def test_a_subclassed_torch_layer_and_a_rearranged_input_keep_their_layouts():
    # a torch layer subclassed with its own forward crashed resolution (no names to quote);
    # names unpacked after forward transposed its input are not the input's layout
    target = resolved(SubclassedLayerLM)
    assert strategy_arguments(target.spec.inputs["tokens"])["shape"] == ("batch", "time")
    target = resolved(TransposedFirstNet)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("batch", "time", 6)
    assert_callable(target, max_examples=3)


class _HelperNeuron(nn.Module):
    """snntorch's Leaky with init_hidden=True: the state updated through a method of its own."""

    def __init__(self):
        super().__init__()
        self.lin, self.mem = nn.Linear(8, 6), torch.zeros(1)

    def state_function(self, x):
        return 0.5 * self.mem + self.lin(x)

    def forward(self, x):
        self.mem = self.state_function(x)
        return self.mem


class HelperStateInTheModule(StateInTheModule):
    def __init__(self):
        super().__init__(_HelperNeuron)

    def forward(self, x):
        self.layer.mem = torch.zeros(1)
        out = []
        for t in range(x.size(0)):
            out.append(self.layer(x[t]))
        return torch.stack(out, 1)


def test_a_state_updated_through_a_method_of_the_module_is_kept():
    target = resolved(HelperStateInTheModule)
    assert strategy_arguments(target.spec.inputs["x"])["shape"] == ("time", "batch", 8)
    assert_callable(target, max_examples=3)


def test_an_input_whose_consumers_give_no_shape_is_probed_beside_the_others():
    # rtdl's LinearEmbeddings (raw per-column weights) beside categorical ids: x_cont was
    # refused, though alone it would have been probed at its consumers' sizes
    from reference_models.tabular import ParameterTokenTabular

    target = resolved(ParameterTokenTabular)
    assert list(target.spec.inputs) == ["x_cont", "x_cat"]
    assert strategy_arguments(target.spec.inputs["x_cont"])["shape"] == ("batch", 5)
    assert "beside x_cat as inferred, it first ran on [2, 5]" in target.inferred_inputs["x_cont"]
    assert_callable(target, max_examples=3)


class _SummedColumnWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(6, 8) / 8**0.5), nn.Parameter(torch.zeros(6, 8))

    def forward(self, x):
        return (x[..., None] * self.weight + self.bias).sum(-2)


class MemoryAttender(nn.Module):
    """Token ids attend to a per-sample memory [batch, slots, 6] of raw per-feature weights:
    a memory of vectors [2, 6] runs too, only by broadcasting, each token attending to the
    whole batch's rows."""

    def __init__(self):
        super().__init__()
        self.emb, self.mem = nn.Embedding(10, 8), _SummedColumnWeights()
        self.head = nn.Parameter(torch.randn(8, 3))

    def forward(self, ids, memory):
        h, m = self.emb(ids), self.mem(memory)
        return (torch.softmax(h @ m.transpose(-1, -2), -1) @ m) @ self.head


def test_a_size_that_runs_only_by_broadcasting_against_the_batch_is_not_drawn():
    target = resolved(MemoryAttender)
    assert strategy_arguments(target.spec.inputs["memory"])["shape"] == ("batch", "time", 6)
    assert "with each sample's outputs its own" in target.inferred_inputs["memory"]
    assert_callable(target, max_examples=3)


class _Optional(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)


class OptionalThreshold(_Optional):
    def forward(self, x, control: float = 0.0):
        return self.fc2(self.fc1(x)) if control > 0.5 else self.fc1(x)


class OptionalMode(_Optional):
    def forward(self, x, mode="plain"):
        h = self.fc1(x)
        if mode == "deep":
            h = self.fc2(h)
        return h


class OptionalGate(_Optional):
    def forward(self, x, gate: bool = False):
        h = self.fc1(x)
        if gate:
            h = self.fc2(h)
        return h


class OptionalFlags(_Optional):
    # defaults kept: a flag not named like a control, a None default, a control never branched on
    def forward(self, x, return_hidden: bool = False, control=None, control_scale: float = 1.0):
        h = self.fc1(x) * control_scale
        if control is not None:
            h = h + control
        return (h, x) if return_hidden else h


@pytest.mark.parametrize(("model", "name", "strategy", "note"), [
    (OptionalThreshold, "control", dst.controls(thresholds=(0.5,)),
     "optional (default 0.0), drawn as a control: a control value compared with 0.5 in forward; drawn as floats"),
    (OptionalMode, "mode", dst.controls(choices=["plain", "deep"]),
     "optional (default 'plain'), drawn as a control: compared with 'deep' in forward"),
    (OptionalGate, "gate", dst.controls(dtype=bool), "optional (default False), drawn as a control: annotated bool"),
])
def test_an_optional_control_forward_branches_on_is_drawn(model, name, strategy, note):
    # Left at its default, the branch it opens never ran: coverage called its layer dead.
    target = resolved(model)
    same(target.spec.inputs[name], strategy)
    assert target.inferred_inputs[name] == note
    assert_callable(target, max_examples=10)


def test_other_optional_arguments_keep_their_defaults():
    target = resolved(OptionalFlags)
    assert list(target.spec.inputs) == ["x"]


class _LongestLength(nn.Module):
    def __init__(self, num_tokens, max_seq_len, dim):
        super().__init__()
        self.max_seq_len, self.emb = max_seq_len, nn.Embedding(num_tokens, dim)

    def forward(self, x):
        assert x.shape[1] <= self.max_seq_len
        return self.emb(x)


@pytest.mark.parametrize(("dims", "longest"), [({}, 16), ({"time": (2, 20)}, 40), ({"time": 5}, 10)])
def test_a_longest_length_holds_the_longest_time_drawn(dims, longest):
    # As a size (6), max_seq_len was shorter than the 8 steps drawn: every check failed on
    # the model's own limit.
    from dyncheck.target import resolve_spec

    target = resolve_spec(Spec(_LongestLength, dims=dims))
    assert target.spec.init == {"num_tokens": 8, "max_seq_len": longest, "dim": 6}
    assert target.inferred_init["max_seq_len"].startswith("a longest length: twice the longest 'time' drawn")


class _RawRecurrence(nn.Module):
    # a recurrence over what a raw weight made of the sequence: no layer gives its shape
    def __init__(self, message="need a sequence"):
        super().__init__()
        self.weight, self.message = nn.Parameter(torch.randn(8, 6) * 0.3), message

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(self.message)
        U = x.matmul(self.weight)
        c = U.new_zeros(U.shape[1:])
        for t in range(x.size(0)):
            c = torch.sigmoid(U[t]) * c + U[t]
        return c


class _NamedLayout(_RawRecurrence):
    # SRU's own words on vectors; the loop here steps through the batch-first axis 1
    def __init__(self):
        super().__init__("There must be 3 dimensions for (length, batch_size, input_size)")

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(self.message)
        return x.matmul(self.weight).cumsum(0)


@pytest.mark.parametrize(("model", "note"), [
    (_RawRecurrence, "; time-major: a loop carrying a state steps through axis 0 (U[t])"),
    (_NamedLayout, "; time-major: its error on vectors names the layout (length, batch_size, ...)"),
])
def test_a_probed_sequence_is_time_major_where_the_model_says_so(model, note):
    # [2, 3, F] runs either way round; read batch-first, the loop walked the batch as time
    # and batch_invariance failed the correct model (sru.SRU).
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("time", "batch", 8)))
    assert target.inferred_inputs["x"].endswith(note)
    assert_callable(target, max_examples=10)


class _Stages(nn.Module):
    def __init__(self, dim: int, depth: tuple, dims: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(*[nn.Linear(dim, dim) for _ in range(d)]) for d in depth
        )
        self.dims = dims

    def forward(self, x):
        for stage in self.stages:
            x = stage(x) + x
        return x


def test_a_tuple_annotation_gets_one_value_per_stage():
    # MEGABYTE's depth: tuple was given the int 2 by its name, and the build raised
    # "'int' object is not iterable".
    from dyncheck.infer.constructor import infer_init

    found = infer_init(_Stages, {})
    assert {name: value.value for name, value in found.items()} == {"dim": 8, "depth": (2, 2), "dims": (6, 4)}
    assert found["depth"].why == "annotated tuple: a count per stage, two stages"
    assert found["dims"].why == "annotated tuple[int, ...]: a size per stage, two stages"


class _FlaggedLayout(nn.Module):
    # a written-out recurrence whose layout follows a flag: the bound names neither axis
    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.batch_first, self.weight = batch_first, nn.Parameter(torch.randn(8, 6) * 0.3)

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError("x must be (seq_len, batch, dim) when batch_first=False, else (batch, seq_len, dim)")
        u = x.matmul(self.weight)
        length = u.size(1) if self.batch_first else u.size(0)
        c = u.new_zeros(u.size(0) if self.batch_first else u.size(1), 6)
        for t in range(length):
            ut = u[:, t] if self.batch_first else u[t]
            c = torch.sigmoid(ut) * c + ut
        return c


def test_a_layout_under_a_flag_is_left_to_the_probe():
    # A bound chosen by a conditional between two sizes, and an error naming both layouts,
    # were read as time-major: a batch-first model failed batch_invariance.
    target = resolved(_FlaggedLayout)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    assert "time-major" not in target.inferred_inputs["x"]


class _Modes(nn.Module):
    # mmengine's forward(inputs, data_samples=None, mode="tensor"): "loss" needs the samples
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, data_samples=None, mode="tensor"):
        out = self.fc(x)
        if mode == "loss":
            return ((out - data_samples) ** 2).mean()
        return out


class _Route(nn.Module):
    def __init__(self):
        super().__init__()
        self.experts = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))

    def forward(self, x, route: int = -1):
        if route < 0:
            return sum(e(x) for e in self.experts)
        return self.experts[route](x)


def test_an_optional_control_is_drawn_only_where_each_value_runs_and_with_its_default():
    from dyncheck.target import resolve_spec

    modes = resolve_spec(Spec(_Modes))
    assert list(modes.spec.inputs) == ["x"]
    assert modes.kept_defaults["mode"] == (
        "an optional control, not drawn: with mode='loss' the model raised TypeError (unsupported operand type(s) "
        "for -: 'Tensor' and 'NoneType')"
    )
    # the default's own path is among the values: -1, then each expert
    route = resolve_spec(Spec(_Route))
    assert strategy_arguments(route.spec.inputs["route"])["min_value"] == -1
    assert_callable(route, max_examples=10)


class _Chunked(nn.Module):
    def __init__(self, block_size, max_len):
        super().__init__()
        self.block_size, self.max_len, self.emb = block_size, max_len, nn.Embedding(8, 4)

    def forward(self, x):
        return self.emb(x)


def test_a_block_size_is_a_size_and_a_spec_names_its_own_longest():
    from dyncheck.target import resolve_spec

    assert resolve_spec(Spec(_Chunked)).spec.init == {"block_size": 8, "max_len": 16}
    # a sequence named otherwise, or drawn from st.integers
    assert resolve_spec(Spec(_Chunked, dims={"seq": (1, 24)})).spec.init["max_len"] == 48
    assert resolve_spec(Spec(_Chunked, dims={"time": st.integers(2, 24)})).spec.init["max_len"] == 48


def test_a_table_of_columns_picked_by_number_is_drawn_below_every_vocabulary():
    # Read as token ids below the first Embedding's 6 and a "time" of columns, the second
    # Embedding (4 ids) raised IndexError in every check.
    from reference_models.picked_columns import PickedColumnsTabular

    target = resolved(PickedColumnsTabular)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 3), min_value=0.0, max_value=3.0))
    assert target.inferred_inputs["x"].startswith("a table of 3 columns picked by number, 2 of them embedded")
    assert_callable(target, max_examples=20)


def _pad_to_even(x):
    if x.shape[1] % 2:
        return torch.cat([x, x[:, -1:] * 0], 1) * math_factor  # noqa: F821 -- the bug: never defined
    return x


class _UndefinedOnOdd(nn.Module):
    # hourglass-transformer-pytorch 0.0.6's pad_to_multiple uses `math` it never imported
    def __init__(self):
        super().__init__()
        self.emb, self.out = nn.Embedding(20, 8), nn.Linear(8, 20)

    def forward(self, x):
        return self.out(_pad_to_even(self.emb(x)))


def test_a_name_error_at_some_sizes_is_not_a_size_the_model_refuses():
    # Read as the model refusing odd lengths, the sizes were narrowed to even ones and every
    # check passed: the NameError showed only in --dyncheck-explain.
    target = resolved(_UndefinedOnOdd)
    assert "time" not in target.inferred_dims
    assert dict(target.spec.dims).get("time", (1, 8)) == (1, 8)


class _ClsAndWindow(nn.Module):
    # a CLS id and a window of ids, each embedded: token ids, not a table
    def __init__(self):
        super().__init__()
        self.emb, self.out = nn.Embedding(50, 8), nn.Linear(8, 3)

    def forward(self, tokens):
        return self.out(self.emb(tokens[:, 0]) + self.emb(tokens[:, 1:6]).mean(1))


def test_ids_picked_by_number_without_a_continuous_column_are_no_table():
    target = resolved(_ClsAndWindow)
    assert not target.inferred_inputs["tokens"].startswith("a table")
    assert strategy_arguments(target.spec.inputs["tokens"])["dtype"] == torch.int64


class _OptionalKernel(nn.Module):
    # odd lengths need a package not installed here: a gap in the environment, narrowed
    def __init__(self):
        super().__init__()
        self.emb, self.out = nn.Embedding(20, 8), nn.Linear(8, 20)

    def forward(self, x):
        if x.shape[1] % 2:
            from dyncheck_absent_kernel import odd_pool  # noqa: F401
        return self.out(self.emb(x))


def test_a_missing_optional_package_at_some_sizes_still_narrows_them():
    target = resolved(_OptionalKernel)
    assert "ModuleNotFoundError" in target.inferred_dims["time"]


class _ScanOver(nn.Module):
    # minGRU's parallel form, cut down: a Linear makes every step at once, a scan runs in code
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, x, prev=None):
        seq_len = x.shape[1]
        h = torch.tanh(self.proj(x))
        if prev is not None:
            h = torch.cat([prev, h], dim=1)
        return h.cumsum(dim=1)[:, -seq_len:]


class _QuantileHead(nn.Module):
    # non-crossing quantiles: a cumulative sum over a vector's features, no sequence
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return torch.nn.functional.softplus(self.fc(x)).cumsum(dim=1)


class _WindowLength(nn.Module):
    # a window's length read off the input, no scan: an MLP over [batch, features]
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        seq_len = x.shape[1]
        return self.fc(x) / seq_len


def test_a_scan_over_an_axis_forward_names_a_length_is_a_sequence():
    # minGRU-pytorch: drawn as vectors it ran, its scan over the features, its one-step form
    # (seq_len == 1) never; reference_models/parallel_scan.py is the whole pattern.
    target = resolved(_ScanOver)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    assert target.inferred_inputs["x"].endswith(
        "; a sequence: forward names its axis 1 (seq_len = x.shape[1]), cuts it by that length"
        " (h.cumsum(dim=1)[:, -seq_len:]) and scans over it (h.cumsum(dim=1))"
    )
    assert_callable(target)


class _ScaledQuantiles(nn.Module):
    # both idioms in a vector model: a window's length and non-crossing quantiles
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        seq_len = x.shape[1]
        q = self.fc(x - x.sum(dim=1, keepdim=True) / seq_len)
        return torch.cat([q[:, :1], torch.nn.functional.softplus(q[:, 1:])], dim=1).cumsum(dim=1)


class _OwnScan(nn.Module):
    # a helper whose own parameter is called x names and scans the head's features
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        def ordered(x):
            seq_len = x.shape[1]
            return torch.nn.functional.softplus(x).cumsum(dim=1)[:, -seq_len:]

        return ordered(self.fc(x))


@pytest.mark.parametrize("model", [_QuantileHead, _WindowLength, _ScaledQuantiles, _OwnScan])
def test_a_scan_or_a_named_length_alone_stays_vectors(model):
    target = resolved(model)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))


class _ExtendedWindow(nn.Module):
    # a window [batch, 12] extended by forecast increments summed, its last seq_len kept:
    # named, cut and scanned, yet on [2, 3, 12] the concatenation raises
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        seq_len = x.shape[1]
        path = x[:, -1:] + self.fc(x).cumsum(dim=1)
        return torch.cat([x, path], dim=1)[:, -seq_len:]


def test_a_named_scan_the_model_refuses_as_a_sequence_stays_vectors():
    target = resolved(_ExtendedWindow)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 12)))
    assert "; vectors, though forward names, cuts and scans its axis 1: on [2, 3, 12] it raised RuntimeError" in (
        target.inferred_inputs["x"]
    )
    assert_callable(target)


def test_a_neuron_keeping_its_state_is_found_through_a_tuple_and_a_base_class():
    # spikes, self.mem = step(x, self.mem), in a base class's forward: the loop handing the
    # layer one step at a time keeps a state, and the input is time-major
    from dyncheck.infer.flow import _assigns_itself
    from reference_models.buggy.registry_reset import _RegisteredLeaky
    from reference_models.spiking import HiddenLeaky, ResetLeakySNN

    assert _assigns_itself(HiddenLeaky) and _assigns_itself(_RegisteredLeaky)
    same(resolved(ResetLeakySNN).spec.inputs["data"], dst.tensors(shape=("time", "batch", 8)))


class _BoundStep(nn.Module):
    # a bound, not one length per sample: x[:, max_len - 1]
    def forward(self, x, max_len):
        return x[:, max_len - 1]


class _SharedStep(nn.Module):
    def forward(self, x, seq_len):
        return x[:, seq_len - 1]


def test_a_length_short_name_forward_takes_one_from_is_the_lengths():
    # RecBole's gather_indexes(output, item_seq_len - 1) read as indices into another input:
    # refused, with a suggested Spec that drew 0 and crashed every check
    from dyncheck.infer import last_steps_as_lengths
    from reference_models.last_item import LastItemGRU

    target = resolved(LastItemGRU)
    assert target.spec.lengths == "item_seq_len"
    assert target.inferred_inputs["item_seq_len"].startswith(
        "sequence lengths, by its name and as forward takes each sequence's last valid step (item_seq_len - 1)"
    )
    assert last_steps_as_lengths(_BoundStep(), "max_len") is None
    assert last_steps_as_lengths(_SharedStep(), "seq_len") is None
    # counts are not lengths: annotated int, a range's bound, a slice's, a row of a table
    assert last_steps_as_lengths(_PromptLen(), "prompt_len") is None
    assert last_steps_as_lengths(_DecodeSteps(), "out_len") is None
    assert last_steps_as_lengths(_TablePosition(), "src_len") is None
    # each row's last valid step, picked beside the batch's rows or through a gather
    assert last_steps_as_lengths(_PairedIndex(), "x_len") == "x_len - 1"
    assert last_steps_as_lengths(_PaddedTo(), "out_len") is None  # a size handed to a constructor


class _PaddedTo(nn.Module):
    def forward(self, x, out_len):
        return torch.cat([x, x.new_zeros(x.size(0), out_len - 1, x.size(2))], dim=1)


class _PromptLen(nn.Module):
    def forward(self, h, prompt_len: int):
        return h[:, prompt_len - 1:]


class _DecodeSteps(nn.Module):
    def forward(self, x, out_len):
        for _ in range(out_len - 1):
            x = x + 1
        return x


class _TablePosition(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(8, 4))

    def forward(self, x, src_len):
        return x + self.table[src_len - 1]


class _PairedIndex(nn.Module):
    def forward(self, out, x_len):
        return out[torch.arange(out.size(0)), x_len - 1]


def test_a_dict_handed_along_a_chain_of_modules_is_what_the_first_reads_with_what_later_ones_need():
    # sentence-transformers' SentenceTransformer: refused (no layer reads the dict); as a
    # plain nn.Sequential, drawn as the ids its first leaf layer embeds: every check crashed
    from reference_models.feature_chain import FeatureChain, MeanPooling, WordEmbeddings

    for model in (FeatureChain, lambda: nn.Sequential(WordEmbeddings(), MeanPooling())):
        target = resolved(model)
        name = next(iter(target.spec.inputs))
        assert target.inferred_inputs[name].startswith("handed to the first module of a chain, WordEmbeddings: a dict")
        assert sorted(target.spec.inputs[name].wrapped_strategy.mapping) == ["attention_mask", "input_ids"]
        assert_callable(target)
    # a later module that asks for an entry only if it is there (sentence-transformers'
    # Pooling: if "token_weights_sum" in features) leaves it out; a chain of tensors whose
    # first module is the author's is read as before
    class OptionalWeights(nn.Module):
        def forward(self, features):
            mask = features["attention_mask"].unsqueeze(-1).to(features["token_embeddings"].dtype)
            if "token_weights_sum" in features:
                mask = mask * features["token_weights_sum"]
            features["sentence_embedding"] = (features["token_embeddings"] * mask).sum(1) / mask.sum(1).clamp(min=1)
            return features

    target = resolved(lambda: nn.Sequential(WordEmbeddings(), OptionalWeights()))
    assert sorted(target.spec.inputs["input"].wrapped_strategy.mapping) == ["attention_mask", "input_ids"]

    class OptionalTypes(nn.Module):  # the first module asks for token types only if given
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)

        def forward(self, features):
            ids = features["input_ids"]
            if "token_type_ids" in features.keys():
                ids = ids + features["token_type_ids"]
            features.update({"token_embeddings": self.emb(ids)})
            return features

    class KeysIn(nn.Module):
        def forward(self, features):
            mask = features["attention_mask"] if "attention_mask" in features.keys() else None
            tokens = features["token_embeddings"]
            features["sentence_embedding"] = tokens.mean(1) if mask is None else tokens[:, 0]
            return features

    target = resolved(lambda: nn.Sequential(OptionalTypes(), KeysIn()))
    assert sorted(target.spec.inputs["input"].wrapped_strategy.mapping) == ["input_ids"]

    class GetAndIndex(nn.Module):
        # an entry fetched with .get for a log line and read by key too is required; one
        # whose .get is the test of an if around its read is not
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)

        def forward(self, features):
            mask = features.get("attention_mask")
            ids = features["input_ids"]
            if features.get("token_type_ids") is not None:
                ids = ids + features["token_type_ids"]
            tokens = self.emb(ids) * features["attention_mask"].unsqueeze(-1)
            features.update({"token_embeddings": tokens, "mask_given": mask is not None})
            return features

    target = resolved(lambda: nn.Sequential(GetAndIndex(), KeysIn()))
    assert sorted(target.spec.inputs["input"].wrapped_strategy.mapping) == ["attention_mask", "input_ids"]
    assert_callable(target)

    class Scale(nn.Module):
        def forward(self, x):
            return x * 2

    same(resolved(lambda: nn.Sequential(Scale(), nn.Linear(8, 4))).spec.inputs["input"], dst.tensors(shape=("batch", 8)))
    # a chain starting with torch's own layer is read from that layer, as before
    same(resolved(lambda: nn.Sequential(nn.Linear(8, 4), nn.ReLU())).spec.inputs["input"], dst.tensors(shape=("batch", 8)))


def test_a_column_picked_from_the_last_axis_is_drawn_with_that_axis():
    # pytorch-forecasting's x["encoder_cat"][..., 0]: drawn as [batch, time] ids, the pick
    # took the steps away and every check raised (in a dict), or a GRU ran the batch as one
    # sequence and batch_invariance failed the correct model (an argument)
    from reference_models.categorical_table import ForecastEncoder

    target = resolved(ForecastEncoder)
    entries = target.spec.inputs["x"].wrapped_strategy.mapping
    same(entries["encoder_cat"], dst.tensors(shape=("batch", "time", 2), dtype=torch.int64, min_value=0, max_value=4))
    same(entries["encoder_cont"], dst.tensors(shape=("batch", "time", 3)))
    assert "it reaches weekday as column 0 of its last axis ([..., 0]): 2 columns" in (
        target.inferred_inputs["x"]
    )
    assert "ids below the smallest, store's 5" in target.inferred_inputs["x"]
    assert_callable(target)
    target = resolved(_ColumnIntoGRU)
    same(target.spec.inputs["x_cat"], dst.tensors(shape=("batch", "time", 1), dtype=torch.int64, min_value=0, max_value=4))
    assert_callable(target)
    # x[:, 0]: a table's first column or a sequence's first step, left to the calls
    same(resolved(_FirstStep).spec.inputs["x"], dst.tensors(shape=("batch", "time", 8)))
    # picks through a name that holds the input count, each column once
    target = resolved(_AliasedColumns)
    same(target.spec.inputs["x_cat"], dst.tensors(shape=("batch", "time", 2), dtype=torch.int64, min_value=0, max_value=4))
    assert_callable(target)
    # an input a layer also takes whole keeps its shape (the first token's ids beside the sequence's)
    target = resolved(_FirstTokenTag)
    same(target.spec.inputs["ids"], dst.tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=9))
    assert_callable(target)


class _AliasedColumns(nn.Module):
    def __init__(self):
        super().__init__()
        self.weekday, self.store, self.fc = nn.Embedding(7, 4), nn.Embedding(5, 4), nn.Linear(8, 2)

    def forward(self, x_cat):
        cats = x_cat.long()
        return self.fc(torch.cat([self.weekday(cats[..., 0]), self.store(cats[..., 1])], -1))


class _FirstTokenTag(nn.Module):
    def __init__(self):
        super().__init__()
        self.lang, self.tok, self.gru = nn.Embedding(10, 8), nn.Embedding(10, 8), nn.GRU(8, 8, batch_first=True)

    def forward(self, ids):
        return self.gru(self.tok(ids))[0][:, -1] + self.lang(ids[..., 0])


class _ColumnIntoGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.gru = nn.Embedding(5, 4), nn.GRU(4, 6, batch_first=True)

    def forward(self, x_cat):
        ids = x_cat[..., 0].long()
        return self.gru(self.emb(ids))[0][:, -1]


class _FirstStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(x[:, 0])


def test_a_submodule_held_in_a_local_name_is_followed():
    # sb3-contrib's policy wrapped as p = self.policy; p.lstm(obs): refused, or drawn as
    # vectors, which a batch-first LSTM ran as one unbatched sequence (batch_invariance failed)
    target = resolved(_AliasedPolicy)
    same(target.spec.inputs["obs"], dst.tensors(shape=("batch", "time", 4)))
    assert target.inferred_inputs["obs"].startswith("first consumed by policy.lstm (LSTM(input_size=4, batch_first=True))")
    assert_callable(target)


class _Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)


class _AliasedPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.policy = _Recurrent()

    def forward(self, obs):
        p = self.policy
        out, _ = p.lstm(obs)
        p = out  # rebound: no longer the submodule
        return p[:, -1]


def test_a_recurrence_in_a_layer_after_the_first_says_where_the_steps_are():
    # norse's SequentialState(Linear, LIF, ...): drawn as vectors, the LIF's loop walked the
    # batch as time and batch_invariance failed the correct model
    from reference_models.integrator_stack import IntegratorStack

    target = resolved(IntegratorStack)
    same(target.spec.inputs["x"], dst.tensors(shape=("time", "batch", 8)))
    assert target.inferred_inputs["x"].endswith(
        "; a sequence: integrators, which it reaches, carries a state through axis 0 (x[t])"
    )


class _Integrate(nn.Module):
    def forward(self, x):
        state = torch.zeros_like(x[0])
        states = []
        for t in range(x.shape[0]):
            state = 0.9 * state + torch.tanh(x[t])
            states.append(state)
        return torch.stack(states)


class _BatchFirstIntegrated(nn.Module):
    # batch-first, swapped to time-major before the integrators: the rule is not asked
    def __init__(self):
        super().__init__()
        self.fc, self.integrate, self.out = nn.Linear(8, 16), _Integrate(), nn.Linear(16, 4)

    def forward(self, x):
        return self.out(self.integrate(self.fc(x).transpose(0, 1)).transpose(0, 1))


class _Chunks(nn.Module):
    # a recurrence over chunks of a vector's features, made by a reshape: axis 1, not steps
    def __init__(self):
        super().__init__()
        self.cell = nn.Linear(8, 4)

    def forward(self, x):
        c = x.reshape(x.shape[0], 4, 4)
        h = x.new_zeros(x.shape[0], 4)
        for t in range(c.shape[1]):
            h = torch.tanh(self.cell(torch.cat([c[:, t], h], dim=1)))
        return h


class _ChunkedVectors(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.rec = nn.Linear(8, 16), _Chunks()

    def forward(self, x):
        return self.rec(self.fc(x))


class _RunningOverRows(nn.Module):
    # a layer after the Linear that carries a running sum over its rows and mixes them:
    # read time-major, each sample's outputs are not its own at [3, 2, F], so vectors stay
    def forward(self, x):
        total = torch.zeros_like(x[0])
        rows = []
        for t in range(x.shape[0]):
            total = total + x[t]
            rows.append(total)
        return torch.stack(rows).mean(1, keepdim=True).expand(-1, x.shape[1], -1)


class _MixedRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.rows = nn.Linear(8, 4), _RunningOverRows()

    def forward(self, x):
        return self.rows(self.fc(x))


@pytest.mark.parametrize("model", [_BatchFirstIntegrated, _ChunkedVectors])
def test_a_loop_in_a_later_layer_over_an_axis_moved_or_made_there_says_nothing(model):
    same(resolved(model).spec.inputs["x"], dst.tensors(shape=("batch", 8)))


def test_a_later_layer_loop_the_model_refuses_time_major_stays_vectors():
    target = resolved(_MixedRows)
    same(target.spec.inputs["x"], dst.tensors(shape=("batch", 8)))
    assert "; vectors, though a layer it reaches carries a state through axis 0: on [3, 2, 8] a sample's outputs" in (
        target.inferred_inputs["x"]
    )
