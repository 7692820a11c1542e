"""causality: a model declared causal gives the first steps of its outputs from the first
steps of its inputs alone; later values and the sequence's length change none of them."""

from __future__ import annotations

import pytest
import torch

from dyncheck.errors import InvalidArgument
from dyncheck.spec import Spec

ONLY = "--dyncheck-invariants=causality"

MODELS = '''
import dataclasses

import torch
from torch import nn

import dyncheck
from dyncheck.strategies import attention_masks, padded_batches, sequence_lengths, tensors


class Prefix(nn.Module):
    """A running mean over the steps so far: causal."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)[None, :, None]
        return self.fc(x.cumsum(1) / steps)


class WholeMean(Prefix):
    """Subtracts the mean over every step, later ones too."""

    def forward(self, x):
        return self.fc(x - x.mean(1, keepdim=True))


class Pooled(nn.Module):
    """A vector per sequence: nothing per step to compare."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 3, batch_first=True)

    def forward(self, x):
        return self.gru(x)[1][-1]


class Noisy(Prefix):
    """Causal, but adds noise in eval mode too: a shorter sequence draws other numbers."""

    def forward(self, x):
        return super().forward(x) + 0.1 * torch.randn(x.shape[0], x.shape[1], 3)


class Strided(nn.Module):
    """A causal convolution of stride 2: its time axis follows the length at half the rate."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 3, 2, stride=2)

    def forward(self, x):
        return self.conv(nn.functional.pad(x.transpose(1, 2), (1, 0)))


class Framed(nn.Module):
    """A causal GRU over [batch, frames, 4], its time axis named "frames"."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 3, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


class Bidirectional(Framed):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 3, batch_first=True, bidirectional=True)


class Padded(nn.Module):
    """A GRU over a padded batch with its lengths: causal, the lengths capped for the prefix."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 3, batch_first=True)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        return out


class Masked(nn.Module):
    """Token ids under an attention mask, a causal mask beside it; returns the logits."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 20)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        steps = input_ids.shape[1]
        future = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        out, _ = self.attention(h, h, h, attn_mask=future, need_weights=False)
        return self.head(out + h)


class PeekingMasked(Masked):
    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        steps = input_ids.shape[1]
        future = torch.ones(steps, steps, dtype=torch.bool).triu(2)
        out, _ = self.attention(h, h, h, attn_mask=future, need_weights=False)
        return self.head(out + h)


FLOAT = tensors(shape=("batch", "time", 4), min_value=-5, max_value=5)
prefix = dyncheck.Spec(Prefix, inputs={"x": FLOAT}, causal=True)
whole_mean = dyncheck.Spec(WholeMean, inputs={"x": FLOAT}, causal=True)
pooled = dyncheck.Spec(Pooled, inputs={"x": FLOAT}, causal=True)
noisy = dyncheck.Spec(Noisy, inputs={"x": FLOAT}, causal=True)
strided = dyncheck.Spec(Strided, inputs={"x": FLOAT}, causal=True)
fixed_length = dyncheck.Spec(Prefix, inputs={"x": FLOAT}, dims={"time": 6}, causal=True)
FRAMES = tensors(shape=("batch", "frames", 4), min_value=-5, max_value=5)
framed = dyncheck.Spec(Framed, inputs={"x": FRAMES}, dims={"frames": (1, 6)}, causal="frames")
bidirectional = dyncheck.Spec(Bidirectional, inputs={"x": FRAMES}, dims={"frames": (1, 6)}, causal="frames")
misnamed = dyncheck.Spec(Framed, inputs={"x": FRAMES}, causal="frame")
padded = dyncheck.Spec(Padded, inputs={"x": FLOAT, "lengths": sequence_lengths()}, causal=True)
TOKENS = {
    "input_ids": tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=19),
    "attention_mask": attention_masks(),
}
masked = dyncheck.Spec(Masked, inputs=TOKENS, causal=True)
peeking_masked = dyncheck.Spec(PeekingMasked, inputs=TOKENS, causal=True)
undeclared = dyncheck.Spec(WholeMean, inputs={"x": FLOAT})
left_padded = dyncheck.Spec(
    Masked, inputs={**TOKENS, "attention_mask": attention_masks(padding_side="left")}, causal=True
)


class Long(Prefix):
    """Refuses sequences shorter than 4 steps, which its spec allows."""

    def forward(self, x):
        assert x.shape[1] >= 4, "needs 4 steps"
        return super().forward(x)


class Centred(nn.Module):
    """A convolution over 2 * reach + 1 steps centred on each: it reads `reach` steps ahead."""

    def __init__(self, reach=1):
        super().__init__()
        self.conv = nn.Conv1d(4, 3, 2 * reach + 1, padding=reach)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


ahead_one = dyncheck.Spec(Centred, inputs={"x": FLOAT}, causal={"lookahead": 1})
ahead_two_declared_one = dyncheck.Spec(
    Centred, init={"reach": 2}, inputs={"x": FLOAT}, dims={"time": (1, 10)}, causal={"lookahead": 1}
)
ahead_one_declared_none = dyncheck.Spec(Centred, inputs={"x": FLOAT}, causal=True)
class Tagger(nn.Module):
    """A GRU tagger that also returns its final state, of as many features as steps drawn."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 3, batch_first=True)

    def forward(self, x):
        return self.gru(x)


class LengthScaled(Framed):
    def forward(self, x):
        steps = x.shape[1]
        return self.gru(x + torch.arange(steps, dtype=x.dtype)[None, :, None] / steps)[0]


class WithEnd(Framed):
    """An end token appended after the steps: one output more, at the end."""

    def __init__(self):
        super().__init__()
        self.end = nn.Parameter(torch.randn(1, 1, 4))

    def forward(self, x):
        return self.gru(torch.cat([x, self.end.expand(x.shape[0], 1, 4)], 1))[0]


class FrontEnd(nn.Module):
    """A convolution over 3 steps without padding first: it refuses sequences shorter than 3."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3)
        self.gru = nn.GRU(4, 3, batch_first=True)

    def forward(self, x, lengths):
        h = nn.functional.pad(self.conv(x.transpose(1, 2)), (2, 0)).transpose(1, 2)
        return self.gru(h)[0]


class LogAttention(nn.Module):
    """log(x) first: other values outside the strategy's bounds would make NaN."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        q, k, v = self.qkv(torch.log(x)).chunk(3, -1)
        return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


class PairBias(nn.Module):
    """Causal attention with a bias for every pair of steps, [batch, time, time]."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 12)

    def forward(self, x, bias):
        q, k, v = self.qkv(x).chunk(3, -1)
        steps = x.shape[1]
        future = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        scores = (q @ k.transpose(1, 2) + bias).masked_fill(future, float("-inf"))
        return scores.softmax(-1) @ v


class FloatFFT(nn.Module):
    """A causal long convolution by FFT in float32 whatever the model's dtype (Hyena, S4)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        steps = x.shape[1]
        kernel = torch.exp(-0.3 * torch.arange(steps, dtype=torch.float32))[None, :, None]
        h = x
        for _ in range(4):
            u = h.float()
            y = torch.fft.irfft(torch.fft.rfft(u, n=2 * steps, dim=1) * torch.fft.rfft(kernel, n=2 * steps, dim=1),
                                n=2 * steps, dim=1)[:, :steps]
            h = h + self.fc(y.to(h.dtype))
        return h


class Greedy(nn.Module):
    """The token each step chooses: an integer output."""

    def __init__(self, reach=0):
        super().__init__()
        self.reach = reach
        self.conv = nn.Conv1d(4, 5, 2 * reach + 1, padding=reach)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).argmax(1)


class Cells(nn.Module):
    """A GRUCell stepped in a loop: a list of one output per step."""

    def __init__(self, peek=False):
        super().__init__()
        self.peek = peek
        self.cell = nn.GRUCell(4, 3)

    def forward(self, x):
        h, outs = x.new_zeros(x.shape[0], 3), []
        for t in range(x.shape[1]):
            step = x[:, t] + (x[:, min(t + 1, x.shape[1] - 1)] if self.peek else 0)
            h = self.cell(step, h)
            outs.append(h)
        return outs


class SlidingWindow(nn.Module):
    """Attention over the last 2 steps under a padding mask, masked additively (Mistral's
    sliding window): a padded query whose window holds only padding attends to every key."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, 20)

    def forward(self, input_ids, attention_mask):
        q, k, v = self.qkv(self.embed(input_ids)).chunk(3, -1)
        steps = input_ids.shape[1]
        i, j = torch.arange(steps)[:, None], torch.arange(steps)[None, :]
        allowed = (j <= i) & (j > i - 2) & attention_mask[:, None, :].bool()
        bias = torch.zeros(allowed.shape, dtype=q.dtype).masked_fill(~allowed, torch.finfo(q.dtype).min)
        return self.head(((q @ k.transpose(1, 2)) / 8 ** 0.5 + bias).softmax(-1) @ v)


@dataclasses.dataclass
class CachedOutput:
    past_key_values: tuple
    logits: torch.Tensor


class CachedPeek(nn.Module):
    """Attention that also sees the next step, returning its keys and values for the next
    call before its logits: the failure names the logits."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        mixed = x + x.roll(-1, 1)
        q, k, v = self.qkv(mixed).chunk(3, -1)
        return CachedOutput((k, v), nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))


class ValidConv(nn.Module):
    """A convolution over 2 steps without padding: an output one step shorter than its input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 3, 2)

    def forward(self, x):
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


valid_conv = dyncheck.Spec(ValidConv, inputs={"x": FLOAT}, dims={"time": (2, 8)}, causal={"lookahead": 1})
cached_peek = dyncheck.Spec(CachedPeek, inputs={"x": FLOAT}, causal=True)
UNBOUNDED = tensors(shape=("batch", "time", 4))
noisy_unbounded = dyncheck.Spec(Noisy, inputs={"x": UNBOUNDED}, causal=True)
bidirectional_unbounded = dyncheck.Spec(Bidirectional, inputs={"x": UNBOUNDED}, causal=True)
sliding_window = dyncheck.Spec(SlidingWindow, inputs=TOKENS, causal=True)
tagger_frames = dyncheck.Spec(Tagger, inputs={"x": FRAMES}, causal="frames")
scaled_frames = dyncheck.Spec(LengthScaled, inputs={"x": FRAMES}, causal="frames")
with_end = dyncheck.Spec(WithEnd, inputs={"x": FLOAT}, causal=True)
front_end = dyncheck.Spec(
    FrontEnd, inputs={"x": FLOAT, "lengths": sequence_lengths(min_length=3)}, dims={"time": (1, 8)}, causal=True
)
log_attention = dyncheck.Spec(
    LogAttention, inputs={"x": tensors(shape=("batch", "time", 4), min_value=0.1, max_value=5)}, causal=True
)
pair_bias = dyncheck.Spec(
    PairBias, inputs={"x": FLOAT, "bias": tensors(shape=("batch", "time", "time"), min_value=-1, max_value=1)},
    causal=True,
)
float_fft = dyncheck.Spec(FloatFFT, inputs={"x": FLOAT}, causal=True)
greedy = dyncheck.Spec(Greedy, inputs={"x": FLOAT}, causal=True)
greedy_centred = dyncheck.Spec(Greedy, init={"reach": 1}, inputs={"x": FLOAT}, causal=True)
cells = dyncheck.Spec(Cells, inputs={"x": FLOAT}, causal=True)
peeking_cells = dyncheck.Spec(Cells, init={"peek": True}, inputs={"x": FLOAT}, causal=True)
padded_pair = dyncheck.Spec(Framed, inputs={"x": padded_batches(feature_shape=(4,))}, causal=True)
too_short = dyncheck.Spec(Long, inputs={"x": FLOAT}, dims={"time": (3, 8)}, causal=True)
'''


