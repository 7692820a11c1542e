"""padding_invariance: the correct padded-batch models pass, each padding bug fails, messages pinned."""

from __future__ import annotations

import re

import pytest

import torch

from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example, strategy_arguments
from dyncheck.invariants.padding_invariance import _Layout, lengths_argument
from dyncheck.target import resolve

ONLY = "--dyncheck-invariants=padding_invariance"
BUGGY = "reference_models.buggy"


def test_correct_models_pass(dyncheck_run):
    targets = [
        "reference_models.rnn:DynamicRNN",
        "reference_models.bilstm:BiLSTMClassifier",
        "reference_models.time_major_gru:GRUTagger",  # per-step outputs, time-major input
    ]
    run = dyncheck_run(*(a for t in targets for a in ("--dyncheck", t)), ONLY, "--dyncheck-max-examples=25")
    assert run.outcomes() == {f"dyncheck::{t}::padding_invariance": "PASSED" for t in targets}, run.text


def test_no_lengths_argument_is_a_skip(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.tied_lm:TiedLanguageModel", ONLY)
    assert run.ret == 0 and "1 skipped" in run.text, run.text
    assert (
        "padding_invariance does not apply to reference_models.tied_lm:TiedLanguageModel: forward takes no "
        "lengths argument (named like lengths, seq_lengths or lens; declare another with Spec(lengths=...)) "
        "and no attention mask drawn by attention_masks()" in run.text
    )


BUGS = [
    "last_padded_step", "never_unsorted", "unpacked_rnn", "mean_over_padding", "carried_hidden", "short_total_length",
    "dict_padded_sum",
]


def findings(text: str) -> list[str]:
    """The findings of a failure message, in either form: one finding as the headline (its
    cause after the colon), or several as ``- `` lines under a count."""
    lines = text.strip().splitlines()
    if lines[2].startswith("Padding or the other rows change a row's results ("):
        return [line[4:] for line in lines if line.startswith("  - ")]
    return [lines[2][0].lower() + lines[2][1:]]


ROW_ALONE = (
    r"row (\d) \(length (\d) of (\d) padded steps\) gives a different output in the batch than alone "
    r"\(a batch of one, trimmed to length \2\)(: a row's result depends on its padding or on the other rows "
    r"\(the last padded step taken for the last valid one, padding averaged in, rows sorted and never put "
    r"back, state kept from an earlier call\)\.)?"
)
EXTRA = (
    r"appending 2 padding steps of other values changes output of row (\d) \(length (\d) of (\d) padded steps\)"
    r"(: the model reads past each sequence's length \(an RNN run over the padding, padding averaged in, "
    r"the last position pooled whatever the mask\)\.)?"
)


def test_every_padding_bug_is_caught(dyncheck_run):
    # Which failing example Hypothesis ends on may vary (its example database replays earlier
    # failures first): each message is checked for what every failing example must show.
    run = dyncheck_run(*(a for b in BUGS for a in ("--dyncheck", f"{BUGGY}.{b}:Model")), ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{BUGGY}.{b}:Model::padding_invariance": "FAILED" for b in BUGS}, run.text

    def failure(bug):
        return run.failure(f"{BUGGY}.{bug}:Model::padding_invariance")

    # The last padded step: a row shorter than its batch's longest is classified from the padding.
    text = failure("last_padded_step")
    lines = text.strip().splitlines()
    assert lines[0] == f"padding_invariance violated by {BUGGY}.last_padded_step:Model"
    for found in findings(text):
        match = re.fullmatch(ROW_ALONE, found)
        assert match and int(match.group(2)) < int(match.group(3)), found
    numbers = lines.index(next(line for line in lines if "in the batch against alone:" in line))
    assert re.fullmatch(r" *output\[\d\] in the batch against alone:", lines[numbers])
    assert re.fullmatch(r" *Mismatched elements: \d / 4 \(\d+\.\d%\)", lines[numbers + 1])
    absolute, relative = lines[numbers + 2], lines[numbers + 3]
    assert re.fullmatch(r" *Greatest absolute difference: \S+ at index \(\d,\) \(up to 1e-05 allowed\)", absolute)
    assert re.fullmatch(r" *Greatest relative difference: \S+ at index \(\d,\) \(up to 1.3e-06 allowed\)", relative)
    assert re.fullmatch(r"  example:  x float32\[[2-4], \d, 8\].*, lengths int64\[[2-4]\] = \[.*\], seed=0", lines[-5])
    assert re.fullmatch(r"  sizes:    batch=[2-4], time=\d", lines[-4])
    assert lines[-3] == "  path:     rnn → fc"
    assert lines[-1] == (
        f"Reproduce: pytest --dyncheck {BUGGY}.last_padded_step:Model --dyncheck-only --dyncheck-seed=3 "
        "-k padding_invariance"
    )

    # Sorted and never unsorted: rows alone differ.
    assert all(re.fullmatch(ROW_ALONE, found) for found in findings(failure("never_unsorted")))
    # State carried between calls: every call starts from the state the one before left, so a
    # row alone differs, and the same batch with more padding may too.
    found = findings(failure("carried_hidden"))
    assert any(re.fullmatch(ROW_ALONE, f) for f in found), failure("carried_hidden")
    assert all(re.fullmatch(ROW_ALONE, f) or re.fullmatch(EXTRA, f) for f in found), failure("carried_hidden")

    # No packing, and mean pooling over the padding: a row alone differs (when it was padded)
    # and appending padding changes it.
    for bug in ("unpacked_rnn", "mean_over_padding", "dict_padded_sum"):
        found = findings(failure(bug))
        assert any(re.fullmatch(EXTRA, f) for f in found), failure(bug)
        assert all(re.fullmatch(ROW_ALONE, f) or re.fullmatch(EXTRA, f) for f in found), failure(bug)
        assert "with the extra padding against without:" in failure(bug)

    # A dict of inputs: the padding is read from batch["lengths"]; the example names the entries.
    assert re.search(r"  example:  batch\['tokens'\] int64\[\d, \d\] = .*, batch\['lengths'\]", failure("dict_padded_sum"))

    # total_length cut to the longest sequence: the output's time axis follows the batch, not the padding.
    short = failure("short_total_length").strip().splitlines()
    assert re.fullmatch(
        r"Axis 1 of output does not follow the padded length: (\d) for the batch \(padded length (\d)\), "
        r"(\d) for row (\d) alone \(length \3\), \1 with 2 more padding steps: a per-step output must have one "
        r"step per padded step \(give pad_packed_sequence total_length=<the padded length>, or step over every "
        r"padded step, not up to lengths.max\(\)\), a per-sequence output none\.",
        short[2],
    ), short[2]


def test_nan_is_left_to_finite_not_read_as_a_padding_difference(dyncheck_run, pytester):
    # lengths // 2 after a stride-2 convolution: a row of one step has no frame, and its mean
    # divides by zero. Compared, the NaN read "padding changes the gradients: difference nan
    # (up to nan allowed)"; finite names where the NaN is made.
    pytester.makepyfile(
        halved="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self, input_size=8, hidden_size=12, output_size=4):
                super().__init__()
                self.conv = nn.Conv1d(input_size, hidden_size, 3, stride=2, padding=1)
                self.fc = nn.Linear(hidden_size, output_size)

            def forward(self, x, lengths):
                h = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
                out_len = lengths // 2  # the bug: (lengths + 1) // 2
                mask = (torch.arange(h.size(1))[None] < out_len[:, None]).float()[..., None]
                return self.fc((h * mask).sum(1) / out_len[:, None])
        """
    )
    run = dyncheck_run(
        "--dyncheck", "halved:Model", "--dyncheck-invariants=padding_invariance,finite", "--dyncheck-max-examples=30",
        "--dyncheck-seed=5",
    )
    assert run.outcomes() == {
        "dyncheck::halved:Model::padding_invariance": "PASSED", "dyncheck::halved:Model::finite": "FAILED",
    }, run.text
    assert re.search(r"padding_invariance\s+passed\s+checked on \d+ of 30 examples", run.text), run.text


LOG_FRAMES = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class LogFrames(nn.Module):
    # log features of positive magnitudes, each step on its own: the extra padding's random
    # values (some negative) give NaN there, which the model never meets
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, lengths):
        return self.fc(torch.log(x))


class Leaky(LogFrames):
    def forward(self, x, lengths):
        h = torch.log(x)
        return self.fc(h - h.mean(dim=1, keepdim=True))  # the bug: padding in the mean


inputs = {"x": tensors(shape=("batch", "time", 4), min_value=0.5, max_value=4.0), "lengths": sequence_lengths()}
correct = dyncheck.Spec(LogFrames, inputs=inputs)
leaky = dyncheck.Spec(Leaky, inputs=inputs)
"""


def test_nan_made_by_the_extra_padding_leaves_rule_1_compared(dyncheck_run, pytester):
    # NaN only in the runs with dyncheck's extra padding voided the whole example: the leak
    # through the mean, which the rows alone show, passed.
    pytester.makepyfile(log_frames=LOG_FRAMES)
    run = dyncheck_run(
        "--dyncheck", "log_frames:correct", "--dyncheck", "log_frames:leaky", ONLY, "--dyncheck-seed=5",
        "--dyncheck-max-examples=30",
    )
    assert run.outcomes() == {
        "dyncheck::log_frames:correct::padding_invariance": "PASSED",
        "dyncheck::log_frames:leaky::padding_invariance": "FAILED",
    }, run.text
    # compared on (nearly) every example, not skipped for the extra padding's NaN
    assert re.search(r"log_frames:correct .*\n  padding_invariance\s+passed\s+(30 examples|checked on 2\d of 30)", run.text), (
        run.text
    )


def test_a_row_alone_on_another_path_says_which(dyncheck_run, pytester):
    # The branch is decided on the padded length: the batch and the row alone took different
    # paths, the one fact that points at the bug, and the report gave the batch's only.
    pytester.makepyfile(branched="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self, input_size=8, hidden_size=12, output_size=4):
                super().__init__()
                self.short = nn.Linear(input_size, hidden_size)
                self.long = nn.Linear(input_size, hidden_size)
                self.fc = nn.Linear(hidden_size, output_size)

            def forward(self, x, lengths):
                h = torch.tanh(self.long(x) if x.size(1) > 3 else self.short(x))
                mask = (torch.arange(x.size(1))[None] < lengths[:, None]).float()[..., None]
                return self.fc((h * mask).sum(1) / lengths[:, None].float())
        """)
    run = dyncheck_run("--dyncheck", "branched:Model", ONLY, "--dyncheck-seed=5", "--dyncheck-max-examples=30")
    text = run.failure("::padding_invariance")
    assert re.search(
        r"  paths: the batch took (long → fc; row \d+ alone took short → fc|short → fc; the batch with the extra padding "
        r"took long → fc) \(a branch decided on the padded length, or on the other rows\)", text,
    ), text


def test_gradients_alone_are_compared(dyncheck_run, pytester):
    # Contrived on purpose: a straight-through surrogate that averages over the padding gives
    # the right values (good + bad - bad) and wrong gradients.
    pytester.makepyfile(
        surrogate="""
        import torch
        from torch import nn
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        class Model(nn.Module):
            def __init__(self, input_size, hidden_size, output_size):
                super().__init__()
                self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
                self.fc = nn.Linear(hidden_size, output_size)

            def forward(self, x, lengths):
                packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
                output, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))
                good = output.sum(1) / lengths[:, None]
                bad = output.mean(1)
                return self.fc(good + (bad - bad.detach()))
        """
    )
    run = dyncheck_run("--dyncheck", "surrogate:Model", ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {"dyncheck::surrogate:Model::padding_invariance": "FAILED"}, run.text
    lines = run.failure("::padding_invariance").strip().splitlines()
    params = r"rnn\.weight_ih_l0, (rnn\.weight_hh_l0, )?rnn\.bias_ih_l0, rnn\.bias_hh_l0"
    where = r"\(lengths \[[\d, ]+\], padded length \d\)"
    alone = (
        rf"the gradients of {params} for the batch's loss \(a random projection of the valid outputs\) "
        rf"differ from the sum over rows of each row's gradients alone {where}"
    )
    extra = rf"appending 2 padding steps of other values changes the gradients of {params} {where}"
    # With padding in the batch both differ; with none, only the extra padding shows it.
    found = findings("\n".join(lines))
    assert found and all(re.match(alone, f) or re.match(extra, f) for f in found), found
    assert any(re.match(extra, f) for f in found), found
    numbers = next(i for i, line in enumerate(lines) if line.strip() == "rnn.weight_ih_l0.grad:")
    assert re.fullmatch(r" *Mismatched elements: \d+ / 144 \(\d+\.\d%\)", lines[numbers + 1])


#: A GRU classifier whose initial state is made inside forward, as {h0}, then {check}.
H0_INSIDE = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, lengths):
        h0 = {h0}
        {check}
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return self.fc(self.rnn(packed, h0)[1][-1])
"""


@pytest.mark.parametrize(
    "made", ["torch.zeros(1, x.size(0), self.rnn.hidden_size)", "x.new_zeros(1, x.size(0), self.rnn.hidden_size)"]
)
def test_a_tensor_made_in_forward_follows_the_float64_copy(dyncheck_run, pytester, made):
    # torch's default dtype is float64 during the float64 calls, so h0 is float64 either way.
    check = "assert h0.dtype == self.fc.weight.dtype, (h0.dtype, self.fc.weight.dtype)"
    pytester.makepyfile(made_inside=H0_INSIDE.format(h0=made, check=check))
    run = dyncheck_run("--dyncheck", "made_inside:Model", ONLY, "--dyncheck-seed=3", "--dyncheck-max-examples=15")
    assert run.outcomes() == {"dyncheck::made_inside:Model::padding_invariance": "PASSED"}, run.text
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize("seed", [3, 24803])
def test_a_model_that_cannot_run_in_float64_is_compared_in_its_own_dtype(dyncheck_run, pytester, seed):
    # float32 whatever x is: the float64 copy cannot run, so the model is compared as it is.
    h0 = "torch.zeros(1, x.size(0), self.rnn.hidden_size, dtype=torch.float32)"
    pytester.makepyfile(float32only=H0_INSIDE.format(h0=h0, check="pass"))
    run = dyncheck_run("--dyncheck", "float32only:Model", ONLY, f"--dyncheck-seed={seed}", "--dyncheck-max-examples=15")
    assert run.outcomes() == {"dyncheck::float32only:Model::padding_invariance": "PASSED"}, run.text


def test_layout_from_named_shapes_when_time_equals_batch_and_features():
    # x is [time, batch, 8] with time == batch == 8: only the strategy's names tell the axes apart.
    target = resolve("reference_models.time_major_gru:GRUTagger")
    assert lengths_argument(target) == ("lengths", None)
    example = Example({"x": torch.zeros(8, 8, 8), "lengths": torch.tensor([3] * 8)}, 0, {"time": 8, "batch": 8})
    layout = _Layout(target, example, ("lengths", None))
    assert (layout.axes, layout.padded) == ({("x", None): (1, 0)}, 8)
    row = layout.row(example.args, 2)
    assert row["x"].shape == (3, 1, 8) and row["lengths"].tolist() == [3]
    assert layout.extended(example.args, torch.Generator())["x"].shape == (10, 8, 8)


def test_layout_by_sizes_for_strategies_that_name_no_axes():
    import dyncheck
    from hypothesis import strategies as st

    from reference_models.rnn import DynamicRNN

    spec = dyncheck.Spec(
        DynamicRNN,
        init={"input_size": 4, "hidden_size": 3, "output_size": 2},
        inputs={"x": st.just(torch.zeros(2, 5, 4)), "seq_lengths": st.just(torch.tensor([5, 2]))},
        dims={"time": 5},
    )
    target = dyncheck.target.resolve_spec(spec)
    example = Example({"x": torch.zeros(2, 5, 4), "seq_lengths": torch.tensor([5, 2])}, 0, {"time": 5})
    layout = _Layout(target, example, ("seq_lengths", None))
    assert layout.axes == {("x", None): (0, 1)} and layout.lengths == [5, 2]



def test_layout_of_a_dict_of_inputs_entry_by_entry():
    from reference_models.dict_batch import DictBatchClassifier

    target = resolve("reference_models.dict_batch:DictBatchClassifier")
    assert target.model_class is DictBatchClassifier and lengths_argument(target) == ("batch", "lengths")
    batch = {"tokens": torch.arange(12).reshape(3, 4), "lengths": torch.tensor([4, 2, 3])}
    example = Example({"batch": batch}, 0, {"time": 4, "batch": 3})
    layout = _Layout(target, example, ("batch", "lengths"))
    assert (layout.axes, layout.lengths, layout.lengths_name) == ({("batch", "tokens"): (0, 1)}, [4, 2, 3], "batch['lengths']")
    row = layout.row(example.args, 1)
    assert row["batch"]["tokens"].tolist() == [[4, 5]] and row["batch"]["lengths"].tolist() == [2]
    assert layout.extended(example.args, torch.Generator())["batch"]["tokens"].shape == (3, 6)
    assert example.args["batch"] is batch and batch["tokens"].shape == (3, 4)  # the example's own dict is left as it was


def test_layout_of_a_dict_inside_a_dict_of_inputs():
    from dyncheck.invariants.padding_invariance import mask_argument, slot_text

    target = resolve("reference_models.dict_batch:NestedBatchClassifier")
    mask = mask_argument(target)
    assert mask == ("batch", ("text", "attention_mask")) and slot_text(mask) == "batch['text']['attention_mask']"
    text = {"input_ids": torch.arange(6).reshape(2, 3), "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]])}
    batch = {"text": text, "image": torch.zeros(2, 12)}
    example = Example({"batch": batch}, 0, {"time": 3, "batch": 2})
    layout = _Layout(target, example, mask, mask=True)
    assert layout.lengths == [3, 1]
    assert layout.axes[("batch", ("text", "input_ids"))] == (0, 1) and layout.axes[("batch", "image")] == (0, None)
    row = layout.row(example.args, 1)
    assert row["batch"]["text"]["input_ids"].tolist() == [[3]] and row["batch"]["image"].shape == (1, 12)
    assert layout.extended(example.args, torch.Generator())["batch"]["text"]["attention_mask"].shape == (2, 5)
    assert example.args["batch"] is batch and batch["text"] is text and text["input_ids"].shape == (2, 3)

DECLARED = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import dyncheck


class Model(nn.Module):
    '''The lengths argument has a name dyncheck does not recognise: n_valid.'''

    def __init__(self, input_size=8, hidden_size=6, output_size=4, last_padded=False):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)
        self.last_padded = last_padded

    def forward(self, x, n_valid):
        if self.last_padded:  # the bug: the last padded step for every sequence
            return self.fc(self.rnn(x)[0][:, -1])
        packed = pack_padded_sequence(x, n_valid.cpu(), batch_first=True, enforce_sorted=False)
        return self.fc(self.rnn(packed)[1][-1])


good = dyncheck.Spec(Model, lengths="n_valid")
buggy = dyncheck.Spec(Model, init={"last_padded": True}, lengths="n_valid")
typo = dyncheck.Spec(Model, lengths="n_vaild")
"""


def test_a_lengths_argument_declared_in_the_spec(dyncheck_run, pytester):
    pytester.makepyfile(declared=DECLARED)
    run = dyncheck_run(
        "--dyncheck", "declared:good", "--dyncheck", "declared:buggy", ONLY, "--dyncheck-seed=3",
        "--dyncheck-max-examples=25", "--dyncheck-explain",
    )
    assert run.outcomes() == {
        "dyncheck::declared:good::padding_invariance": "PASSED",
        "dyncheck::declared:buggy::padding_invariance": "FAILED",
    }, run.text
    assert "in the batch than alone" in run.failure("declared:buggy::padding_invariance")
    # Inferred from the declaration: n_valid as lengths over the padded batch's "time".
    assert "Spec(lengths=...) says sequence lengths" in run.text
    assert "'x': tensors(shape=('batch', 'time', 8))," in run.text
    assert "'n_valid': sequence_lengths()," in run.text
    assert "    lengths='n_valid'," in run.text


def test_a_declared_lengths_argument_forward_does_not_take(dyncheck_run, pytester):
    pytester.makepyfile(declared=DECLARED)
    run = dyncheck_run("--dyncheck", "declared:typo")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "Spec(lengths='n_vaild') names an argument Model.forward does not take; did you mean 'n_valid'? "
        "(it takes x, n_valid)"
    ) in run.text
    assert "Traceback" not in run.text


TIME_MAJOR = """
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Model(nn.Module):
    '''A time-major tagger whose output stays time-major: [time, batch, tags].'''

    def __init__(self, input_size=8, hidden_size=6, num_tags=4, short=False):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, num_tags)
        self.short = short

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        # The bug, when short: no total_length, so the output stops at the longest sequence.
        total = None if self.short else x.size(0)
        output, _ = pad_packed_sequence(self.gru(packed)[0], total_length=total)
        return self.fc(output)
"""


@pytest.mark.parametrize(("lengths", "short"), [([1, 3, 2], False), ([1, 1, 1], False), ([3, 3, 3], False),
                                               ([1, 2, 2], True)])
def test_a_time_major_output_whose_padded_length_equals_the_batch(pytester, lengths, short):
    # Output [3, 3, 4]: only the rows alone ([length, 1, 4]) and the extra padding
    # ([5, 3, 4]) tell the batch axis from the time axis.
    from dyncheck.invariants import Context
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.spec import Spec
    from dyncheck.strategies import sequence_lengths, tensors
    from dyncheck.target import resolve_spec

    module = pytester.makepyfile(time_major_out=TIME_MAJOR)
    pytester.syspathinsert(module.parent)
    from time_major_out import Model

    target = resolve_spec(Spec(Model, init={"short": short}, inputs={
        "x": tensors(shape=("time", "batch", 8)), "lengths": sequence_lengths(),
    }))
    x = torch.linspace(-2, 2, 3 * 3 * 8).reshape(3, 3, 8)
    example = Example({"x": x, "lengths": torch.tensor(lengths)}, 0, {"time": 3, "batch": 3})
    if not short:
        PaddingInvariance().check(Context(target), example)  # raises InvariantViolation if misread
        return
    with pytest.raises(InvariantViolation, match="Axis 0 of output does not follow the padded length: 2 for the batch"):
        PaddingInvariance().check(Context(target), example)


def test_a_gradient_bug_behind_a_softmax_shows_only_under_the_projected_loss():
    # straight_through_pool returns probabilities: under a sum loss its gradients are rounding
    # noise in the batch and with extra padding alike, so the surrogate that reads the
    # padding would pass; under the projected loss the difference is plain.
    from dyncheck.tracing import project, projection
    from reference_models.buggy.straight_through_pool import Model

    torch.manual_seed(0)
    model = Model(3, 5, 4).double()
    x, lengths = torch.randn(2, 4, 3, dtype=torch.float64), torch.tensor([2, 4])
    extended = torch.cat([x, torch.randn(2, 2, 3, dtype=torch.float64) * 10], dim=1)
    weights = projection((2, 4), seed=0, key="output")

    def gradient(inputs, loss):
        return torch.autograd.grad(loss(model(inputs, lengths)), model.rnn.weight_ih_l0)[0]

    for loss, visible in ((lambda out: out.sum(), False), (lambda out: project(out, weights), True)):
        moved = float((gradient(extended, loss) - gradient(x, loss)).abs().max())
        assert (moved > 1e-3) is visible, moved


# --------------------------------------------------------------------------- attention masks

MASKED_POOL = '''
import torch

from reference_models.buggy.unmasked_mean_pool import Model as Unmasked


class Model(Unmasked):
    """The fixed unmasked_mean_pool: the mean over the tokens the mask keeps."""

    def forward(self, input_ids=None, attention_mask=None):
        hidden = torch.tanh(self.proj(self.embed(input_ids)))
        keep = attention_mask[..., None].to(hidden.dtype)
        return self.classifier((hidden * keep).sum(1) / keep.sum(1))
'''


def test_an_attention_mask_says_where_the_padding_is(dyncheck_run, pytester):
    # Hugging Face-style forward(input_ids, attention_mask): no lengths argument, the inferred
    # attention_masks() strategy draws right-padded masks, and the rows' lengths are read
    # from them. Mean pooling that ignores the mask fails; pooling under the mask passes,
    # as does the reference causal LM (its padded keys are masked out of attention).
    pytester.makepyfile(masked=MASKED_POOL)
    bug = f"{BUGGY}.unmasked_mean_pool:Model"
    good = ["masked:Model", "reference_models.hf_style:TinyCausalLM"]
    run = dyncheck_run("--dyncheck", bug, *(a for t in good for a in ("--dyncheck", t)), ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {
        f"dyncheck::{bug}::padding_invariance": "FAILED",
        **{f"dyncheck::{t}::padding_invariance": "PASSED" for t in good},
    }, run.text
    text = run.failure(f"{bug}::padding_invariance")
    assert all(re.fullmatch(ROW_ALONE, f) or re.fullmatch(EXTRA, f) for f in findings(text)), text
    lines = text.strip().splitlines()
    assert lines[-5] == "  example:  input_ids int64[1, 2] = [[0, 1]], attention_mask int64[1, 2] = [[1, 0]], seed=0"


LEFT_PADDED = '''
import torch
import dyncheck
from dyncheck.strategies import attention_masks, tensors
from masked import Model

spec = dyncheck.Spec(
    Model,
    inputs={
        "input_ids": tensors(shape=("batch", "time"), dtype=torch.long, max_value=31),
        "attention_mask": attention_masks(padding_side="left"),
    },
)
'''


def test_a_left_padded_mask_is_a_skip_that_says_why(dyncheck_run, pytester):
    pytester.makepyfile(masked=MASKED_POOL, left=LEFT_PADDED)
    run = dyncheck_run("--dyncheck", "left:spec", ONLY)
    assert run.outcomes() == {"dyncheck::left:spec::padding_invariance": "SKIPPED"}, run.text
    assert run.skip_reason("dyncheck::left:spec::padding_invariance") == (
        "attention_mask is padded on the left "
        "(attention_masks(padding_side='left')): a row alone, trimmed to its tokens, starts at another "
        "position than in the batch; padding_invariance compares right-padded batches"
    )


POSITIONS = '''
import torch
from torch import nn
import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class Model(nn.Module):
    """Learned positions for at most 6 steps; raises on extra padding: {refuses}."""

    def __init__(self):
        super().__init__()
        self.positions = nn.Parameter(torch.randn(6, 4))
        self.fc = nn.Linear(4, 3)

    def forward(self, x, lengths):
        steps = x.shape[1]
        if {refuses}:
            raise ValueError(f"{{steps}} steps but lengths go up to {{int(lengths.max())}}")
        h = x + self.positions[:steps]  # raises past 6 steps
        keep = (torch.arange(steps)[None, :] < lengths[:, None]).to(h.dtype)[..., None]
        return self.fc((h * keep).sum(1) / keep.sum(1))


spec = dyncheck.Spec(
    Model,
    inputs={{"x": tensors(shape=("batch", "time", 4)), "lengths": sequence_lengths()}},
    dims={{"time": (1, 6)}},
)
'''


@pytest.mark.parametrize(
    ("refuses", "outcome"),
    [("False", "PASSED"), ("steps > int(lengths.max()) + 1", "FAILED")],
    ids=["length-limit", "refuses-padding"],
)
def test_a_model_that_takes_no_longer_sequence_is_not_asked_for_more_padding(dyncheck_run, pytester, refuses, outcome):
    # A position table that ends at the longest padded length the spec draws: two more steps
    # raise whether they are padding or not, so rule 2 is not asked of that example (the
    # rows alone still are). A model that raises on the extra padding only is reported.
    pytester.makepyfile(positions=POSITIONS.format(refuses=refuses))
    run = dyncheck_run("--dyncheck", "positions:spec", ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {"dyncheck::positions:spec::padding_invariance": outcome}, run.text
    if outcome == "FAILED":
        assert "ValueError" in run.failure("padding_invariance"), run.text


def test_a_raise_on_the_padding_appended_says_so_and_names_pad_to_longest(dyncheck_run, pytester):
    # pytorch-forecasting's TFT takes its padded width from lengths.max(): the example shown
    # ran, the raise came from the two steps this check appends, and the report read as if
    # the example itself had raised, with nothing on pad_to_longest.
    pytester.makepyfile(longest="""
        import torch
        from torch import nn
        import dyncheck
        from dyncheck.strategies import sequence_lengths, tensors

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x, lengths):
                longest = int(lengths.max())
                if x.shape[1] != longest:
                    raise RuntimeError(f"x padded to {x.shape[1]} steps, longest sequence has {longest}")
                return self.fc(x) * (torch.arange(longest)[None, :] < lengths[:, None])[..., None]

        spec = dyncheck.Spec(Model, inputs={"x": tensors(shape=("batch", "time", 4)), "lengths": sequence_lengths()})
        """)
    run = dyncheck_run("--dyncheck", "longest:spec", ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::longest:spec::padding_invariance": "FAILED"}, run.text
    report = run.failure("padding_invariance")
    assert "lengths=tensor([1])" in report, report
    assert (
        "the example shown ran; it raised on this check's own call, the same batch with 2 more padded steps appended "
        "(1 to 3), which the model refuses though it takes 3 steps with no padding. A model that takes its padded "
        "width from its lengths (lengths.max()) is given batches padded to their longest sequence: declare that with "
        "sequence_lengths(pad_to_longest=True)"
    ) in report, report


def test_a_mask_beside_lengths_is_made_from_them_in_every_check(dyncheck_run, pytester):
    # sentence-transformers' LSTM packs by the lengths and pools by the mask: drawn apart they
    # disagreed (a model that asserts they agree crashed every check), and padding_invariance
    # appended steps the mask marked as tokens
    pytester.makepyfile(pair="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(20, 8)

            def forward(self, input_ids, attention_mask, lengths):
                assert torch.equal(attention_mask.sum(1), lengths), "the mask and the lengths disagree"
                m = attention_mask.unsqueeze(-1).to(torch.get_default_dtype())
                return (self.emb(input_ids) * m).sum(1) / m.sum(1)
        """)
    run = dyncheck_run(
        "--dyncheck", "pair:Model", "--dyncheck-invariants=determinism,batch_invariance,padding_invariance",
        "--dyncheck-seed=1",
    )
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_the_mask_is_the_one_attention_masks_drew():
    # Inferred for a Hugging Face-style forward; a mask mapped to something else (here
    # inverted, True at padding) is not read as one, and the check says it has no lengths.
    from dyncheck import Spec
    from dyncheck.invariants.padding_invariance import PaddingInvariance, mask_argument
    from dyncheck.strategies import attention_masks, tensors
    from dyncheck.target import resolve_spec
    from reference_models.buggy.unmasked_mean_pool import Model

    assert mask_argument(resolve("reference_models.hf_style:TinyCausalLM")) == ("attention_mask", None)
    inverted = resolve_spec(Spec(Model, inputs={
        "input_ids": tensors(shape=("batch", "time"), dtype=torch.long, max_value=31),
        "attention_mask": attention_masks(dtype=torch.bool).map(lambda m: ~m),
    }))
    assert mask_argument(inverted) is None
    assert PaddingInvariance().applies_to(inverted).startswith("forward takes no lengths argument")


