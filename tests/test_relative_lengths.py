"""Relative lengths (SpeechBrain's ``wav_lens``, fractions of the padded length): inferred by
calling the model, drawn by ``sequence_lengths(relative=True)``, and read as steps by every
check that cuts, pads or casts a batch."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import dyncheck
from dyncheck.examples import Example, strategy_arguments
from dyncheck.invariants.batch_invariance import _input_lengths
from dyncheck.invariants.causality import Causality
from dyncheck.invariants.packed_rnn import draw_lengths
from dyncheck.invariants.padding_invariance import EXTRA_STEPS, _Layout, exact_relative_lengths
from dyncheck.strategies import sequence_lengths, tensors
from dyncheck.target import resolve, resolve_spec
from reference_models.relative_lengths import RelativeLengthsEncoder

GOOD = "reference_models.relative_lengths:RelativeLengthsEncoder"
BUGGY = "reference_models.buggy.relative_conv_leak:Model"
PADDING = "--dyncheck-invariants=padding_invariance"


class _Context:
    """What ``_input_lengths`` reads of a check's context: its target."""

    def __init__(self, target):
        self.target = target


def _relative_target():
    return resolve_spec(dyncheck.Spec(
        RelativeLengthsEncoder,
        inputs={"feats": tensors(shape=("batch", "time", 8)), "wav_lens": sequence_lengths(relative=True)},
    ))


def test_relative_lengths_are_inferred_by_calling_the_model():
    target = resolve(GOOD)
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {"relative": True}
    assert re.search(
        r"; drawn as relative lengths \(relative=True\), fractions of the padded length as SpeechBrain's wav_lens "
        r"are: lengths (\d+) and 1 of \1 padded steps gave the same output as 1\.0, and 0\.5 another$",
        target.inferred_inputs["wav_lens"],
    ), target.inferred_inputs["wav_lens"]


class StepLengths(nn.Module):
    """Lengths counted in steps, under SpeechBrain's name: a mean over the first wav_lens frames."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        valid = torch.arange(feats.shape[1])[None, :] < wav_lens[:, None]
        weights = valid.unsqueeze(-1).to(feats.dtype)
        return self.proj((feats * weights).sum(1) / weights.sum(1).clamp(min=1.0))


class IgnoredLengths(nn.Module):
    """Lengths taken and never read."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        return self.proj(feats.mean(1))


@pytest.mark.parametrize("model", [StepLengths, IgnoredLengths])
def test_lengths_in_steps_or_unread_stay_whole_numbers(model):
    # Length 1 gives another output than the padded length (steps), or 0.5 the same as 1.0
    # (unread): neither is relative.
    target = resolve_spec(dyncheck.Spec(model))
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {}
    assert "relative" not in target.inferred_inputs["wav_lens"]


def test_a_mask_off_by_one_is_not_read_as_relative_lengths():
    # arange(T) <= lens keeps both steps of 2 for lens 1 and 2, as relative lengths would: the
    # probe pads to 4 steps, where 1 keeps 2 of them.
    target = resolve("reference_models.buggy.lens_off_by_one:Model")
    assert "relative" not in strategy_arguments(target.spec.inputs["lens"])


def test_a_row_alone_is_one_and_extra_padding_rescales():
    target = _relative_target()
    lengths = torch.tensor([3 / 5, 1.0], dtype=torch.float32)
    example = Example({"feats": torch.zeros(2, 5, 8), "wav_lens": lengths}, 0, {"batch": 2, "time": 5})
    layout = _Layout(target, example, ("wav_lens", None))
    assert (layout.relative, layout.lengths, layout.padded) == (True, [3, 5], 5)
    alone = layout.row(example.args, 0)
    assert alone["feats"].shape == (1, 3, 8)
    assert alone["wav_lens"].dtype == torch.float32 and alone["wav_lens"].tolist() == [1.0]
    extended = layout.extended(example.args, torch.Generator())
    assert extended["feats"].shape == (2, 5 + EXTRA_STEPS, 8)
    assert torch.equal(extended["wav_lens"], torch.tensor([3 / (5 + EXTRA_STEPS), 5 / (5 + EXTRA_STEPS)]))
    assert layout.full_length(extended)["wav_lens"].tolist() == [1.0, 1.0]
    assert layout.length_words(0) == "length 3 of 5 padded steps, wav_lens 0.6"