@pytest.fixture
def models(pytester):
    pytester.makepyfile(causal_models=MODELS)


def _checked(dyncheck_run, *names: str, verbose: bool = False):
    """A run of causality alone on ``causal_models``' specs ``names`` (-v: the reasons
    examples compared nothing)."""
    return dyncheck_run(
        *(a for name in names for a in ("--dyncheck", f"causal_models:{name}")), ONLY, *(("-v",) if verbose else ())
    )


def _outcome(run, name: str) -> str:
    return run.outcomes().get(f"dyncheck::causal_models:{name}::causality")


@pytest.mark.usefixtures("models")
def test_a_causal_model_passes_and_one_that_reads_later_steps_fails(dyncheck_run):
    run = _checked(dyncheck_run, "prefix", "whole_mean")
    assert _outcome(run, "prefix") == "PASSED", run.text
    assert _outcome(run, "whole_mean") == "FAILED", run.text
    text = run.failure("whole_mean::causality")
    assert "causality violated by causal_models:whole_mean" in text
    # the earliest output step that changed, and the first later input step that alone changes it
    assert "output at step 0 changes when only step 1 of x changes: a later input reaches an earlier output" in text
    assert "run alone against the whole sequence:" in text and "Greatest absolute difference" in text
    assert "Reproduce: pytest --dyncheck causal_models:whole_mean" in text