@pytest.mark.parametrize(
    ("leaf", "cache"),
    [
        ("output.cache_params.conv_states[0]", True),
        ("output.past_key_values[0][1]", True),
        ("output.cache.layers[0].keys", True),
        ("output.encoder_cache.x", True),
        ("output.last_hidden_state", False),
        ("output.cached_logits", False),
        ("output[0]", False),
    ],
)
def test_only_a_cache_for_the_next_call_is_left_out(leaf, cache):
    from dyncheck.invariants.padding_invariance import _CACHE

    assert bool(_CACHE.search(leaf)) is cache


@pytest.mark.parametrize("shortest", [None, 1], ids=["spec", "every-row-alone"])
def test_a_row_shorter_than_the_spec_allows_is_not_run_alone(dyncheck_run, monkeypatch, shortest):
    # The masked text CNN raises on fewer than 4 steps (its widest convolution), so the size
    # probe starts the padded length at 4; a sentence of 1-3 tokens lives in such a batch
    # but is never given alone. Run alone anyway (the spec's shortest taken as 1), such a
    # row makes the check report the model's crash on an input no spec draws.
    from dyncheck.invariants import padding_invariance

    target = "reference_models.text_cnn:MaskedTextCNN"
    assert resolve(target).spec.dims["time"][0] == 4
    if shortest is not None:
        monkeypatch.setattr(padding_invariance, "_shortest", lambda target, time_dim: shortest)
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=30")
    outcome = "PASSED" if shortest is None else "FAILED"
    assert run.outcomes() == {f"dyncheck::{target}::padding_invariance": outcome}, run.text
    if shortest is not None:
        assert "Kernel size can't be greater than actual input size" in run.failure("padding_invariance")


