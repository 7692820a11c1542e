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
from dyncheck.invariants.padding_invariance import EXTRA_STEPS, _Layout, keep_relative_lengths
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
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {"relative": True, "pad_to_longest": True}
    assert target.inferred_inputs["wav_lens"].endswith(
        "; drawn as relative lengths (relative=True), fractions of the padded length as SpeechBrain's wav_lens are, "
        "the longest always 1.0 (pad_to_longest=True), as SpeechBrain divides a batch's lengths by its longest: at 8 "
        "padded steps, lengths 1 and 1.0 gave one output (as did 8), and rows at 4/8 and 7/8 two others"
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


class EveryEighthFrame(nn.Module):
    """Lengths in steps of frames kept one in eight: at 8 padded steps only frame 0 is kept,
    so lengths 8 and 1 agree, and 4/8 and 7/8 both keep none."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        x = self.proj(feats[:, ::8])
        kept = torch.div(wav_lens - 1, 8, rounding_mode="floor") + 1
        weights = (torch.arange(x.shape[1])[None, :] < kept[:, None]).unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class RefusesFractions(nn.Module):
    """Lengths taken, checked to be whole numbers (1.0 is one), never read."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        if bool((wav_lens != wav_lens.round()).any()):
            raise ValueError("wav_lens counts steps")
        return self.proj(feats.mean(1))


@pytest.mark.parametrize("model", [StepLengths, IgnoredLengths, EveryEighthFrame, RefusesFractions])
def test_lengths_in_steps_or_unread_stay_whole_numbers(model):
    # Length 1 gives another output than the padded length (steps); or the fractions 4/8 and
    # 7/8 give one output (unread, or both read as no step or one); or fractions raise.
    target = resolve_spec(dyncheck.Spec(model))
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {}
    assert "relative" not in target.inferred_inputs["wav_lens"]


def test_a_mask_off_by_one_is_not_read_as_relative_lengths():
    # arange(T) <= lens keeps both steps of 2 for lens 1 and 2, as relative lengths would: the
    # probe pads to 4 steps, where 1 keeps 2 of them.
    target = resolve("reference_models.buggy.lens_off_by_one:Model")
    assert "relative" not in strategy_arguments(target.spec.inputs["lens"])


SPEECHBRAIN_MASK = '''
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import tensors


def length_to_mask(length, max_len=None):
    """SpeechBrain's: as wide as the longest length when no max_len is given."""
    if max_len is None:
        max_len = length.max().long().item()
    return torch.arange(max_len, dtype=length.dtype)[None, :] < length[:, None]


class Model(nn.Module):
    """SpeechBrain's wav2vec2 and Hugging Face integrations: abs_len = round(wav_lens * T), then a
    key padding mask of length_to_mask(abs_len), as wide as the longest row."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, src, wav_lens):
        abs_len = torch.round(wav_lens * src.shape[1])
        padding = ~length_to_mask(abs_len)
        x = self.proj(src)
        x, _ = self.attention(x, x, x, key_padding_mask=padding, need_weights=False)
        keep = (~padding).unsqueeze(-1).to(x.dtype)
        return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class Optional(nn.Module):
    """SpeechBrain's usual signature: wav_lens=None is every frame."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 3)

    def forward(self, src, wav_lens=None):
        if wav_lens is None:
            wav_lens = torch.ones(src.shape[0])
        valid = torch.arange(src.shape[1])[None, :] < torch.round(wav_lens * src.shape[1])[:, None]
        keep = valid.unsqueeze(-1).to(src.dtype)
        return self.proj((src * keep).sum(1) / keep.sum(1).clamp(min=1.0))


# the Spec gives the features; the lengths are left to inference
partial = dyncheck.Spec(Model, inputs={"src": tensors(shape=("batch", "time", 8))})
'''


def test_a_mask_as_wide_as_the_longest_row_is_relative_and_padded_to_it(dyncheck_run, pytester):
    # length_to_mask(abs_len) without max_len: lengths of 8 whole steps make a mask 64 wide, and
    # rows all below 1.0 one narrower than the input. SpeechBrain divides by the longest in a
    # batch, so one row is always 1.0: the lengths are drawn so.
    pytester.makepyfile(speechbrain_mask=SPEECHBRAIN_MASK)
    run = dyncheck_run("--dyncheck", "speechbrain_mask:Model", "--dyncheck-explain", "--co", "-q")
    assert "'wav_lens': sequence_lengths(pad_to_longest=True, relative=True)," in run.text, run.text
    assert re.search(
        r"the longest always 1\.0 \(pad_to_longest=True\), as SpeechBrain divides a batch's lengths by its longest: "
        r"at 8 padded steps, lengths 1 and 1\.0 gave one output \(8 raised\), and rows at 4/8 and 7/8 two others",
        run.text,
    ), run.text
    run = dyncheck_run("--dyncheck", "speechbrain_mask:Model", "--dyncheck-invariants=padding_invariance,batch_invariance",
                       "--dyncheck-max-examples=10")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


@pytest.mark.parametrize("target", ["Optional", "partial"])
def test_optional_lengths_and_lengths_beside_given_inputs_are_found_relative(dyncheck_run, pytester, target):
    # wav_lens=None: a call with lengths 1 (every step, to it) gave the plain output, and the
    # argument was taken for unread. Beside an input the Spec gives, the probe did not run.
    pytester.makepyfile(speechbrain_mask=SPEECHBRAIN_MASK)
    run = dyncheck_run("--dyncheck", f"speechbrain_mask:{target}", "--dyncheck-explain", "--co", "-q")
    assert "'wav_lens': sequence_lengths(pad_to_longest=True, relative=True)," in run.text, run.text
    run = dyncheck_run("--dyncheck", f"speechbrain_mask:{target}", PADDING, "--dyncheck-max-examples=10")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_inputs_moved_for_margins_and_searches_keep_their_relative_lengths():
    # A one-ulp nudge, a float64 copy or a redraw of the inputs moved the lengths too: a mask
    # arange(T) < rel * T then keeps another number of frames.
    from dyncheck.invariants._influence import _redrawn
    from dyncheck.rounding import nudged

    target = _relative_target()
    args = {"feats": torch.randn(2, 3, 8), "wav_lens": torch.tensor([1 / 3, 1.0])}
    moved = nudged(args, torch.Generator().manual_seed(0))
    kept = keep_relative_lengths(target, args, {k: v.double() for k, v in moved.items()})
    assert kept["feats"].dtype == torch.float64 and not torch.equal(kept["feats"], args["feats"].double())
    assert kept["wav_lens"].dtype == torch.float32 and torch.equal(kept["wav_lens"], args["wav_lens"])
    assert kept["wav_lens"] is not args["wav_lens"]
    redrawn = _redrawn(Example(args, 0, {"batch": 2, "time": 3}), "random10", 3, target)
    assert torch.equal(redrawn.args["wav_lens"], args["wav_lens"])
    assert not torch.equal(redrawn.args["feats"], args["feats"])


def test_relative_lengths_are_shown_with_their_values():
    from dyncheck.examples import describe_value

    assert describe_value("wav_lens", torch.tensor([1 / 3, 1.0])) == "wav_lens float32[2] = [0.33333334, 1.0]"
    assert describe_value("feats", torch.tensor([1 / 3, 1.0])) == "feats float32[2] max |feats| 1"


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


def test_a_float64_copy_keeps_the_relative_lengths_as_drawn():
    # Widened, float32's 1/3 is a hair over a third: a mask arange(T) < rel * T keeps 2 of 3
    # frames. float64's own 7/25 is a hair over 7 of 25. The float32 fractions the model is
    # given stay as they are in its float64 copy.
    target = _relative_target()
    drawn = torch.tensor([1 / 3, 1.0])
    example = Example({"feats": torch.zeros(2, 3, 8), "wav_lens": drawn}, 0, {"batch": 2, "time": 3})
    layout = _Layout(target, example, ("wav_lens", None))
    widened = {name: value.double() for name, value in example.args.items()}
    kept = keep_relative_lengths(target, example.args, widened)["wav_lens"]
    assert torch.equal(kept, drawn) and kept.dtype == torch.float32
    assert layout.row(widened, 0)["wav_lens"].dtype == torch.float32
    assert layout.extended(widened, torch.Generator())["wav_lens"].dtype == torch.float32


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


class EinsumMask(nn.Module):
    """A masked mean over relative lengths whose mask takes the lengths' dtype (SpeechBrain's
    length_to_mask) into an einsum: whole numbers make an integer mask, which raises."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, feats, wav_lens):
        frames = feats.shape[1]
        steps = torch.round(wav_lens * frames)
        mask = (torch.arange(frames, dtype=steps.dtype)[None, :] < steps[:, None]).to(steps.dtype)
        return torch.einsum("btd,bt->bd", self.proj(feats), mask) / mask.sum(1, keepdim=True)


def test_lengths_the_model_refuses_as_whole_numbers_are_found_relative():
    # Lengths 1 and 8 raised, and the probe took that for lengths it does not read as fractions:
    # drawn as whole numbers, every check raised.
    target = resolve_spec(dyncheck.Spec(EinsumMask))
    assert strategy_arguments(target.spec.inputs["wav_lens"]) == {"relative": True, "pad_to_longest": True}
    assert target.inferred_inputs["wav_lens"].endswith(
        "at 8 padded steps, lengths 1.0 gave an output, and whole numbers raised, and rows at 4/8 and 7/8 two others"
    ), target.inferred_inputs["wav_lens"]