@pytest.mark.usefixtures("models")
def test_an_off_by_one_mask_names_the_next_step_and_masks_are_cut_not_changed(dyncheck_run):
    run = _checked(dyncheck_run, "masked", "peeking_masked")
    assert _outcome(run, "masked") == "PASSED", run.text
    assert _outcome(run, "peeking_masked") == "FAILED", run.text
    text = run.failure("peeking_masked::causality")
    headline = next(line for line in text.splitlines() if "changes when only step" in line)
    # the ids' later steps are changed, the mask's are not
    step = int(headline.split(" at step ")[1].split()[0])
    assert f"changes when only step {step + 1} of input_ids changes" in headline, headline


def test_reference_models_off_by_one_and_length_messages(dyncheck_run):
    run = dyncheck_run(
        "--dyncheck", "reference_models.buggy.future_mask:Model",
        "--dyncheck", "reference_models.buggy.length_scaled_positions:Model", ONLY,
    )
    future = run.failure("future_mask:Model::causality")
    headline = next(line for line in future.splitlines() if "changes when only step" in line)
    step = int(headline.split(" at step ")[1].split()[0])
    assert f"changes when only step {step + 1} of x changes" in headline, headline
    length = run.failure("length_scaled_positions:Model::causality")
    assert "change nothing: the outputs depend on the sequence's length" in length
    assert "streaming or generating step by step gives other results" in length


