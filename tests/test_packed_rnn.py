"""packed_rnn: correct modules pass over every option, broken subclasses fail, messages pinned."""

from __future__ import annotations

import re

import pytest
import torch

from dyncheck.examples import Example
from dyncheck.invariants.packed_rnn import PADDING_VALUE, _check_padding, draw_lengths
from dyncheck.target import resolve

ONLY = "--dyncheck-invariants=packed_rnn"


def test_correct_models_pass(dyncheck_run):
    targets = [
        "reference_models.rnn:DynamicRNN",
        "reference_models.bilstm:BiLSTMClassifier",
        "reference_models.time_major_gru:GRUTagger",
        "reference_models.tied_lm:TiedLanguageModel",  # no lengths argument: drawn from the seed
    ]
    run = dyncheck_run(*(a for t in targets for a in ("--dyncheck", t)), ONLY, "--dyncheck-max-examples=15")
    assert run.outcomes() == {f"dyncheck::{t}::packed_rnn": "PASSED" for t in targets}, run.text


def test_every_option_of_the_modules_passes(dyncheck_run, pytester):
    pytester.makepyfile(
        options="""
        import torch
        from torch import nn

        class Model(nn.Module):
            '''One module per option; forward uses them all.'''

            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, proj_size=3, bias=False, batch_first=True)
                self.relu_rnn = nn.RNN(4, 3, nonlinearity="relu", num_layers=3, dropout=0.5)
                self.gru = nn.GRU(4, 2, bidirectional=True)

            def forward(self, x):
                a, _ = self.lstm(x)
                b, _ = self.relu_rnn(x.transpose(0, 1))
                c, _ = self.gru(x.transpose(0, 1))
                return a.sum() + b.sum() + c.sum()
        """
    )
    run = dyncheck_run("--dyncheck", "options:Model", ONLY, "--dyncheck-max-examples=15")
    assert run.outcomes() == {"dyncheck::options:Model::packed_rnn": "PASSED"}, run.text