def test_the_shortest_padded_length_read_from_the_spec():
    from hypothesis import strategies as st

    from dyncheck import Spec
    from dyncheck.invariants.padding_invariance import _shortest
    from dyncheck.target import resolve_spec
    from reference_models.rnn import DynamicRNN

    def shortest(dims):
        return _shortest(resolve_spec(Spec(DynamicRNN, dims=dims)), "time")

    assert shortest({}) == 1  # the default range starts at 1
    assert shortest({"time": (3, 9)}) == 3
    assert shortest({"time": 5}) == 5
    assert shortest({"time": st.sampled_from([8, 4, 16])}) == 4
    assert shortest({"time": st.integers(2, 9)}) == 1  # unreadable: every row runs alone


MIDDLE_EMPTY = '''
import dyncheck
import torch
from torch import nn
from dyncheck.strategies import sequence_lengths, tensors


class Model(nn.Module):
    """A masked mean of per-step features; an empty sequence gives zeros."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, lengths):
        keep = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).to(x.dtype)[..., None]
        return self.fc((torch.tanh(x) * keep).sum(1) / keep.sum(1).clamp(min=1))


spec = dyncheck.Spec(
    Model,
    inputs={"x": tensors(shape=("batch", "time", 4), max_value=10.0, min_value=-10.0),
            "lengths": sequence_lengths(min_length=0)},
    dims={"batch": (3, 4)},
)
'''