@pytest.mark.usefixtures("models")
def test_declared_causal_runs_by_default_and_undeclared_only_when_named(dyncheck_run):
    run = dyncheck_run("--dyncheck", "causal_models:prefix", "--dyncheck", "causal_models:undeclared")
    outcomes = run.outcomes()
    assert outcomes["dyncheck::causal_models:prefix::causality"] == "PASSED", run.text
    assert "dyncheck::causal_models:undeclared::causality" not in outcomes
    named = _checked(dyncheck_run, "undeclared")
    assert _outcome(named, "undeclared") == "FAILED", named.text


@pytest.mark.usefixtures("models")
def test_outputs_without_a_time_axis_compare_nothing(dyncheck_run):
    run = _checked(dyncheck_run, "pooled", "strided", verbose=True)
    assert _outcome(run, "pooled") == "SKIPPED", run.text
    assert "no output has an axis that follows the 'time' axis" in run.skip_reason(
        "dyncheck::causal_models:pooled::causality"
    )
    # A strided axis is compared only where its steps happen to follow the length one for
    # one (its first frames, which a causal convolution computes from the prefix alone); the
    # summary counts the other examples.
    assert _outcome(run, "strided") in ("PASSED", "SKIPPED"), run.text
    assert "axis 2 of output follows the length at another rate" in run.text


@pytest.mark.usefixtures("models")
def test_random_numbers_in_eval_mode_are_not_a_finding(dyncheck_run):
    # A shorter batch of several sequences draws other numbers for each step: the model is
    # causal, and those examples compare nothing. A batch of one draws the same numbers for
    # its first steps (the stream runs step by step), and is compared.
    run = _checked(dyncheck_run, "noisy", verbose=True)
    assert _outcome(run, "noisy") in ("PASSED", "SKIPPED"), run.text
    assert "forward draws random numbers in eval mode (from torch's generators, or its outputs change" in run.text