def test_relative_lengths_cast_to_float64_are_worked_out_again():
    # float32's 7/13, widened, is 7.0000001 steps: a mask arange(T) < rel * T reads 8.
    target = resolve_spec(dyncheck.Spec(
        RelativeLengthsEncoder,
        inputs={"feats": tensors(shape=("batch", "time", 8)), "wav_lens": sequence_lengths(relative=True)},
        dims={"time": 13},
    ))
    widened = torch.tensor([7 / 13], dtype=torch.float32).double()
    assert int((torch.arange(13) < widened * 13).sum()) == 8
    exact = exact_relative_lengths(target, {"batch": 1, "time": 13}, {"wav_lens": widened})["wav_lens"]
    assert exact.dtype == torch.float64 and exact.tolist() == [7 / 13]
    assert int((torch.arange(13) < exact * 13).sum()) == 7


LENGTH_TO_MASK = """
import torch
from torch import nn


class Model(nn.Module):
    '''A mean over the frames SpeechBrain's length_to_mask(wav_lens * T) keeps: no rounding.'''

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        valid = torch.arange(feats.shape[1], dtype=wav_lens.dtype)[None, :] < wav_lens[:, None] * feats.shape[1]
        weights = valid.unsqueeze(-1).to(feats.dtype)
        return self.proj((feats * weights).sum(1) / weights.sum(1).clamp(min=1.0))


import dyncheck
from dyncheck.strategies import sequence_lengths

# 3 frames: 1/3 and 2/3 of them, rounded to float32 and widened, are a hair over 1 and 2 steps
spec = dyncheck.Spec(Model, inputs={"wav_lens": sequence_lengths(relative=True)}, dims={"time": 3})
"""


def test_dtype_agreement_casts_relative_lengths_as_steps(dyncheck_run, pytester):
    # Widened float32 fractions made the float64 copy keep one frame more (1/3 of 3 frames
    # kept 2); at these sizes float32 and float64 each count the frames right.
    pytester.makepyfile(masked=LENGTH_TO_MASK)
    run = dyncheck_run("--dyncheck", "masked:spec", "--dyncheck-invariants=dtype_agreement,padding_invariance",
                       "--dyncheck-max-examples=10")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_a_padding_bug_under_relative_lengths_shows_the_steps_and_the_fraction(dyncheck_run):
    run = dyncheck_run("--dyncheck", BUGGY, PADDING)
    assert run.outcomes() == {f"dyncheck::{BUGGY}::padding_invariance": "FAILED"}, run.text
    found = re.search(r"\(length (\d) of (\d) padded steps, wav_lens ([\d.]+)\)", run.text)
    assert found, run.text
    steps, padded, share = int(found.group(1)), int(found.group(2)), float(found.group(3))
    assert abs(share - steps / padded) < 1e-3 and steps < padded


FRACTIONS_MAPPED = """
import dyncheck
from dyncheck.strategies import sequence_lengths, tensors
from reference_models.relative_lengths import RelativeLengthsEncoder

spec = dyncheck.Spec(RelativeLengthsEncoder, inputs={
    "feats": tensors(shape=("batch", "time", 8)),
    "wav_lens": sequence_lengths(pad_to_longest=True).map(lambda lengths: lengths.float() / lengths.max()),
})
"""


def test_fractions_not_drawn_as_relative_lengths_are_a_skip_that_says_how(dyncheck_run, pytester):
    # Read as steps, 1.0 was "length 1 of 5": a false alarm on a correct model.
    pytester.makepyfile(mapped=FRACTIONS_MAPPED)
    run = dyncheck_run("--dyncheck", "mapped:spec", PADDING, "--dyncheck-max-examples=10")
    assert run.outcomes() == {"dyncheck::mapped:spec::padding_invariance": "SKIPPED"}, run.text
    assert re.search(
        r"compared nothing in 10 examples: wav_lens holds \[[\d., ]+\], floats that read as fractions, not steps: if "
        r"they are fractions of the padded length \(SpeechBrain's wav_lens\), draw them with "
        r"sequence_lengths\(relative=True\); steps as an integer tensor", run.text,
    ), run.text


def test_the_other_checks_read_relative_lengths_as_steps():
    target = _relative_target()
    args = {"feats": torch.zeros(2, 4, 8), "wav_lens": torch.tensor([0.5, 1.0])}
    dims = {"batch": 2, "time": 4}
    # batch_invariance's own steps of each sample
    assert _input_lengths(_Context(target), args, 2, dims) == [2, 4]
    # packed_rnn's lengths for the recurrent layers
    example = Example(args, 0, dims)
    assert draw_lengths(target, example, torch.Generator()) == ([2, 4], 4)
    # causality: a prefix of 3 steps keeps 2 and 3 of them; every step a token is 1.0
    prefix = Causality._prefix(target, dict(args), {("feats", None): (1,)}, 3)
    assert prefix["feats"].shape == (2, 3, 8)
    assert torch.equal(prefix["wav_lens"], torch.tensor([2 / 3, 1.0]))
    assert Causality._unpadded(target, dict(args), 4)["wav_lens"].tolist() == [1.0, 1.0]