def test_an_empty_sequence_between_others_keeps_the_rows_in_their_places(dyncheck_run, pytester):
    # The batch's loss weights each row's outputs by that row's slice of the projection:
    # with an empty row before others, the rows after it must still be read at their own
    # index in the batch (they were read one place early, and the gradients differed).
    pytester.makepyfile(middle_empty=MIDDLE_EMPTY)
    run = dyncheck_run("--dyncheck", "middle_empty:spec", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=60")
    assert run.outcomes() == {"dyncheck::middle_empty:spec::padding_invariance": "PASSED"}, run.text


FLOAT32_SOFTMAX = '''
import torch
from torch import nn


class Model(nn.Module):
    """Longformer's pattern: an additive mask of finfo(dtype).min, a softmax pinned to float32,
    fully masked (padded) query rows zeroed after it."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.bool()
        h = self.emb(input_ids)
        s = self.q(h) @ self.k(h).transpose(-1, -2)
        s = s + (~(m[:, :, None] & m[:, None, :])).to(s.dtype) * torch.finfo(s.dtype).min
        p = s.softmax(-1, dtype=torch.float32).masked_fill(~m[:, :, None], 0.0).type_as(s)
        return p @ self.v(h)
'''


def test_a_float64_copy_that_gives_nan_is_compared_in_the_models_own_dtype(dyncheck_run, pytester):
    # In float64, finfo(float64).min becomes -inf in the float32 softmax and a fully masked
    # row NaN (its gradients too); the model never meets that in its own dtype, where it is
    # exactly padding-invariant. The NaN was compared, with a tolerance of NaN.
    pytester.makepyfile(float32_softmax=FLOAT32_SOFTMAX)
    run = dyncheck_run("--dyncheck", "float32_softmax:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=40")
    assert run.outcomes() == {"dyncheck::float32_softmax:Model::padding_invariance": "PASSED"}, run.text


TRAIN_ONLY_BACKWARD = '''
import torch
from torch import nn


class _TrainOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, training):
        ctx.training = training
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        assert ctx.training, "backward needs model.train()"  # as Reformer's reversible layers
        return grad, None


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.fc = nn.Embedding(30, 8), nn.Linear(8, 3)

    def forward(self, input_ids, attention_mask):
        h = _TrainOnly.apply(self.emb(input_ids), self.training)
        m = attention_mask[..., None].to(h.dtype)
        return self.fc((h * m).sum(1) / m.sum(1))
'''


def test_a_model_whose_backward_raises_is_the_models_error_not_dyncheck(dyncheck_run, pytester):
    pytester.makepyfile(train_only=TRAIN_ONLY_BACKWARD)
    run = dyncheck_run("--dyncheck", "train_only:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=10")
    assert run.outcomes() == {"dyncheck::train_only:Model::padding_invariance": "FAILED"}, run.text
    text = run.failure("padding_invariance")
    assert "padding_invariance: train_only:Model raised in backward" in text
    assert "dyncheck itself" not in text


ALWAYS_CHECKPOINTED = '''
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.fc = nn.Embedding(20, 12), nn.Linear(12, 3)
        self.block = nn.Sequential(nn.Linear(12, 12), nn.Tanh())

    def forward(self, tokens, lengths):
        h = self.emb(tokens)
        if torch.is_grad_enabled():  # in eval mode too
            h = h + checkpoint(self.block, h, use_reentrant=True)
        else:
            h = h + self.block(h)
        mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return self.fc((h * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None])
'''


def test_the_gradient_rule_runs_backward_through_a_reentrant_checkpoint(dyncheck_run, pytester):
    # autograd.grad() raises under checkpoint(..., use_reentrant=True): the gradient rule
    # reported a correct model as raising in backward.
    pytester.makepyfile(always_checkpointed=ALWAYS_CHECKPOINTED)
    run = dyncheck_run("--dyncheck", "always_checkpointed:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    assert run.outcomes() == {"dyncheck::always_checkpointed:Model::padding_invariance": "PASSED"}, run.text


DICT_BATCH = """
from torch import nn

from reference_models.dict_batch import DictMaskedClassifier


class Unmasked(DictMaskedClassifier):
    def forward(self, batch):
        emb = self.embed(batch["input_ids"])
        mask = batch["attention_mask"].unsqueeze(-1).to(emb.dtype)
        return self.head(emb.sum(1) / mask.sum(1).clamp(min=1))  # the padding's embeddings summed in


class LengthsOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 2)

    def forward(self, batch):
        return self.fc(batch["lengths"].unsqueeze(-1).to(self.fc.weight.dtype))
"""


def test_a_dict_of_inputs_says_where_the_padding_is(dyncheck_run, pytester):
    # batch["attention_mask"] beside batch["input_ids"], as a tokenizer's batch: the mask entry says where the
    # padding is, as an attention_mask argument does.
    pytester.makepyfile(dict_masks=DICT_BATCH)
    good = "reference_models.dict_batch:DictMaskedClassifier"
    run = dyncheck_run(
        "--dyncheck", good, *(a for name in ("Unmasked", "LengthsOnly") for a in ("--dyncheck", f"dict_masks:{name}")),
        ONLY, "--dyncheck-seed=3",
    )
    assert run.outcomes() == {
        f"dyncheck::{good}::padding_invariance": "PASSED",
        "dyncheck::dict_masks:Unmasked::padding_invariance": "FAILED",
        "dyncheck::dict_masks:LengthsOnly::padding_invariance": "SKIPPED",
    }, run.text
    text = run.failure("dict_masks:Unmasked::padding_invariance")
    assert all(re.fullmatch(ROW_ALONE, f) or re.fullmatch(EXTRA, f) for f in findings(text)), text
    assert re.search(r"  example:  batch\['input_ids'\] int64\[\d, \d\].*, batch\['attention_mask'\] int64", text), text
    assert run.skip_reason("dyncheck::dict_masks:LengthsOnly::padding_invariance") == (
        "forward takes batch['lengths'] but no padded batch beside it"
    )


BATCH_MEAN_CONFORMER = """
import torch

from reference_models.length_mask import LengthMaskedConformer


class Model(LengthMaskedConformer):
    '''Takes only batches padded to their longest sequence, and subtracts the batch's mean.'''

    def forward(self, input, lengths):
        frames, lengths = super().forward(input, lengths)
        return frames - frames.mean(0, keepdim=True), lengths
"""


def test_lengths_padded_to_the_longest_ask_rule_2_of_no_example_and_say_so(dyncheck_run):
    target = "reference_models.length_mask:LengthMaskedConformer"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=padding_invariance,batch_invariance",
                       "--dyncheck-max-examples=10")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(r"rule 2 \(padding appended past the longest sequence\) not asked on 10 examples: the lengths "
                     r"are drawn with pad_to_longest=True, the longest always the padded length, as inferred for the "
                     r"model \(--dyncheck-explain says why\)", summary), summary
    assert re.search(r"on \d+ examples? the samples shorter than the padded length were not run alone", summary), summary


GIVEN_PAD_TO_LONGEST = """
import dyncheck
from dyncheck.strategies import sequence_lengths
from reference_models.length_mask import LengthMaskedConformer

spec = dyncheck.Spec(
    LengthMaskedConformer, inputs={"lengths": sequence_lengths(max_length="time", pad_to_longest=True)}
)
"""


def test_lengths_a_spec_pads_to_the_longest_are_not_said_to_be_inferred(dyncheck_run, pytester):
    # The notes said "as the model takes no other batch (--dyncheck-explain says what it
    # raised)" of lengths the user's Spec drew so.
    pytester.makepyfile(given=GIVEN_PAD_TO_LONGEST)
    run = dyncheck_run("--dyncheck", "given:spec", "--dyncheck-invariants=padding_invariance,batch_invariance",
                       "--dyncheck-max-examples=5")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(r"rule 2 \(padding appended past the longest sequence\) not asked on 5 examples: the lengths "
                     r"are drawn with pad_to_longest=True, the longest always the padded length, as the Spec draws "
                     r"them", summary), summary
    assert re.search(r"the samples shorter than the padded length were not run alone: the lengths are drawn with "
                     r"pad_to_longest=True, as the Spec draws them", summary), summary


def test_a_batch_dependence_still_shows_on_the_rows_that_span_the_padded_length(dyncheck_run, pytester):
    # Rows shorter than the padded length are not run alone by batch_invariance, but the
    # longest are, and padding_invariance runs every row alone, trimmed.
    pytester.makepyfile(meaned=BATCH_MEAN_CONFORMER)
    run = dyncheck_run("--dyncheck", "meaned:Model", "--dyncheck-invariants=padding_invariance,batch_invariance")
    assert run.outcomes() == {
        "dyncheck::meaned:Model::batch_invariance": "FAILED",
        "dyncheck::meaned:Model::padding_invariance": "FAILED",
    }, run.text
    assert "differs from the same sample run alone" in run.failure("::batch_invariance")


FRAMES = """
import torch
from torch import nn

import dyncheck


class ClassToken(nn.Module):
    '''Puts a learned class token before the sequence: its output is one step longer than the input.'''

    def __init__(self, dim=8):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)

    def padding(self, x, lengths):
        return torch.arange(x.shape[1])[None, :] > lengths[:, None]  # the class token, then lengths tokens

    def forward(self, x, lengths):
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1)
        return self.attention(x, x, x, key_padding_mask=self.padding(x, lengths), need_weights=False)[0]


class ClassTokenOffByOne(ClassToken):
    def padding(self, x, lengths):
        return torch.arange(x.shape[1])[None, :] > lengths[:, None] + 1  # BUG: lets the first padded step in


class Strided(nn.Module):
    '''A stride-2 convolution over time: its frames follow the padded length at half the rate.'''

    def __init__(self, dim=8, hidden=6, padding=0):
        super().__init__()
        self.conv = nn.Conv1d(dim, hidden, 3, stride=2, padding=padding)

    def forward(self, x, lengths):
        if x.shape[1] < 3 - 2 * self.conv.padding[0]:
            raise ValueError("shorter than the kernel")
        return self.frames(self.conv(x.transpose(1, 2)).transpose(1, 2))

    def frames(self, h):
        return h


class StridedSame(Strided):
    '''Padded by one step each side: a row's last frame reads a step past its length, which
    is the convolution's own zero alone, and the padding in a batch.'''

    def __init__(self):
        super().__init__(padding=1)


class StridedSummedBack(Strided):
    def frames(self, h):
        return h.flip(1).cumsum(1).flip(1)  # BUG: each frame adds every later one, padding frames too


zero_padded = dyncheck.Spec(StridedSame, padding_value=0.0)
"""


@pytest.mark.parametrize(
    ("name", "outcome"), [("ClassToken", "PASSED"), ("ClassTokenOffByOne", "FAILED")]
)
def test_an_output_a_fixed_number_of_steps_longer_is_compared_on_its_valid_steps(dyncheck_run, pytester, name, outcome):
    # A class token put first: the output has one step more than the padded input, for the
    # batch, each row alone and the extra padding alike; its valid steps are compared.
    pytester.makepyfile(frames=FRAMES)
    run = dyncheck_run("--dyncheck", f"frames:{name}", ONLY)
    assert run.outcomes() == {f"dyncheck::frames:{name}::padding_invariance": outcome}, run.text
    if outcome == "FAILED":
        assert "gives a different output in the batch than alone" in run.failure("::padding_invariance")


@pytest.mark.parametrize(
    ("name", "outcome"),
    [("Strided", "PASSED"), ("StridedSame", "FAILED"), ("zero_padded", "PASSED"), ("StridedSummedBack", "FAILED")],
)
def test_frames_at_another_rate_are_compared_on_the_frames_a_row_has_alone(dyncheck_run, pytester, name, outcome):
    # A strided convolution: the frames follow the padded length at another rate. A row
    # trimmed to its length has only its own frames alone; the batch's first as many
    # frames of that row must equal them. A convolution padded on the right reads the
    # batch's padding in the last one, which is right only for zero padding, declared.
    pytester.makepyfile(frames=FRAMES)
    run = dyncheck_run("--dyncheck", f"frames:{name}", ONLY)
    assert run.outcomes() == {f"dyncheck::frames:{name}::padding_invariance": outcome}, run.text
    if outcome == "FAILED":
        assert re.search(r"gives a different output in the batch than alone|changes output of row", run.text), run.text
    if name == "StridedSame":
        assert "With every padded step of x set to 0.0 nothing differs, here and with other values" in run.text


def test_frames_of_rows_none_of_which_runs_alone_are_not_compared(pytester):
    # Every row shorter than the kernel, which the spec's padded lengths never are: no row
    # runs alone to count its frames, so the frames are not compared, and the example says why.
    import dyncheck
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.strategies import sequence_lengths, tensors
    from dyncheck.target import resolve_spec

    pytester.makepyfile(frames=FRAMES)
    pytester.syspathinsert()
    import frames

    spec = dyncheck.Spec(
        frames.Strided,
        inputs={"x": tensors(shape=("batch", "time", 8)), "lengths": sequence_lengths()},
        dims={"time": (3, 6)},
    )
    context = Context(resolve_spec(spec))
    example = Example({"x": torch.randn(2, 4, 8), "lengths": torch.tensor([1, 2])}, 0, {"batch": 2, "time": 4})
    with context.counting():
        PaddingInvariance().check(context, example)
    assert re.fullmatch(
        r"in 1 example: axis 1 of output follows the padded length at another rate \(1 steps for 4 padded, 2 for 6\): "
        r"no row ran alone to say how many of its steps are a row's own .*, so it is not compared row by row",
        context.vacuous(),
    ), context.vacuous()


def test_frames_no_row_ran_alone_to_count_are_not_compared():
    from dyncheck.invariants.padding_invariance import PaddingInvariance

    batch, longer = torch.zeros(2, 3, 4), torch.zeros(2, 4, 4)  # 3 frames for 7 padded steps, 4 for 9
    assert PaddingInvariance._time_axes("output", 0, batch, {}, longer, [7, 2], 7) == (
        None, [(1, None)], "axis 1 of output follows the padded length at another rate (3 steps for 7 padded, 4 for 9)",
    )


def test_pooled_frames_of_a_padded_audio_batch_are_compared(dyncheck_run, pytester):
    # The audio mask is inferred beside input_values; the strided frames cannot be lined up,
    # but the masked mean over each row's frames is a row's own result, and is compared.
    pytester.makepyfile(audio=AUDIO)
    run = dyncheck_run("--dyncheck", "audio:Pooled", ONLY)
    assert run.outcomes() == {"dyncheck::audio:Pooled::padding_invariance": "PASSED"}, run.text
    run = dyncheck_run("--dyncheck", "audio:PooledOverPadding", ONLY)
    assert run.outcomes() == {"dyncheck::audio:PooledOverPadding::padding_invariance": "FAILED"}, run.text


AUDIO = """
import torch
from torch import nn


class Pooled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 4, stride=2)

    def frames(self, attention_mask):
        return (attention_mask.sum(-1) - 4) // 2 + 1  # frames wholly inside each row's samples

    def forward(self, input_values=None, attention_mask=None):
        frames = self.conv(input_values[:, None]).transpose(1, 2)
        valid = self.frames(attention_mask)
        if bool((valid < 1).any()):
            raise IndexError("a row with no frame")
        keep = torch.arange(frames.shape[1])[None, :] < valid[:, None]
        return (frames * keep[..., None]).sum(1) / valid[:, None]


class PooledOverPadding(Pooled):
    def frames(self, attention_mask):
        return (attention_mask.sum(-1) - 4) // 2 + 2  # BUG: one frame too many, over the padding
"""


ZERO_FRONT = """
import torch
from torch import nn

import dyncheck


class ConvFront(nn.Module):
    '''A first convolution over raw features, then a masked mean: right for zero padding.'''

    def __init__(self, pool_padding=False):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, kernel_size=3, padding=1)
        self.out = nn.Linear(4, 2)
        self.pool_padding = pool_padding

    def forward(self, x, lengths):  # x: [batch, time, 3]
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        if self.pool_padding:  # the bug: the mean over every padded step too
            return self.out(h.mean(1))
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return self.out((h * mask[..., None]).sum(1) / lengths[:, None].clamp(min=1))


declared = dyncheck.Spec(ConvFront, padding_value=0.0)
declared_for_x = dyncheck.Spec(ConvFront, padding_value={"x": 0.0})
buggy = dyncheck.Spec(ConvFront, init={"pool_padding": True})
declared_buggy = dyncheck.Spec(ConvFront, init={"pool_padding": True}, padding_value=0.0)
typo = dyncheck.Spec(ConvFront, padding_value={"xs": 0.0})
lengths_filled = dyncheck.Spec(ConvFront, padding_value={"x": 0.0, "lengths": 0})
"""


def test_a_model_right_only_for_zero_padding_says_so_and_passes_once_declared(dyncheck_run, pytester):
    pytester.makepyfile(front=ZERO_FRONT)
    run = dyncheck_run(
        *("--dyncheck", "front:ConvFront", "--dyncheck", "front:declared", "--dyncheck", "front:declared_for_x"), ONLY,
    )
    assert run.outcomes() == {
        "dyncheck::front:ConvFront::padding_invariance": "FAILED",
        "dyncheck::front:declared::padding_invariance": "PASSED",
        "dyncheck::front:declared_for_x::padding_invariance": "PASSED",
    }, run.text
    # Still a failure (the contract is the user's to declare), with the contract it needs.
    text = run.failure("front:ConvFront::padding_invariance")
    assert (
        "  With every padded step of x set to 0.0 nothing differs, here and with other values in the sequences: "
        "the model reads its padding, and is right only when the padding holds 0.0. If it is only ever given "
        "batches padded so (pad_sequence's default, a feature extractor's), declare it: "
        "Spec(padding_value=0.0).\n"
    ) in text


def test_no_zero_padding_hint_for_a_mean_over_the_padding(dyncheck_run, pytester):
    # Shrunk, a mean over every step agrees with zero padding when the sequence is zeros
    # too: the hint is given only when other values in the sequences agree as well.
    pytester.makepyfile(front=ZERO_FRONT)
    run = dyncheck_run("--dyncheck", "front:ConvFront", "--dyncheck", "front:buggy", ONLY)
    assert run.outcomes()["dyncheck::front:buggy::padding_invariance"] == "FAILED", run.text
    assert "nothing differs" in run.failure("front:ConvFront::padding_invariance")
    assert "nothing differs" not in run.failure("front:buggy::padding_invariance")


def test_a_declared_padding_value_hides_no_padding_bug(dyncheck_run, pytester):
    pytester.makepyfile(front=ZERO_FRONT)
    run = dyncheck_run("--dyncheck", "front:declared_buggy", ONLY)
    assert run.outcomes() == {"dyncheck::front:declared_buggy::padding_invariance": "FAILED"}, run.text
    text = run.failure("front:declared_buggy::padding_invariance")
    assert (
        "  (the padded steps of x were set to 0.0, as Spec(padding_value=...) declares, before the calls)\n"
    ) in text
    assert "nothing differs" not in text


def test_a_padding_value_for_an_input_with_no_padded_steps_is_a_note(dyncheck_run, pytester):
    pytester.makepyfile(front=ZERO_FRONT)
    run = dyncheck_run("--dyncheck", "front:lengths_filled", ONLY)
    assert run.outcomes() == {"dyncheck::front:lengths_filled::padding_invariance": "PASSED"}, run.text
    assert re.search(
        r"Spec\(padding_value=\.\.\.\) names lengths, which has no padded steps beside lengths: nothing set there "
        r"\(\d+ examples\)", run.text,
    ), run.text


def test_a_padding_value_for_an_entry_the_dict_of_inputs_lacks(dyncheck_run, pytester):
    pytester.makepyfile(entries="""
import dyncheck
from reference_models.dict_batch import DictBatchClassifier

typo = dyncheck.Spec(DictBatchClassifier, padding_value={"batch['tokns']": 0})
""")
    run = dyncheck_run("--dyncheck", "entries:typo")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "Spec(padding_value={\"batch['tokns']\": ...}) names batch['tokns'], but the dict of inputs batch holds "
        "'tokens', 'lengths'; did you mean 'tokens'?"
    ) in run.text, run.text
    assert "Traceback" not in run.text