@pytest.mark.usefixtures("models")
def test_a_fixed_length_is_a_skip_that_asks_for_a_range(dyncheck_run):
    # Which output axes follow the steps is read from a shorter call; at a fixed length an
    # RNN's final state of as many features as steps would be compared as if it did.
    run = _checked(dyncheck_run, "fixed_length")
    assert run.skip_reason("dyncheck::causal_models:fixed_length::causality") == (
        "the spec fixes the 'time' axis at 6 steps: no shorter sequence to run alone; give a range, e.g. "
        "Spec(dims={'time': (1, 6)})"
    )


@pytest.mark.usefixtures("models")
def test_another_named_axis_and_a_misnamed_one(dyncheck_run):
    run = _checked(dyncheck_run, "framed", "bidirectional", "misnamed")
    assert _outcome(run, "framed") == "PASSED", run.text
    assert _outcome(run, "bidirectional") == "FAILED", run.text
    assert _outcome(run, "misnamed") == "SKIPPED", run.text
    assert run.skip_reason("dyncheck::causal_models:misnamed::causality") == (
        "no input has a 'frame' axis to cut (the inputs' named axes are 'frames': name the time axis with "
        "Spec(causal=...))"
    )


@pytest.mark.usefixtures("models")
def test_lengths_are_capped_at_the_prefix(dyncheck_run):
    run = _checked(dyncheck_run, "padded")
    assert _outcome(run, "padded") == "PASSED", run.text


def test_the_prefix_cuts_each_input_on_its_time_axis_and_caps_the_lengths():
    from dyncheck.invariants.causality import Causality
    from dyncheck.target import resolve

    target = resolve("reference_models.time_major_gru:GRUTagger")
    args = {"x": torch.randn(6, 2, 5), "lengths": torch.tensor([6, 2])}
    cut = Causality._prefix(target, args, {("x", None): (0,)}, 3)
    assert cut["x"].shape == (3, 2, 5) and torch.equal(cut["x"], args["x"][:3])
    assert cut["lengths"].tolist() == [3, 2]
    assert args["lengths"].tolist() == [6, 2]  # the example's own arguments are left as they were


def test_the_time_axis_is_drawn_from_one_more_than_its_shortest():
    from dyncheck.invariants.causality import Causality, _prefix_lengths
    from dyncheck.target import resolve

    target = resolve("reference_models.causal_tcn:CausalTCN")
    assert Causality().dims(target) == {"time": (2, 8)}
    assert _prefix_lengths(target, "time", 5, 0) == [1, 2, 3, 4]
    assert _prefix_lengths(target, "time", 5, 2) == [3, 4]  # longer than the look-ahead


def test_spec_causal_takes_true_an_axis_name_or_a_look_ahead():
    assert Spec(causal=True).causal is True and Spec(causal="frames").causal == "frames"
    assert Spec(causal={"axis": "frames", "lookahead": 2}).causal == {"axis": "frames", "lookahead": 2}
    with pytest.raises(InvalidArgument, match="or a dict with a look-ahead"):
        Spec(causal={"lookahead": -1})
    with pytest.raises(InvalidArgument, match="or a dict with a look-ahead"):
        Spec(causal={"ahead": 1})
    with pytest.raises(InvalidArgument, match=r"Spec\(causal=3\) must be True .* e\.g\. causal=\"frames\""):
        Spec(causal=3)
    with pytest.raises(InvalidArgument, match="must be True"):
        Spec(causal="two words")


@pytest.mark.usefixtures("models")
def test_a_left_padded_mask_is_a_skip_and_a_refused_prefix_compares_nothing(dyncheck_run):
    run = _checked(dyncheck_run, "left_padded", "too_short", verbose=True)
    assert run.skip_reason("dyncheck::causal_models:left_padded::causality").startswith(
        "attention_mask is padded on the left (attention_masks(padding_side='left'))"
    )
    # the spec allows 3 steps, the model refuses them: a length it does not take, which the
    # checks that draw 3 steps report; here that example compares nothing, and says why
    assert _outcome(run, "too_short") == "PASSED", run.text
    assert "the model raised AssertionError on the first 3 steps alone (a length it does not take" in run.text