def test_no_recurrent_module_is_a_skip(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", ONLY)
    assert run.ret == 0 and "1 skipped" in run.text, run.text
    assert (
        "packed_rnn does not apply to reference_models.gated:DynamicNet: no nn.RNN/LSTM/GRU submodule"
        in run.text
    )


def test_a_subclass_that_runs_over_the_padding_gets_h_n_wrong(dyncheck_run):
    target = "reference_models.buggy.unpacking_gru:Model"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{target}::packed_rnn": "FAILED"}, run.text
    lines = run.failure("::packed_rnn").strip().splitlines()
    assert lines[0] == f"packed_rnn violated by {target}"
    # Which failing batch Hypothesis ends on may vary with what the process has imported (it
    # draws constants from loaded modules); every one has a sequence shorter than the longest.
    problems = [line for line in lines if line.startswith("  - ")]
    assert lines[2] == f"The packed forward differs from the naive loop ({len(problems)} problems):"
    # One finding per sequence shorter than the longest, then the gradients.
    lengths = re.fullmatch(r"  lengths: \[([\d, ]+)\] \(padded length (\d)\)", lines[-5])
    assert lengths, lines[-5]
    values = list(map(int, lengths.group(1).split(", ")))
    shorter = [row for row, length in enumerate(values) if length < max(values)]
    assert len(problems) == len(shorter) + 1, problems
    for row, line in zip(shorter, problems):
        assert line == (
            f"  - rnn (LockedDropoutGRU(8, 6, batch_first=True)): h_n of sequence {row} (length {values[row]}) "
            "differs from the naive loop's final state of layer 0, forward direction "
            f"(after step {values[row] - 1}), with enforce_sorted=False and True."
        )
    assert lines[4] == f"      h_n[:, {shorter[0]}] against the naive loop:"
    assert re.fullmatch(r"        Mismatched elements: \d / 6 \(\d+\.\d%\)", lines[5])
    assert re.fullmatch(r" {8}Greatest absolute difference: \S+ at index \(0, \d\) \(up to 1e-05 allowed\)", lines[6])
    assert re.fullmatch(r" {8}Greatest relative difference: \S+ at index \(0, \d\) \(up to 1.3e-06 allowed\)", lines[7])
    assert re.fullmatch(
        r"  - rnn \(LockedDropoutGRU\(8, 6, batch_first=True\)\): the gradients of weight_ih_l0, (weight_hh_l0, )?"
        r"bias_ih_l0, bias_hh_l0 through the packed path differ from those through the naive loop, "
        r"with enforce_sorted=False and True\.",
        problems[-1],
    ), problems[-1]
    assert lines[lines.index(problems[-1]) + 1] == "      rnn.weight_ih_l0.grad:"
    example = rf"  example:  x float32\[{len(values)}, {lengths.group(2)}, 8\].*, lengths int64\[\d\] = "
    assert re.fullmatch(example + rf"\[{lengths.group(1)}\], seed=0", lines[-4]), lines[-4]
    assert lines[-1] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=3 -k packed_rnn"


def test_wrong_outputs_and_cut_off_gradients(dyncheck_run, pytester):
    pytester.makepyfile(
        subclasses="""
        import torch
        from torch import nn
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        class RepaddingGRU(nn.GRU):
            '''Bidirectional, and runs over the padding: the reverse direction starts in it.'''

            def forward(self, input, hx=None):
                padded, lengths = pad_packed_sequence(input, batch_first=self.batch_first)
                output, h_n = super().forward(padded, hx)
                return pack_padded_sequence(output, lengths, batch_first=self.batch_first, enforce_sorted=False), h_n

        class NoGradLSTM(nn.LSTM):
            '''An inference fast path left on: right values, no gradients.'''

            def forward(self, input, hx=None):
                with torch.no_grad():
                    return super().forward(input, hx)

        class Outputs(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = RepaddingGRU(3, 2, bidirectional=True, batch_first=True)

            def forward(self, x):
                return self.rnn(x)[1]

        class Gradients(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = NoGradLSTM(3, 2)

            def forward(self, x):
                return self.rnn(x)[0]
        """
    )
    targets = ("--dyncheck", "subclasses:Outputs", "--dyncheck", "subclasses:Gradients")
    run = dyncheck_run(*targets, ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {
        "dyncheck::subclasses:Outputs::packed_rnn": "FAILED",
        "dyncheck::subclasses:Gradients::packed_rnn": "FAILED",
    }, run.text
    outputs = run.failure("subclasses:Outputs::packed_rnn")
    assert re.search(
        r"  - rnn \(RepaddingGRU\(3, 2, batch_first=True, bidirectional=True\)\): the output of sequence \d "
        r"\(length \d\) differs from the naive loop at step 0, with enforce_sorted=False and True\.\n"
        r"      output\[\d, :\d\] against the naive loop:\n"
        r"        Mismatched elements: \d+ / \d+ \(\d+\.\d%\)\n"
        r"        Greatest absolute difference: \S+ at index \(\d, [23]\) \(up to 1e-05 allowed\)",
        outputs,
    ), outputs
    gradients = run.failure("subclasses:Gradients::packed_rnn").strip().splitlines()
    # weight_hh_l0 meets only the zero initial state when every sequence has one step: its
    # gradient is 0 both ways then.
    assert re.fullmatch(
        r"rnn \(NoGradLSTM\(3, 2\)\): the gradients of weight_ih_l0, (weight_hh_l0, )?bias_ih_l0, bias_hh_l0 "
        r"through the packed path differ from those through the naive loop, with enforce_sorted=False and True\.",
        gradients[2],
    ), gradients[2]
    assert gradients[3] == "  rnn.weight_ih_l0.grad:"
    assert re.fullmatch(r"    Mismatched elements: \d+ / 24 \(\d+\.\d%\)", gradients[4])
    assert re.fullmatch(r"  lengths: \[[\d, ]+\] \(padded length \d\)", gradients[-5])


def test_the_padding_check_names_the_step_and_the_value():
    tail = torch.full((3, 2), PADDING_VALUE)
    assert _check_padding("rnn (GRU(2, 2))", 1, 2, 5, tail) == []
    tail[1, 0] = 0.0
    assert _check_padding("rnn (GRU(2, 2))", 1, 2, 5, tail) == [(
        "rnn (GRU(2, 2)): after pad_packed_sequence(padding_value=-7.0, total_length=5), 1 padded step(s) "
        "of sequence 1 (length 2) hold other values, first at step 3 (0)",
        [],
    )]


@pytest.mark.parametrize("seed", range(40))
def test_lengths_drawn_from_the_seed_fit_the_example(seed):
    target = resolve("reference_models.tied_lm:TiedLanguageModel")
    example = Example({}, seed, {"batch": 3, "time": 4})
    lengths, padded = draw_lengths(target, example, torch.Generator().manual_seed(seed))
    assert padded == 4 and len(lengths) == 3
    assert all(1 <= n <= 4 for n in lengths)


def test_lengths_drawn_from_the_seed_cover_the_edge_cases():
    target = resolve("reference_models.tied_lm:TiedLanguageModel")
    seen = set()
    for seed in range(60):
        example = Example({}, seed, {"batch": 4, "time": 6})
        lengths, padded = draw_lengths(target, example, torch.Generator().manual_seed(seed))
        if len(set(lengths)) == 1:
            seen.add("all equal")
        if 1 in lengths:
            seen.add("length 1")
        if max(lengths) == padded:
            seen.add("longest fills the padded length")
        if lengths != sorted(lengths, reverse=True):
            seen.add("unsorted")
    assert seen == {"all equal", "length 1", "longest fills the padded length", "unsorted"}


def test_the_examples_own_lengths_are_used():
    target = resolve("reference_models.rnn:DynamicRNN")
    example = Example({"x": torch.zeros(3, 5, 8), "seq_lengths": torch.tensor([2, 5, 0])}, 0, {"batch": 3, "time": 5})
    # A zero length (which pack_padded_sequence refuses) runs as length 1.
    assert draw_lengths(target, example, torch.Generator()) == ([2, 5, 1], 5)


FORGETFUL = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class ForgetfulGRU(nn.GRU):
    '''Re-packs its output as if every sequence had the padded length: the padded steps
    come back holding the GRU's values instead of padding_value.'''

    def forward(self, input, hx=None):
        padded, lengths = pad_packed_sequence(input, batch_first=True)
        packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        output, h_n = super().forward(packed, hx)
        output, _ = pad_packed_sequence(output, batch_first=True)
        full = torch.full_like(lengths, padded.size(1))
        # The bug: the lengths are lost on the way out.
        return pack_padded_sequence(output, full, batch_first=True, enforce_sorted=False), h_n


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = ForgetfulGRU(3, 2, batch_first=True)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))[0]
"""


def test_padded_steps_that_do_not_hold_the_padding_value(dyncheck_run, pytester):
    pytester.makepyfile(forgetful=FORGETFUL)
    run = dyncheck_run("--dyncheck", "forgetful:Model", ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {"dyncheck::forgetful:Model::packed_rnn": "FAILED"}, run.text
    assert re.search(
        r"rnn \(ForgetfulGRU\(3, 2, batch_first=True\)\): after pad_packed_sequence\(padding_value=-7\.0, "
        r"total_length=\d\), \d+ padded step\(s\) of sequence \d \(length \d\) hold other values, first at step \d",
        run.failure("::packed_rnn"),
    ), run.text


def test_a_subclass_returning_another_hidden_shape_is_named(dyncheck_run, pytester):
    # A subclass that hands back only the last layer's state: reported, not an IndexError.
    pytester.makepyfile(
        last_layer="""
        from torch import nn

        class LastLayerGRU(nn.GRU):
            def forward(self, input, hx=None):
                output, h_n = super().forward(input, hx)
                return output, h_n[-1]

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = LastLayerGRU(3, 2, num_layers=2, batch_first=True)

            def forward(self, x):
                return self.rnn(x)[1]
        """
    )
    run = dyncheck_run("--dyncheck", "last_layer:Model", ONLY, "--dyncheck-seed=3")
    assert run.outcomes() == {"dyncheck::last_layer:Model::packed_rnn": "FAILED"}, run.text
    lines = run.failure("::packed_rnn").strip().splitlines()
    assert re.fullmatch(
        r"rnn \(LastLayerGRU\(3, 2, num_layers=2, batch_first=True\)\): h_n has shape \[(\d+), 2\], where GRU "
        r"returns \[2, \1, 2\] \(batch first, for a batch of \1 padded to \d+ steps\), with enforce_sorted=False "
        r"and True\.",
        lines[2],
    ), lines[2]
    assert "Traceback" not in run.text


RNN_VARIANTS = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class PackingLSTM(nn.LSTM):
    # a subclass whose forward packs itself: forward(x, lengths)
    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = super().forward(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = PackingLSTM(4, 6, batch_first=True)
        self.out = nn.Linear(6, 3)

    def forward(self, x, lengths):
        return self.out(self.lstm(x, lengths))


class WeightDropped(nn.Module):
    # AWD-LSTM's weight drop: weight_hh_l0 is deleted and set from weight_hh_l0_raw in each call
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 6, batch_first=True)
        raw = self.rnn.weight_hh_l0
        del self.rnn._parameters["weight_hh_l0"]
        self.rnn.register_parameter("weight_hh_l0_raw", nn.Parameter(raw.data))
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        self.rnn.weight_hh_l0 = nn.functional.dropout(self.rnn.weight_hh_l0_raw, 0.5, self.training)
        self.rnn._flat_weights = [getattr(self.rnn, w) for w in self.rnn._flat_weights_names]
        return self.out(self.rnn(x)[0][:, -1])
"""


def test_a_subclass_of_torch_rnn_and_weights_set_in_forward(dyncheck_run, pytester):
    # The naive loop ran the subclass's own forward with one argument (a false alarm), and
    # read a weight only forward sets (dyncheck raised). torch's forward is the layer under
    # test; weights set in forward leave nothing to run, said so.
    pytester.makepyfile(variants=RNN_VARIANTS)
    run = dyncheck_run(
        "--dyncheck", "variants:Tagger", "--dyncheck", "variants:WeightDropped", "--dyncheck-invariants=packed_rnn",
        "--dyncheck-max-examples=10",
    )
    assert run.outcomes()["dyncheck::variants:Tagger::packed_rnn"] == "PASSED", run.text
    assert run.vacuous_reason("dyncheck::variants:WeightDropped::packed_rnn") == (
        "rnn's weight_hh_l0 is not a tensor of it before a call (set in forward, as a weight drop does): no weights to "
        "run the naive loop with"
    )