def test_explain_gives_the_declared_padding_value(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.zero_padded:ZeroPaddedAudioEncoder", ONLY,
                       "--dyncheck-explain", "--dyncheck-max-examples=2")
    assert "    padding_value={'input_values': 0.0}," in run.text, run.text


def test_a_padding_value_for_an_argument_forward_does_not_take(dyncheck_run, pytester):
    pytester.makepyfile(front=ZERO_FRONT)
    run = dyncheck_run("--dyncheck", "front:typo")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "Spec(padding_value={'xs': ...}) names an argument ConvFront.forward does not take; did you mean 'x'? "
        "(it takes x, lengths)"
    ) in run.text
    assert "Traceback" not in run.text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zero", r"Spec\(padding_value='zero'\) must be a number for every padded input, e\.g\. padding_value=0\.0"),
        ({"x": "0"}, r"Spec\(padding_value=\{'x': '0'\}\) needs a number, e\.g\. \{'x': 0\.0\}"),
        ({"x.frames": 0}, r"Spec\(padding_value=\{'x\.frames': \.\.\.\}\) must be keyed by a forward argument"),
        ({"x[-1]": 0}, r"or a member of a tuple of inputs, e\.g\. \"batch\[0\]\""),
    ],
)
def test_a_padding_value_that_is_not_a_number_per_input(value, message):
    import dyncheck

    with pytest.raises(dyncheck.InvalidArgument, match=message):
        dyncheck.Spec(torch.nn.Linear, padding_value=value)


def test_the_declared_value_fills_each_rows_padding():
    import dataclasses

    target = resolve("reference_models.dict_batch:DictBatchClassifier")
    target = dataclasses.replace(target, spec=target.spec.replace(padding_value={"batch['tokens']": 7}))
    batch = {"tokens": torch.ones(3, 4, dtype=torch.long), "lengths": torch.tensor([4, 2, 3])}
    example = Example({"batch": batch}, 0, {"time": 4, "batch": 3})
    layout = _Layout(target, example, ("batch", "lengths"))
    assert layout.fill == {("batch", "tokens"): 7}
    assert layout.pad(example.args)["batch"]["tokens"].tolist() == [[1, 1, 1, 1], [1, 1, 7, 7], [1, 1, 1, 7]]
    assert layout.extended(layout.pad(example.args), torch.Generator())["batch"]["tokens"][:, 4:].eq(7).all()
    assert batch["tokens"].eq(1).all()  # the example itself is left as drawn
    # Without a declaration nothing is filled.
    plain = _Layout(resolve("reference_models.dict_batch:DictBatchClassifier"), example, ("batch", "lengths"))
    assert plain.fill == {} and plain.padded_slots() == [("batch", "tokens")]


PADDING_IDX = """
import torch
from torch import nn


class TextCNN(nn.Module):
    '''Token ids into an embedding with padding_idx, a convolution that reads the step past a
    sentence's end, then a masked mean: right for batches padded with that index.'''

    pad = 0

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(12, 4, padding_idx=self.pad)
        self.conv = nn.Conv1d(4, 5, kernel_size=3, padding=1)
        self.out = nn.Linear(5, 2)

    def forward(self, tokens, lengths):
        h = self.conv(self.embed(tokens).transpose(1, 2)).transpose(1, 2)
        mask = (torch.arange(tokens.shape[1])[None, :] < lengths[:, None])[..., None]
        return self.out((h * mask).sum(1) / lengths[:, None].clamp(min=1))


class OtherIndex(TextCNN):
    pad = 3


class MeanOverPadding(TextCNN):
    def forward(self, tokens, lengths):
        return self.out(self.conv(self.embed(tokens).transpose(1, 2)).mean(-1))  # BUG: every step


class Declared(OtherIndex):
    __dyncheck__ = {"padding_value": {"tokens": 3}}


class BagOfTokens(nn.Module):
    '''An EmbeddingBag's mean leaves its padding_idx out: right for batches padded with it.'''

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(12, 4, mode="mean", padding_idx=3)
        self.out = nn.Linear(4, 2)

    def forward(self, tokens, lengths):
        return self.out(self.bag(tokens)) * torch.log1p(lengths.float())[:, None]
"""


@pytest.mark.parametrize(
    ("name", "said", "declared"),
    [("TextCNN", "0", "0"), ("OtherIndex", "3", "3"), ("MeanOverPadding", None, None), ("BagOfTokens", "3", "3")],
)
def test_token_ids_padded_with_the_embeddings_padding_idx(dyncheck_run, pytester, name, said, declared):
    pytester.makepyfile(text=PADDING_IDX)
    run = dyncheck_run("--dyncheck", f"text:{name}", ONLY)
    assert run.outcomes() == {f"dyncheck::text:{name}::padding_invariance": "FAILED"}, run.text
    text = run.failure("::padding_invariance")
    if said is None:
        assert "nothing differs" not in text
    else:
        assert (
            f"  With every padded step of tokens set to {said} (the padding_idx of the model's embedding) nothing "
            f"differs, here and with other values in the sequences: the model reads its padding, and is right only "
            f"when the padding holds {said}. If it is only ever given batches padded so (pad_sequence's default, a "
            f"tokenizer's pad token), declare it: Spec(padding_value={declared}).\n"
        ) in text


def test_token_ids_declared_padded_with_the_padding_idx_pass(dyncheck_run, pytester):
    pytester.makepyfile(text=PADDING_IDX)
    run = dyncheck_run("--dyncheck", "text:Declared", ONLY)
    assert run.outcomes() == {"dyncheck::text:Declared::padding_invariance": "PASSED"}, run.text


PACKED_STATE = """
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Tagger(nn.Module):
    # A packed LSTM whose state (h_0, c_0) the caller hands in.
    def __init__(self, vocab=30, size=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, size)
        self.lstm = nn.LSTM(size, size, batch_first=True)
        self.head = nn.Linear(size, 5)

    def forward(self, tokens, lengths, hidden):
        hidden = self.start(hidden)
        packed = pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.lstm(packed, hidden)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return self.head(out), hidden

    def start(self, hidden):
        return hidden


class Averaged(Tagger):
    def start(self, hidden):
        h, c = hidden
        return h, c.mean(1, keepdim=True).expand_as(c).contiguous()  # mixes the rows' cell states
"""


def test_a_tuple_of_inputs_is_cut_member_by_member(dyncheck_run, pytester):
    # Each row alone gets its own h_0 and c_0 (batch second); before, the tuple went whole.
    pytester.makepyfile(packed_state=PACKED_STATE)
    run = dyncheck_run(
        "--dyncheck", "packed_state:Tagger", "--dyncheck", "packed_state:Averaged", ONLY, "--dyncheck-max-examples=20"
    )
    assert run.outcomes() == {
        "dyncheck::packed_state:Tagger::padding_invariance": "PASSED",
        "dyncheck::packed_state:Averaged::padding_invariance": "FAILED",
    }, run.text
    assert "gives a different output[0] in the batch than alone" in run.failure("Averaged::padding_invariance")


def test_layout_of_a_tuple_of_inputs_member_by_member():
    from dyncheck.invariants.padding_invariance import slot_text, slots

    target = resolve("reference_models.word_lm:WordLanguageModel")
    assert [slot_text(slot) for slot, _ in slots(target)] == ["input", "hidden", "hidden[0]", "hidden[1]"]
    h, c = torch.zeros(2, 3, 12), torch.ones(2, 3, 12)
    example = Example({"input": torch.zeros(4, 3, dtype=torch.long), "lengths": None, "hidden": (h, c)}, 0, {})
    from dyncheck.invariants.padding_invariance import _with, slot_value

    assert slot_value(example.args, ("hidden", 1)) is c
    assert slot_value(example.args, ("hidden", 2)) is None
    other = torch.full((2, 3, 12), 2.0)
    changed = _with(example.args, {("hidden", 1): other})
    assert changed["hidden"][1] is other and changed["hidden"][0] is h
    assert example.args["hidden"][1] is c  # the example's own tuple and dict are left as they were
    # a tuple inside a dict of inputs, and a dict keyed by ints, each by its own kind
    nested = {"batch": {"state": (h, c), 0: h}}
    changed = _with(nested, {("batch", ("state", 0)): other, ("batch", 0): other})
    assert changed["batch"]["state"] == (other, c) and changed["batch"][0] is other
    assert nested["batch"]["state"][0] is h and nested["batch"][0] is h


def test_lengths_in_a_tuple_of_inputs_keep_their_strategys_options(pytester):
    # Spec(inputs={"batch": tuples(ids, sequence_lengths(pad_to_longest=True))}): the lengths'
    # options are read from the tuple's member.
    from dyncheck.invariants.padding_invariance import _strategy, lengths_argument, padded_to_longest

    pytester.makepyfile(
        paired="""
import torch
import torch.nn as nn
from hypothesis import strategies as st
import dyncheck
from dyncheck.strategies import sequence_lengths, tensors

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, batch):
        ids, lengths = batch
        return self.embed(ids).sum(1) / lengths[:, None]

spec = dyncheck.Spec(Model, inputs={"batch": st.tuples(
    tensors(shape=("batch", "time"), dtype=torch.int64, max_value=9), sequence_lengths(pad_to_longest=True))},
    lengths="batch",
)
"""
    )
    pytester.syspathinsert()
    target = resolve("paired:spec")
    slot = ("batch", 1)
    assert strategy_arguments(_strategy(target, slot)).get("pad_to_longest") is True
    assert padded_to_longest(target) or lengths_argument(target) != slot


TUPLE_MEMBERS = """
import torch
from hypothesis import strategies as st
from torch import nn

import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class Model(nn.Module):
    '''Sums every step and divides by the lengths: right only where the padded steps hold zeros.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, batch):
        x, n = batch
        return self.fc(x.sum(1) / n[:, None])


# Lengths drawn by a mapped strategy are not found by how they are drawn: the Spec names them.
BATCH = st.tuples(tensors(shape=("batch", "time", 8)), sequence_lengths().map(lambda n: n))
zeros = dyncheck.Spec(Model, inputs={"batch": BATCH}, lengths="batch[1]", padding_value={"batch[0]": 0.0})
unfilled = dyncheck.Spec(Model, inputs={"batch": BATCH}, lengths="batch[1]")
third = dyncheck.Spec(Model, inputs={"batch": BATCH}, lengths="batch[2]")
undrawn = dyncheck.Spec(Model, inputs={"batch": tensors(shape=("batch", 8))}, padding_value={"batch[0]": 0.0})
mapped = dyncheck.Spec(Model, inputs={"batch": BATCH.map(lambda pair: pair)}, lengths="batch[1]")
keyed = dyncheck.Spec(Model, inputs={"batch": st.fixed_dictionaries({"x": tensors(shape=("batch", 8))})},
                      padding_value={"batch[0]": 0.0})
"""