@pytest.mark.usefixtures("models")
def test_a_declared_look_ahead_is_allowed_and_no_more(dyncheck_run):
    run = _checked(dyncheck_run, "ahead_one", "ahead_two_declared_one", "ahead_one_declared_none")
    assert _outcome(run, "ahead_one") == "PASSED", run.text
    assert _outcome(run, "ahead_one_declared_none") == "FAILED", run.text
    text = run.failure("ahead_two_declared_one::causality")
    headline = next(line for line in text.splitlines() if "changes when only step" in line)
    step = int(headline.split(" at step ")[1].split()[0])
    # allowed one step ahead, it reads two: the first step that alone reaches it is step + 2
    assert f"changes when only step {step + 2} of x changes" in headline, headline
    assert "the model sees further ahead than its look-ahead of 1 step" in headline


@pytest.mark.usefixtures("models")
def test_no_false_alarm_on_what_a_review_found(dyncheck_run):
    # a final state as wide as the steps on a named axis with no range of its own; an end
    # token appended; lengths of 3 or more for a convolution that needs 3; later values
    # inside the strategy's bounds (a log first); a pair bias cut on both of its time
    # axes; a float32 FFT inside the float64 copy (rounding); a greedy choice; a list of
    # outputs, one per step
    good = ("tagger_frames", "with_end", "front_end", "log_attention", "pair_bias", "float_fft", "greedy", "cells")
    run = _checked(dyncheck_run, *good, verbose=True)
    assert {name: _outcome(run, name) for name in good} == dict.fromkeys(good, "PASSED"), run.text


@pytest.mark.usefixtures("models")
def test_leaks_through_a_named_axis_an_integer_output_and_a_list_are_caught(dyncheck_run):
    bad = ("scaled_frames", "greedy_centred", "peeking_cells")
    run = _checked(dyncheck_run, *bad)
    assert {name: _outcome(run, name) for name in bad} == dict.fromkeys(bad, "FAILED"), run.text
    assert "the outputs depend on the sequence's length" in run.failure("scaled_frames::causality")
    assert "changes when only step" in run.failure("greedy_centred::causality")
    headline = next(
        line for line in run.failure("peeking_cells::causality").splitlines() if "changes when only step" in line
    )
    step = int(headline.split("output[")[1].split("]")[0])
    assert f"output[{step}] at step {step} changes when only step {step + 1} of x changes" in headline, headline


@pytest.mark.usefixtures("models")
def test_a_padded_batches_pair_says_how_to_draw_it_and_a_named_check_reproduces(dyncheck_run):
    run = _checked(dyncheck_run, "padded_pair", "undeclared")
    assert run.skip_reason("dyncheck::causal_models:padded_pair::causality").startswith(
        "x is drawn by padded_batches() as one (padded, lengths) pair, which causality does not cut"
    )
    # undeclared, collected because it was named: the reproduce command names it too
    assert "--dyncheck-invariants=causality -k causality" in run.failure("undeclared::causality")


@pytest.mark.usefixtures("models")
def test_unbounded_inputs_padding_only_windows_and_noise_as_inferred_inputs_are_drawn(dyncheck_run):
    # inputs drawn without bounds, as inference draws them: later values are not clamped
    # to bounds that are not there; noise at inference whose stream differs by shape (torch
    # fills 16 or more normals in blocks) is not a finding; a padded step whose sliding
    # window holds only padding attends to every key, at a step no caller reads
    names = ("noisy_unbounded", "bidirectional_unbounded", "sliding_window")
    run = _checked(dyncheck_run, *names, verbose=True)
    assert {name: _outcome(run, name) for name in names} == {
        "noisy_unbounded": "PASSED", "bidirectional_unbounded": "FAILED", "sliding_window": "PASSED",
    }, run.text
    assert "changes when only step" in run.failure("bidirectional_unbounded::causality")
    assert "forward draws random numbers in eval mode" in run.text
    assert "the outputs differ only with padding" in run.text


@pytest.mark.usefixtures("models")
def test_a_failure_names_a_result_before_a_cache_for_the_next_call(dyncheck_run):
    run = _checked(dyncheck_run, "cached_peek")
    headline = next(line for line in run.failure("cached_peek::causality").splitlines() if " at step " in line)
    assert headline.startswith("output.logits at step "), headline


@pytest.mark.usefixtures("models")
def test_a_prefix_that_leaves_a_shorter_output_no_step_says_so(dyncheck_run):
    # right context consumed (one step) and a look-ahead of one: a prefix of 2 steps leaves
    # the output no step of its own; the longest prefix is tried before giving up
    run = _checked(dyncheck_run, "valid_conv", verbose=True)
    assert _outcome(run, "valid_conv") == "PASSED", run.text
    assert "output follows the steps, but the first 2 steps leave it no step of its own to compare" in run.text