def test_members_of_a_tuple_of_inputs_named_in_the_spec(dyncheck_run, pytester):
    # Spec(lengths="batch[1]") and Spec(padding_value={"batch[0]": 0.0}) name tuple members as
    # forward unpacks them; without the padding value the model's sum over padding is caught.
    pytester.makepyfile(members=TUPLE_MEMBERS)
    run = dyncheck_run("--dyncheck", "members:zeros", "--dyncheck", "members:unfilled", ONLY,
                       "--dyncheck-max-examples=20")
    assert run.outcomes() == {
        "dyncheck::members:zeros::padding_invariance": "PASSED",
        "dyncheck::members:unfilled::padding_invariance": "FAILED",
    }, run.text
    assert "in the batch than alone" in run.failure("members:unfilled::padding_invariance")
    for name, message in (
        ("third", "Spec(lengths='batch[2]') names batch[2], but the tuple of inputs batch has 2 members "
                  "(batch[0], batch[1])"),
        ("undrawn", "Spec(padding_value={'batch[0]': ...}) names batch[0], but Spec(inputs={'batch': ...}) is not "
                    "drawn by hypothesis.strategies.tuples, whose members dyncheck reads: draw the tuple with it"),
        ("mapped", "Spec(lengths='batch[1]') names batch[1], but batch is drawn by hypothesis.strategies.tuples(...) "
                   "and then mapped, which may change its members: draw the tuple without .map(...)"),
        ("keyed", "Spec(padding_value={'batch[0]': ...}) names batch[0], but the dict of inputs batch holds 'x'"),
    ):
        run = dyncheck_run("--dyncheck", f"members:{name}")
        assert run.ret == pytest.ExitCode.USAGE_ERROR
        assert message in run.text, run.text
        assert "Traceback" not in run.text


def test_a_tuple_member_is_a_slot_of_the_spec():
    from dyncheck.spec import lengths_slot, padding_slot

    assert padding_slot("batch[0]") == ("batch", (0,))
    assert padding_slot("batch['state'][1]") == ("batch", ("state", 1))
    assert lengths_slot("batch[1]") == ("batch", 1)
    assert padding_slot("batch[-1]") is None and padding_slot("batch[n]") is None
    assert padding_slot("batch[00]") is None  # one spelling per member


def _seq2seq_check(args: dict, dims: dict, **fields) -> None:
    """padding_invariance on one example of the packed seq2seq model."""
    from dyncheck.invariants import Context
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.packed_seq2seq import PackedSeq2Seq

    context = Context(resolve_spec(Spec(PackedSeq2Seq, **fields)))
    PaddingInvariance().check(context, Example(args, 0, dims))


def test_a_row_whose_outputs_do_not_depend_on_the_parameters_alone_is_left_out_of_the_gradients():
    # Alone, each row is trimmed to one step: a one-token target decodes nothing, and the
    # row alone has no gradient to add to the others'. Before, the sum over no rows was 0.
    args = {"src": torch.tensor([[5, 7], [0, 0]]), "src_len": torch.tensor([1, 1]), "trg": torch.tensor([[3, 3], [4, 4]])}
    _seq2seq_check(args, {"time": 2, "batch": 2})


class _GradientLeak(__import__("reference_models.packed_seq2seq", fromlist=["PackedSeq2Seq"]).PackedSeq2Seq):
    """A padding leak in gradients only: the source's last step enters the state as s - s.detach()."""

    def __init__(self):
        super().__init__(teacher_forcing=1.0)

    def forward(self, src, src_len, trg):
        memory, hidden = self.encoder(src, src_len)
        step = self.encoder.embedding(src[-1])
        hidden = hidden + (step - step.detach())
        mask = (src != 0).transpose(0, 1)
        scores = []
        for t in range(1, trg.size(0)):
            score, hidden = self.decoder(trg[t - 1], hidden, memory, mask)
            scores.append(score)
        return torch.stack(scores) if scores else memory.new_zeros(0, trg.size(1), 20)


@pytest.mark.parametrize("first", [1, 2])
def test_the_other_rows_gradients_are_still_compared_when_one_row_alone_has_none(first):
    # Row 0 alone of length 1 decodes nothing (first=1; with first=2 it decodes one step, the
    # control); row 1 alone still shows the leak (its batch gradient reads the padding's
    # embedding, its own does not).
    from dyncheck.invariants import Context
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    src = torch.tensor([[5, 7], [6 if first == 2 else 0, 8], [0, 9], [0, 0]])
    example = Example({"src": src, "src_len": torch.tensor([first, 3]), "trg": torch.tensor([[3, 3], [4, 4], [5, 5], [6, 6]])},
                      0, {"time": 4, "batch": 2})
    context = Context(resolve_spec(Spec(_GradientLeak, padding_value=0)))
    with pytest.raises(InvariantViolation, match="gradient"):
        PaddingInvariance().check(context, example)


@pytest.mark.parametrize("value", [0, 0.0, {"src": 0, "trg": 0}])
def test_token_ids_at_the_declared_pad_token_are_not_taken_for_padding(value):
    # The model finds its padding by value (src != 0) and declares padding_value=0: a
    # sentence's own tokens are never the pad token, so those drawn at 0 move to 1.
    args = {"src": torch.tensor([[0], [0]]), "src_len": torch.tensor([2]), "trg": torch.tensor([[0], [0]])}
    _seq2seq_check(args, {"time": 2, "batch": 1}, padding_value=value)


def test_padding_found_by_value_gets_the_padding_value_hint(dyncheck_run, pytester):
    # Without padding_value, the shrunk example's tokens are the pad token themselves; the
    # hint still says which padding makes the model right (those tokens moved to the next id).
    pytester.makepyfile(
        undeclared="""
        from reference_models.packed_seq2seq import PackedSeq2Seq

        class Model(PackedSeq2Seq):
            __dyncheck__ = {}
        """
    )
    run = dyncheck_run("--dyncheck", "undeclared:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    assert run.outcomes() == {"dyncheck::undeclared:Model::padding_invariance": "FAILED"}, run.text
    assert (
        "With every padded step of src set to 0, trg set to 0 nothing differs, here and with other values in the "
        "sequences: the model reads its padding, and is right only when the padding holds 0."
    ) in run.text, run.text



def test_a_gradient_leak_no_row_alone_shows_is_caught(dyncheck_run, pytester):
    # The values never change; once a row of the batch is padded, every output's gradient
    # picks up w. A row alone is not padded and has no gradient at all: zeros, against the
    # batch's.
    pytester.makepyfile(
        leak_all="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(4, 4).requires_grad_(False)
                self.w = nn.Parameter(torch.ones(4))

            def forward(self, x, lengths):
                h = self.proj(x)
                mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
                out = h * mask[..., None]
                if not bool(mask.all()):
                    s = self.w.sum()
                    out = out + (s - s.detach())
                return out
        """
    )
    run = dyncheck_run("--dyncheck", "leak_all:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=30")
    assert run.outcomes() == {"dyncheck::leak_all:Model::padding_invariance": "FAILED"}, run.text
    assert "w.grad:" in run.text, run.text


DENSE_GRAPH = '''
import torch
from torch import nn

from dyncheck.strategies import attention_masks, tensors


class Model(nn.Module):
    """A dense graph convolution over padded graphs: nodes [batch, nodes, 5], an adjacency
    [batch, nodes, nodes] and a mask of the real nodes; the readout averages the real ones."""

    __dyncheck__ = {"inputs": {
        "x": tensors(shape=("batch", "time", 5)),
        "adj": tensors(shape=("batch", "time", "time"), min_value=0.0, max_value=1.0),
        "mask": attention_masks(dtype=torch.bool),
    }}

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 6)
        self.head = nn.Linear(6, 3)

    def propagate(self, h, adj, mask):
        keep = mask.unsqueeze(-1).to(h.dtype)
        adj = adj * keep * keep.transpose(1, 2) + torch.diag_embed(mask.to(h.dtype))
        return adj @ h / adj.sum(-1, keepdim=True).clamp(min=1)

    def pool(self, h, mask):
        keep = mask.unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / keep.sum(1)

    def forward(self, x, adj, mask):
        return self.head(self.pool(torch.relu(self.lin(self.propagate(x, adj, mask))), mask))


class Unmasked(Model):
    def pool(self, h, mask):
        return h.mean(1)  # the bug: padded nodes, relu(bias) at least, averaged in
'''


def test_every_axis_named_time_is_trimmed_and_padded(dyncheck_run, pytester):
    # The adjacency has two node axes: a graph alone is cut to its nodes on both, and the
    # extra padding nodes are added on both (before, one axis: every example raised).
    pytester.makepyfile(graphs=DENSE_GRAPH)
    run = dyncheck_run("--dyncheck", "graphs:Model", "--dyncheck", "graphs:Unmasked", ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {
        "dyncheck::graphs:Model::padding_invariance": "PASSED",
        "dyncheck::graphs:Unmasked::padding_invariance": "FAILED",
    }, run.text
    assert all(re.fullmatch(ROW_ALONE, f) or re.fullmatch(EXTRA, f) for f in findings(run.failure("graphs:Unmasked::padding_invariance"))), run.text


SQUARE_LM = '''
import torch
from torch import nn

from dyncheck.strategies import attention_masks, tensors


class Model(nn.Module):
    """Per-token logits [batch, time, vocab], drawn with as many tokens as rows: a row of
    length 1 alone gives [1, 1, vocab], as a pair of a CLIP-style [batch, batch] output."""

    __dyncheck__ = {
        "inputs": {
            "input_ids": tensors(shape=("batch", "time"), dtype=torch.int64, min_value=0, max_value=9),
            "attention_mask": attention_masks(),
        },
        "dims": {"batch": (2, 2), "time": (2, 2)},
    }

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 10)

    def forward(self, input_ids, attention_mask):
        return self.head(torch.tanh(self.embed(input_ids)))
'''


def test_an_output_with_as_many_steps_as_rows_is_not_read_as_pairwise(dyncheck_run, pytester):
    # Every row alone must look like a pair, and the extra padding leave the output's axes:
    # one row of length 1 ([1, 1, vocab]) made the whole output uncompared.
    pytester.makepyfile(squarelm=SQUARE_LM)
    run = dyncheck_run("--dyncheck", "squarelm:Model", ONLY, "-v", "--dyncheck-seed=3", "--dyncheck-max-examples=20")
    assert run.outcomes() == {"dyncheck::squarelm:Model::padding_invariance": "PASSED"}, run.text
    assert "where a row alone has size 1" not in run.text, run.text
    assert re.search(r"padding_invariance\s+passed\s+20 examples", run.text), run.text


class _OptionalLengths(torch.nn.Module):
    """SpeechBrain's ECAPA_TDNN.forward(x, lengths=None): frames channels-first into a
    convolution, lengths optional."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 6, 3, padding=1)

    def forward(self, x, lengths=None):
        h = self.conv(x)
        if lengths is None:
            return h.mean(-1)
        mask = torch.arange(h.shape[-1])[None] < lengths[:, None]
        return (h * mask[:, None]).sum(-1) / lengths[:, None]


def test_lengths_left_at_their_default_are_said_so():
    # The skip said "forward takes no lengths argument" of a forward that takes one.
    from dyncheck import Spec
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.target import resolve_spec

    assert PaddingInvariance().applies_to(resolve_spec(Spec(_OptionalLengths))) == (
        "forward's lengths is left at its default None, so no batch is drawn padded; give it in "
        "Spec(inputs={'lengths': ...}) with the padded input beside it to check padding"
    )


NOISY_POOL = """
import torch
from torch import nn


class Model(nn.Module):
    '''A mean over each row's steps with noise added in eval mode too (SpeechBrain's
    StatisticsPooling): a row alone draws other numbers than in the batch.'''

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)

    def forward(self, x, lengths):
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        weights = valid.unsqueeze(-1).to(x.dtype)
        mean = (self.proj(x) * weights).sum(1) / weights.sum(1)
        return mean + 1e-3 * torch.randn_like(mean)
"""


def test_a_row_that_draws_other_noise_alone_names_the_noise(dyncheck_run, pytester):
    pytester.makepyfile(noisy_pool=NOISY_POOL)
    run = dyncheck_run("--dyncheck", "noisy_pool:Model", ONLY)
    assert run.outcomes() == {"dyncheck::noisy_pool:Model::padding_invariance": "FAILED"}, run.text
    assert "The model draws random numbers in eval mode (another seed changes the batch's output)" in run.text, run.text
    assert "the difference may be that noise, not the padding" in run.text


TWO_LENGTHS = """
import torch
from torch import nn
from hypothesis import strategies as st

import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class EncDec(nn.Module):
    # pytorch-forecasting's TFT: masks built from each lengths' longest, over two axes
    def __init__(self, leak=False):
        super().__init__()
        self.leak = leak
        self.enc, self.dec, self.out = nn.Linear(3, 8), nn.Linear(3, 8), nn.Linear(8, 2)

    def forward(self, x):
        el, dl = x["encoder_lengths"], x["decoder_lengths"]
        enc_pad = torch.arange(int(el.max()))[None, :] >= el[:, None]
        dec_pad = torch.arange(int(dl.max()))[None, :] >= dl[:, None]
        h, q = self.enc(x["encoder_cont"]), self.dec(x["decoder_cont"])
        if self.leak:  # the decoder's padded steps summed into every step
            q = q + q.mean(1, keepdim=True)
        scores = (q @ h.transpose(1, 2)).masked_fill(enc_pad[:, None, :], float("-inf"))
        return self.out((scores.softmax(-1) @ h).masked_fill(dec_pad[:, :, None], 0.0))


def batches():
    return st.fixed_dictionaries({
        "encoder_cont": tensors(shape=("batch", "enc", 3), min_value=-5.0, max_value=5.0),
        "encoder_lengths": sequence_lengths(batch_size="batch", max_length="enc", pad_to_longest=True),
        "decoder_cont": tensors(shape=("batch", "dec", 3), min_value=-5.0, max_value=5.0),
        "decoder_lengths": sequence_lengths(batch_size="batch", max_length="dec", pad_to_longest=True),
    })


DIMS = {"batch": (1, 4), "enc": (1, 5), "dec": (1, 3)}
correct = dyncheck.Spec(EncDec, inputs={"x": batches()}, dims=DIMS, lengths="x['encoder_lengths']")
leaky = dyncheck.Spec(lambda: EncDec(leak=True), inputs={"x": batches()}, dims=DIMS, lengths="x['encoder_lengths']")
"""


def test_a_second_lengths_padded_to_its_longest_is_kept_by_a_row_alone(dyncheck_run, pytester, verdicts_only):
    # pytorch-forecasting pads its encoder and decoder steps each to their longest; only one
    # lengths can be declared, and a row alone kept the other axis padded, with lengths
    # shorter than it: batch_invariance and padding_invariance failed a correct model. A row
    # alone now has its own steps on both axes; padding the decoder reads is still found.
    pytester.makepyfile(two_lengths=TWO_LENGTHS)
    checks = "--dyncheck-invariants=batch_invariance,padding_invariance"
    run = dyncheck_run("--dyncheck", "two_lengths:correct", checks, "--dyncheck-max-examples=30")
    assert run.ret == 0, run.text
    run = dyncheck_run("--dyncheck", "two_lengths:leaky", checks, "--dyncheck-max-examples=30")
    assert run.outcomes()["dyncheck::two_lengths:leaky::padding_invariance"] == "FAILED", run.text


OPTIONAL_LENGTHS = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class Tagger(nn.Module):
    # OpenNMT-py's RNNEncoder.forward(src, src_len=None): packs when given the lengths
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 6, batch_first=True)

    def forward(self, src, src_len=None):
        x = self.emb(src)
        if src_len is not None:
            x = pack_padded_sequence(x, src_len.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(x)
        if src_len is not None:
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out


SRC = tensors(shape=("batch", "time"), dtype=torch.long, max_value=19)
named = dyncheck.Spec(Tagger, inputs={"src": SRC}, lengths="src_len")
drawn = dyncheck.Spec(Tagger, inputs={"src": SRC, "src_len": sequence_lengths()})
"""


@pytest.mark.parametrize("spec", ["named", "drawn"])
def test_optional_lengths_a_spec_names_or_draws_are_the_lengths(dyncheck_run, pytester, spec):
    # Spec(lengths="src_len") on an argument defaulting to None left it None, and
    # padding_invariance skipped asking for Spec(lengths=...); so did an argument drawn by
    # sequence_lengths() under a name not like lengths.
    pytester.makepyfile(optional_lengths=OPTIONAL_LENGTHS)
    run = dyncheck_run("--dyncheck", f"optional_lengths:{spec}", "--dyncheck-invariants=padding_invariance",
                       "--dyncheck-max-examples=10")
    assert run.outcomes() == {f"dyncheck::optional_lengths:{spec}::padding_invariance": "PASSED"}, run.text


COUNT_BESIDE = """
import torch
from torch import nn

import dyncheck
from dyncheck import strategies as dst


class Pooled(nn.Module):
    # lengths pad x; k, a count per sample drawn by sequence_lengths() for its range, is not them
    def __init__(self, leak=False):
        super().__init__()
        self.leak = leak
        self.proj = nn.Linear(8, 4)

    def forward(self, x, k, lengths):
        h = self.proj(x)
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        score = h.sum(-1).masked_fill(~mask, float("-inf"))
        out = []
        for i in range(x.shape[0]):
            kk = min(int(k[i]), int(lengths[i]))
            picked = torch.arange(x.shape[1]) if self.leak else score[i].topk(kk).indices
            out.append(h[i, picked].mean(0))
        return torch.stack(out)


def spec(leak):
    return dyncheck.Spec(lambda: Pooled(leak), inputs={
        "x": dst.tensors(shape=("batch", "time", 8)),
        "k": dst.sequence_lengths(max_length="slots"),
        "lengths": dst.sequence_lengths(),
    })


correct, leaky = spec(False), spec(True)
"""


def test_lengths_named_so_come_before_an_argument_only_drawn_like_them(dyncheck_run, pytester, verdicts_only):
    # An argument drawn by sequence_lengths() counts as the lengths only where none is named
    # like them and it is the only one so drawn: a count per sample beside `lengths` was taken
    # for them, and a correct model failed while one pooling its padding passed.
    pytester.makepyfile(count_beside=COUNT_BESIDE)
    checks = "--dyncheck-invariants=padding_invariance"
    run = dyncheck_run("--dyncheck", "count_beside:correct", checks, "--dyncheck-max-examples=30")
    assert run.ret == 0, run.text
    run = dyncheck_run("--dyncheck", "count_beside:leaky", checks, "--dyncheck-max-examples=30")
    assert run.outcomes() == {"dyncheck::count_beside:leaky::padding_invariance": "FAILED"}, run.text


def test_selections_break_ties_by_position_whatever_the_length():
    from dyncheck.ties import ConsistentTies

    inf = float("inf")
    padded, alone = torch.tensor([[0.0, 0, 0, -inf, -inf]]), torch.tensor([[0.0, 0, 0]])
    # torch's own order among the three equal scores changes with the length ...
    assert padded.topk(2).indices.tolist() != alone.topk(2).indices.tolist()
    for last, first_two in ((False, [0, 1]), (True, [2, 1])):
        with ConsistentTies(last) as ties:
            assert padded.topk(2).indices.tolist() == alone.topk(2).indices.tolist() == [first_two]
            assert torch.topk(padded, 2, dim=1).indices.tolist() == [first_two]
            assert padded.argmax(1).tolist() == alone.argmax(dim=1).tolist() == [first_two[0]]
            assert torch.max(padded, 1).indices.tolist() == [first_two[0]]
            assert padded.sort(1, True).indices[0, :3].tolist() == torch.argsort(alone, descending=True)[0].tolist()
            # elementwise max and the max of every value pick no index: left as they are
            assert torch.max(padded, alone[:, :1]).shape == (1, 5) and alone.max().item() == 0.0
        assert ties.used == 8
    # ... and without ties every pick, value and gradient is the op's own.
    x = torch.randn(4, 7, requires_grad=True)
    with ConsistentTies(last=True):
        top, ordered, best = x.topk(3), x.sort(descending=True), x.max(1, keepdim=True)
        (top.values.sum() + best.values.sum()).backward()
    assert torch.equal(top.indices, x.topk(3).indices) and torch.equal(ordered.indices, x.sort(descending=True).indices)
    assert torch.equal(best.indices, x.max(1, keepdim=True).indices)
    expected = torch.zeros(4, 7).scatter(1, x.topk(3).indices, 1.0).scatter_add(1, best.indices, torch.ones(4, 1))
    assert torch.equal(x.grad, expected)


def test_a_tie_broken_in_another_order_with_the_padding_is_not_a_finding(dyncheck_run):
    # TopKTokenRouter sends each row's top-2 tokens through a heavy branch, padding at -inf.
    # On tied scores topk picked positions 1 and 2 of a padded row and 0 and 1 of the row
    # alone: reported as reading past the lengths at every seed, before ties were broken
    # alike. A tie of a valid token with padding (buggy/zero_masked_router.py) stays a
    # finding: tests/test_reference_models.py.
    run = dyncheck_run(
        "--dyncheck", "reference_models.token_router:TopKTokenRouter", "--dyncheck-invariants=padding_invariance",
        "--dyncheck-seed=1", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {"dyncheck::reference_models.token_router:TopKTokenRouter::padding_invariance": "PASSED"}, run.text
    assert re.search(r"on \d+ examples? the model's top-k, sort or argmax picked among equal values", run.text), run.text


class _MaskNoneDiffers(torch.nn.Module):
    """forward(x, mask=None) whose mask=None is not an all-True mask: without one it pads
    to a multiple of 4 itself and averages the zeros in (local-attention's autopad)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x, mask=None):
        h = self.proj(x)
        pad = (-h.shape[1]) % 4
        h = torch.nn.functional.pad(h, (0, 0, 0, pad))
        if mask is None:
            return h.mean(1)
        m = torch.nn.functional.pad(mask, (0, pad), value=False).unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1).clamp(min=1)


def test_a_mask_left_at_its_default_says_why_it_was_not_drawn():
    # The skip said "no attention mask drawn by attention_masks()" of a forward that takes one.
    from dyncheck import Spec
    from dyncheck.invariants.padding_invariance import PaddingInvariance
    from dyncheck.target import resolve_spec

    target = resolve_spec(Spec(_MaskNoneDiffers))
    assert "mask" not in target.spec.inputs
    assert PaddingInvariance().applies_to(target) == (
        "forward's mask is left at its default None: a call with a mask of all True gave other outputs than a call "
        "without one (x of 5 steps), so it was not read as a padding mask; if it marks the padding of a batch, give "
        "it in Spec(inputs={'mask': attention_masks(...)}) to check padding"
    )


SINK_ROUTER = """
import torch
from torch import nn


class Model(nn.Module):
    '''buggy/zero_masked_router's bug (padding scored 0, not -inf) with a learned sink token
    appended after the padding, k=1: the selection's last position is no padding step.'''

    def __init__(self, dim=8):
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)
        self.sink = nn.Parameter(torch.zeros(1, 1, dim))
        self.light = nn.Linear(dim, dim)
        self.heavy = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b = x.shape[0]
        h = torch.cat([x, self.sink.expand(b, 1, -1)], 1)
        scores = torch.relu(self.score(h).squeeze(-1))
        if mask is not None:
            m = torch.cat([mask, mask.new_ones(b, 1)], 1)
            scores = scores.masked_fill(~m, 0.0)
        picked = scores.topk(1, dim=-1).indices
        chosen = torch.zeros_like(scores).scatter(1, picked, 1.0)[:, :-1]
        return self.light(x) + self.heavy(x) * chosen.unsqueeze(-1)
"""


def test_a_tie_with_padding_is_a_finding_when_the_selection_is_not_along_the_steps(dyncheck_run, pytester):
    # Broken first position first the valid step wins, last position first the sink: the
    # rows agreed both ways, while torch's own topk picked a padding step in the middle.
    # A selection over another axis than the padded steps (a token appended) is not
    # vouched for; nor is one that, ties broken last first, picks padding over a valid step.
    pytester.makepyfile(sink_router=SINK_ROUTER)
    run = dyncheck_run("--dyncheck", "sink_router:Model", "--dyncheck-invariants=padding_invariance", "--dyncheck-seed=1",
                       "--dyncheck-max-examples=20")
    assert run.outcomes() == {"dyncheck::sink_router:Model::padding_invariance": "FAILED"}, run.text


def test_an_axis_a_row_alone_keeps_at_the_batch_size_is_not_the_batch_axis():
    # flair's tagger without a CRF: every row's valid steps concatenated, [sum(lengths), tags],
    # its 4 tags the batch's size. Taken for the batch, that axis made the concatenated steps
    # "time", which did not follow the padded length: a false alarm on a correct model.
    from dyncheck.invariants.padding_invariance import _batch_axis

    rows_alone = [torch.zeros(2, 4)] * 4
    assert _batch_axis(torch.zeros(8, 4), 4, rows_alone, torch.zeros(8, 4)) is None
    # a [batch, tags] output whose rows alone are [1, tags], and one with no rows alone to ask
    assert _batch_axis(torch.zeros(4, 4), 4, [torch.zeros(1, 4)] * 4, torch.zeros(4, 4)) == 0
    assert _batch_axis(torch.zeros(8, 4), 4) == 1


def test_float32_rounding_of_a_model_without_float64_is_not_a_finding(dyncheck_run):
    # Compared in float32 (the model refuses float64), a masked recurrence's gradients at
    # inputs in the hundreds differed by rounding between the batch and the longer padded
    # batch: reported as reading the padding. Two paddings of other values give the batch
    # bitwise the same gradients: the padding reaches nothing.
    target = "reference_models.float32_recurrence:Float32Recurrence"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=padding_invariance", "--dyncheck-seed=11",
                       "--dyncheck-max-examples=20", "-v")
    assert run.outcomes() == {f"dyncheck::{target}::padding_invariance": "PASSED"}, run.text
    assert "differed by rounding only on" in run.text, run.text


def test_a_declared_padding_value_holds_in_every_check(dyncheck_run, pytester):
    # ESM finds its padding by value (tokens == padding_idx) and averages over the rest. With
    # Spec(padding_value=1) declared, only padding_invariance kept the pad id out of a row's
    # tokens: finite and grad_isolation reported the NaN of a row made only of padding.
    pytester.makepyfile(by_value="""
        import torch
        from torch import nn
        import dyncheck

        class Model(nn.Module):
            PAD = 1

            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(10, 4, padding_idx=self.PAD)
                self.fc = nn.Linear(4, 2)

            def forward(self, tokens, lengths):
                pad = torch.arange(tokens.size(1))[None, :] >= lengths[:, None]
                tokens = tokens.masked_fill(pad, self.PAD)
                keep = (tokens != self.PAD).unsqueeze(-1).float()
                return self.fc((self.emb(tokens) * keep).sum(1) / keep.sum(1))

        spec = dyncheck.Spec(Model, padding_value=1)
        """)
    run = dyncheck_run("--dyncheck", "by_value:spec", "--dyncheck-invariants=finite,grad_isolation,padding_invariance",
                       "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_a_declared_padding_value_leaves_fractions_of_the_length_alone(dyncheck_run, pytester):
    # Fractions of the padded length (SpeechBrain's wav_lens) not drawn as relative lengths
    # read as no steps: every row was set to the padding value, and finite reported NaN.
    pytester.makepyfile(fraction_lengths="""
        import torch
        from torch import nn
        from dyncheck import Spec
        from dyncheck.strategies import tensors

        class Model(nn.Module):
            __dyncheck__ = Spec(
                inputs={
                    "feats": tensors(shape=("batch", "time", 4), min_value=1.0, max_value=2.0),
                    "wav_lens": tensors(shape=("batch",), min_value=0.3, max_value=1.0),
                },
                lengths="wav_lens",
                padding_value=0.0,
            )

            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 3)

            def forward(self, feats, wav_lens):
                steps = (wav_lens * feats.shape[1]).round().clamp(min=1)
                mask = (torch.arange(feats.shape[1])[None] < steps[:, None]).to(feats.dtype)[..., None]
                return self.lin(feats / (feats * mask).sum(1, keepdim=True)) * mask
        """)
    run = dyncheck_run("--dyncheck", "fraction_lengths:Model", "--dyncheck-invariants=finite,grad_isolation",
                       "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_padding_found_by_value_alone_keeps_the_pad_id_out_and_names_the_route(dyncheck_run, pytester):
    # ESM: no lengths, no mask, the padding found by tokens == pad. Declared, the pad id was
    # still drawn as tokens (a row of it attends to no key: NaN), and the skip named lengths.
    pytester.makepyfile(by_value_only="""
        from torch import nn
        import dyncheck

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(10, 8, padding_idx=1)
                self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
                self.out = nn.Linear(8, 10)

            def forward(self, tokens):
                x = self.emb(tokens)
                h, _ = self.attn(x, x, x, key_padding_mask=tokens.eq(1))
                return self.out(h)

        spec = dyncheck.Spec(Model, padding_value=1)
        """)
    run = dyncheck_run("--dyncheck", "by_value_only:spec", "--dyncheck-invariants=finite,padding_invariance",
                       "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    assert run.outcomes() == {
        "dyncheck::by_value_only:spec::finite": "PASSED", "dyncheck::by_value_only:spec::padding_invariance": "SKIPPED",
    }, run.text
    assert run.skip_reason("dyncheck::by_value_only:spec::padding_invariance").startswith(
        "forward takes no lengths and no attention mask, only padding found by value (Spec(padding_value=1)): "
        "padding_invariance needs each row's length to pad and trim by; check a wrapper"
    )


def test_the_padding_skip_never_advises_a_mask_the_model_refused_or_a_kept_control(dyncheck_run, pytester):
    # torchtune's mask is [b, s, s]: a [batch, time] mask raised, and the skip advised one,
    # which crashed every check when followed. An optional mode kept at its default is no
    # padding argument at all.
    pytester.makepyfile(kept="""
        from torch import nn

        class SquareMask(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.out = nn.Embedding(10, 8), nn.Linear(8, 10)

            def forward(self, tokens, mask=None):
                h = self.emb(tokens)
                scores = h @ h.transpose(1, 2)
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                return self.out(scores.softmax(-1) @ h)

        class Modes(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.out = nn.Embedding(10, 8), nn.Linear(8, 10)

            def forward(self, tokens, mode="tensor", targets=None):
                out = self.out(self.emb(tokens))
                return (out - targets).mean() if mode == "loss" else out
        """)
    for target, reason in (
        ("kept:SquareMask", "forward's mask is left at its default None: a call with a mask of all True raised (tokens "
                            "of 5 steps), so it was not read as a padding mask; padding_invariance needs lengths or a "
                            "[batch, time] padding mask, and mask takes neither"),
        ("kept:Modes", "forward takes no lengths argument"),
    ):
        run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=padding_invariance", "--dyncheck-max-examples=5")
        assert run.skip_reason(f"dyncheck::{target}::padding_invariance").startswith(reason), run.text


def test_a_class_id_beside_tokens_padded_by_value_keeps_its_whole_range(dyncheck_run, pytester):
    # Only an input with steps holds padding: a class id of 0 is no pad token, and a log of
    # it is the model's own NaN.
    pytester.makepyfile(class_id="""
        import torch
        from torch import nn
        import dyncheck
        from dyncheck.strategies import tensors

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.fc = nn.Embedding(21, 4, padding_idx=0), nn.Linear(4, 2)

            def forward(self, tokens, cls):
                keep = (tokens != 0).unsqueeze(-1).float()
                pooled = (self.emb(tokens) * keep).sum(1) / keep.sum(1).clamp(min=1)
                return self.fc(pooled) * torch.log(cls.float()).unsqueeze(-1)

        spec = dyncheck.Spec(Model, inputs={
            "tokens": tensors(shape=("batch", "time"), dtype=torch.int64, min_value=1, max_value=20),
            "cls": tensors(shape=("batch",), dtype=torch.int64, min_value=0, max_value=4),
        }, padding_value=0)
        """)
    run = dyncheck_run("--dyncheck", "class_id:spec", "--dyncheck-invariants=finite", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::class_id:spec::finite": "FAILED"}, run.text


def test_lengths_that_always_fill_the_padding_compare_nothing(dyncheck_run, pytester):
    # pytorch-forecasting's NHiTS takes only full encoder windows: every length is the padded
    # length, and a longer window raises. Each row alone was the row itself, and the check
    # passed although the model ignores its lengths and nothing padded was ever compared.
    pytester.makepyfile(windows="""
        import dyncheck
        from torch import nn
        from dyncheck.strategies import sequence_lengths, tensors

        class FixedWindow(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6 * 3, 2)

            def forward(self, x, lengths):
                return self.fc(x.flatten(1))

        spec = dyncheck.Spec(
            FixedWindow,
            inputs={"x": tensors(shape=("batch", 6, 3)), "lengths": sequence_lengths(max_length=6, min_length=6)},
        )
        """)
    run = dyncheck_run("--dyncheck", "windows:spec", ONLY)
    assert run.outcomes() == {"dyncheck::windows:spec::padding_invariance": "SKIPPED"}, run.text
    assert run.skip_reason("dyncheck::windows:spec::padding_invariance").endswith(
        "no sequence of lengths is shorter than the padded length, so no row has padding, and the model takes no "
        "longer batch for the extra padding: nothing padded was compared (a model that takes only full-length "
        "sequences: skip padding_invariance)"
    ), run.text


TWO_AXES = """
import torch
from torch import nn
from hypothesis import strategies as st
import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


class EncoderDecoder(nn.Module):
    '''pytorch-forecasting's batch: encoder steps and decoder steps, each with its lengths, the
    output one step per decoder step.'''

    def __init__(self):
        super().__init__()
        self.enc, self.dec = nn.Linear(3, 8), nn.Linear(3, 8)

    def forward(self, x):
        lengths = x["encoder_lengths"]
        mask = torch.arange(x["encoder_cont"].shape[1])[None, :] < lengths[:, None]
        context = (self.enc(x["encoder_cont"]) * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None]
        return self.dec(x["decoder_cont"]).cumsum(1) + self.summary(x) + context[:, None]

    def summary(self, x):
        return 0.0


class DecoderMean(EncoderDecoder):
    def summary(self, x):
        return self.dec(x["decoder_cont"]).mean(1, keepdim=True)  # BUG: over every decoder step, padding too


def spec(model):
    return dyncheck.Spec(
        model,
        inputs={"x": st.fixed_dictionaries({
            "encoder_cont": tensors(shape=("batch", "time", 3)),
            "decoder_cont": tensors(shape=("batch", "dec", 3)),
            "encoder_lengths": sequence_lengths(max_length="time", pad_to_longest=True),
            "decoder_lengths": sequence_lengths(max_length="dec", pad_to_longest=True),
        })},
        lengths="x['encoder_lengths']",
        dims={"batch": (1, 4), "time": (1, 5), "dec": (1, 3)},
    )


good, bad = spec(EncoderDecoder), spec(DecoderMean)
"""


def test_an_output_over_the_other_lengths_axis_is_compared_at_each_rows_own_steps(dyncheck_run, pytester):
    # The output has one step per decoder step: a row alone keeps its own decoder steps, and
    # the check read that axis against the encoder's lengths ("axis 1 of output does not
    # follow the padded length"), a false alarm on a correct model.
    pytester.makepyfile(two_axes=TWO_AXES)
    run = dyncheck_run("--dyncheck", "two_axes:good", "--dyncheck", "two_axes:bad", ONLY)
    assert run.outcomes() == {
        "dyncheck::two_axes:good::padding_invariance": "PASSED",
        "dyncheck::two_axes:bad::padding_invariance": "FAILED",
    }, run.text
    assert "gives a different output in the batch than alone" in run.failure("two_axes:bad::padding_invariance")


def test_lengths_forward_never_reads_are_named_in_the_skip(dyncheck_run, pytester):
    # GRU4Rec's forward(item_seq, item_seq_len) taking out[:, -1]: the lengths go unread, which
    # is the bug, and the skip said "forward takes no lengths argument".
    pytester.makepyfile(unread="""
        from torch import nn

        class LastPadded(nn.Module):
            def __init__(self):
                super().__init__()
                self.item_emb, self.gru = nn.Embedding(30, 8, padding_idx=0), nn.GRU(8, 8, batch_first=True)

            def forward(self, item_seq, item_seq_len):
                return self.gru(self.item_emb(item_seq))[0][:, -1]
        """)
    run = dyncheck_run("--dyncheck", "unread:LastPadded", ONLY)
    assert run.skip_reason("dyncheck::unread:LastPadded::padding_invariance").endswith(
        "forward never reads its item_seq_len (passed as None), and takes no other lengths or mask: if it holds each "
        "row's length of a padded batch, a row's output then depends on its padding; declare "
        "Spec(lengths='item_seq_len') to check it"
    ), run.text
    # a single size unread (a forecaster's horizon) is not taken for lengths
    pytester.makepyfile(horizon="""
        from torch import nn

        class Forecaster(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 3)

            def forward(self, x, pred_len):
                return self.fc(x)
        """)
    run = dyncheck_run("--dyncheck", "horizon:Forecaster", ONLY)
    assert "pred_len" not in run.skip_reason("dyncheck::horizon:Forecaster::padding_invariance"), run.text


def test_a_row_that_differs_under_a_right_padded_mask_names_left_padding(dyncheck_run, pytester):
    # pmixer's SASRec reads its last position, right for the left-padded batches it is given;
    # drawn right-padded, it fails, and nothing said what the mask was taken to be.
    pytester.makepyfile(left="""
        import torch
        from torch import nn

        class LeftPadded(nn.Module):
            def __init__(self):
                super().__init__()
                self.items = nn.Embedding(30, 8, padding_idx=0)
                layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
                self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

            def forward(self, item_seq, attention_mask):
                return self.encoder(self.items(item_seq), src_key_padding_mask=attention_mask == 0)[:, -1]
        """)
    run = dyncheck_run("--dyncheck", "left:LeftPadded", ONLY)
    assert (
        "  attention_mask was drawn padded on the right (tokens first): if the model is only given batches padded on "
        "the left (padding first, its last position every row's last token), declare "
        "attention_masks(padding_side='left'), which padding_invariance does not compare (a row alone would start at "
        "another position)"
    ) in run.failure("::padding_invariance").splitlines(), run.text


def test_an_output_cut_to_the_longest_is_not_taken_for_one_over_the_other_lengths():
    # Encoder lengths [2, 3] padded to 5, the output cut to 3 (pad_packed_sequence without
    # total_length), decoder lengths [1, 2] beside: each row alone is one step longer than its
    # decoder steps, as the batch is than their longest. That is the cut, and stays a finding.
    from dyncheck.invariants.padding_invariance import PaddingInvariance

    value, extended = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    alone = {0: {"output": torch.zeros(1, 2, 4)}, 1: {"output": torch.zeros(1, 3, 4)}}
    problem, _, _ = PaddingInvariance._time_axes("output", 0, value, alone, extended, [2, 3], 5, beside=[[1, 2]])
    assert problem is not None and problem.startswith("axis 1 of output does not follow the padded length"), problem


def test_lengths_drawn_to_their_longest_on_a_batch_of_one_say_so(dyncheck_run, pytester):
    pytester.makepyfile(longest="""
        import dyncheck
        import torch
        from torch import nn
        from dyncheck.strategies import sequence_lengths, tensors

        class Pooled(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)

            def forward(self, x, lengths):
                mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
                return self.fc((x * mask[..., None]).sum(1))

        spec = dyncheck.Spec(
            Pooled,
            inputs={"x": tensors(shape=("batch", "time", 3)), "lengths": sequence_lengths(pad_to_longest=True)},
            dims={"batch": (1, 1)},
        )
        """)
    run = dyncheck_run("--dyncheck", "longest:spec", ONLY)
    assert run.skip_reason("dyncheck::longest:spec::padding_invariance").endswith(
        "every sequence of lengths is as long as the longest (a batch of one, or rows of one length), so no row has "
        "padding, and with the lengths drawn to their longest (pad_to_longest=True) none is appended either: nothing "
        "padded was compared"
    ), run.text