def test_declared_causal_with_one_named_axis_other_than_time_runs_over_it(pytester, dyncheck_run):
    # a TCN's inputs inferred channels first, ("batch", 3, "length"): declared causal, the
    # only named axis is the time axis
    pytester.makepyfile(inferred_tcn="""
        from reference_models.causal_tcn import TemporalBlock
        from torch import nn


        class Net(nn.Module):
            __dyncheck__ = {"causal": True}

            def __init__(self):
                super().__init__()
                self.block = TemporalBlock(3, 4, 2, 1, 0.0)

            def forward(self, x):
                return self.block(x)
    """)
    run = dyncheck_run("--dyncheck", "inferred_tcn:Net", ONLY)
    assert run.outcomes() == {"dyncheck::inferred_tcn:Net::causality": "PASSED"}, run.text


@pytest.mark.parametrize(("leak", "verdict"), [("", "PASSED"), (" + out.flip(1).cumsum(1).flip(1)", "FAILED")])
def test_a_causal_model_that_also_takes_one_step_is_checked_over_sequences(dyncheck_run, pytester, leak, verdict):
    # titans-pytorch's NeuralMemory unsqueezes one step: vectors ran too, the input was drawn
    # as vectors, every sequence was one step long and causality had no time axis to cut.
    pytester.makepyfile(stepper=f"""
        from torch import nn

        class Model(nn.Module):
            __dyncheck__ = {{"causal": True}}

            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(16, 16)
                self.rnn = nn.GRU(16, 16, batch_first=True)

            def forward(self, x):
                if x.ndim == 2:
                    x = x.unsqueeze(1)
                out, _ = self.rnn(self.proj(x))
                return out{leak}
        """)
    run = dyncheck_run("--dyncheck", "stepper:Model", "--dyncheck-invariants=causality", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::stepper:Model::causality": verdict}, run.text


@pytest.mark.parametrize(("scan", "verdict"), [("a.cumsum(dim=1)", "PASSED"), ("a.flip(1).cumsum(dim=1).flip(1)", "FAILED")])
def test_a_causal_scan_written_in_code_is_checked_over_sequences(dyncheck_run, pytester, scan, verdict):
    # minGRU's parallel form: a Linear, then cumsum over dim 1 in forward's own code. It runs
    # on vectors too, reading the features as steps: drawn so, causality had no time axis.
    pytester.makepyfile(scan=f"""
        import torch
        from torch import nn

        class Model(nn.Module):
            __dyncheck__ = {{"causal": True}}

            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(8, 8)

            def forward(self, x):
                a = torch.tanh(self.proj(x))
                return {scan}
        """)
    run = dyncheck_run("--dyncheck", "scan:Model", "--dyncheck-invariants=causality", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::scan:Model::causality": verdict}, run.text


def test_a_causal_model_keeps_its_vectors_where_no_scan_says_steps(dyncheck_run, pytester):
    # Only an input forward scans over axis 1 gets the time axis: a per-sample vector beside
    # it (its classes softmaxed over axis 1) and a one-step policy stay vectors.
    pytester.makepyfile(vectors="""
        import torch
        from torch import nn

        class Beside(nn.Module):
            __dyncheck__ = {"causal": True}

            def __init__(self):
                super().__init__()
                self.seq, self.meta = nn.Linear(8, 8), nn.Linear(4, 3)

            def forward(self, x, meta):
                return torch.tanh(self.seq(x)).cumsum(dim=1), torch.softmax(self.meta(meta), dim=1)

        class Policy(nn.Module):
            __dyncheck__ = {"causal": True}

            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def forward(self, obs):
                return torch.softmax(self.fc(obs), dim=1)
        """)
    run = dyncheck_run("--dyncheck", "vectors:Beside", "--dyncheck-invariants=causality", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::vectors:Beside::causality": "PASSED"}, run.text
    run = dyncheck_run("--dyncheck", "vectors:Policy", "--dyncheck-invariants=causality", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::vectors:Policy::causality": "SKIPPED"}, run.text
