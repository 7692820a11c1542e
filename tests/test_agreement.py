"""device_agreement, dtype_agreement, batch_invariance and the differential core."""

from __future__ import annotations

import copy
import math
import random
import re

import numpy
import pytest
import torch
from torch import nn

from dyncheck.agreement import close
from dyncheck.errors import InvalidArgument
from dyncheck.invariants._where import first_coupled_module
from dyncheck.spec import Spec

PERTURBED = "reference_models.buggy.perturbed_device"
BRANCHY = """
import torch.nn as nn
import torch.nn.functional as F

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        if h.sum() > 1e2:  # data-dependent: a large shift of fc1 flips it
            h = F.relu(self.fc2(h))
        return self.fc3(h)
"""


def lines_of(run, target, invariant):
    assert run.outcomes() == {f"dyncheck::{target}::{invariant}": "FAILED"}, run.text
    return run.failure(f"::{invariant}").strip().splitlines()


def test_one_device_is_a_skip_with_the_reason(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--dyncheck-invariants=device_agreement",
                       "--dyncheck-devices=cpu")
    run.result.assert_outcomes(skipped=1)
    assert "needs two devices to compare, this run has cpu" in run.text


@pytest.mark.parametrize(
    ("devices", "why"),
    [
        ("cpu,cdua", "--dyncheck-devices entry 'cdua' is not a torch device"),
        ("cpu,reference_models.buggy.perturbed_device:NUMERICAL", "NUMERICAL"),
        ("cpu,reference_models.gated:DynamicNet", "is not a dyncheck.agreement.Config"),
    ],
)
def test_a_bad_device_is_a_usage_error(dyncheck_run, devices, why):
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", f"--dyncheck-devices={devices}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.text
    line = next(line for line in run.text.splitlines() if line.startswith("ERROR: "))
    assert line.startswith(f"ERROR: --dyncheck-devices={devices}: ") and why in line, line
    assert line.endswith("give devices such as cpu,cuda or cuda:0,cuda:1, or module:Name of a dyncheck.agreement.Config")
    assert "Traceback" not in run.text


def test_an_unavailable_device_is_named(dyncheck_run):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--dyncheck-invariants=device_agreement",
                       "--dyncheck-devices=cpu,cuda")
    assert "not available: cuda (CUDA is not available on this machine)" in run.text


def test_a_numeric_disagreement(dyncheck_run):
    target = "reference_models.gated:DynamicNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=device_agreement",
                       f"--dyncheck-devices=cpu,{PERTURBED}:NUMERIC")
    lines = lines_of(run, target, "device_agreement")
    assert lines[2].startswith("The devices disagree (")
    assert re.fullmatch(
        r"  - output differs on cpu \(perturbed output\) from cpu: Mismatched elements: \d+ / \d+ \(\d+\.\d%\); "
        r"Greatest absolute difference: \S+ at index \(\d+, \d+\) \(up to \S+ allowed\); .*",
        lines[3],
    )


def test_a_gradient_only_disagreement(dyncheck_run):
    target = "reference_models.gated:DynamicNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=device_agreement",
                       f"--dyncheck-devices=cpu,{PERTURBED}:GRADIENT")
    lines = lines_of(run, target, "device_agreement")
    assert re.fullmatch(r"fc1\.weight\.grad differs on cpu \(perturbed gradient\) from cpu: Mismatched elements: .*", lines[2])


def test_a_path_divergence_is_not_a_numeric_mismatch(dyncheck_run, pytester):
    pytester.makepyfile(branchy=BRANCHY)
    run = dyncheck_run("--dyncheck", "branchy:Model", "--dyncheck-invariants=device_agreement",
                       f"--dyncheck-devices=cpu,{PERTURBED}:FLIPPED")
    lines = lines_of(run, "branchy:Model", "device_agreement")
    assert lines[2] == (
        "path divergence: on cpu the call took fc1 → fc3, on cpu (branch-flipping) fc1 → fc2 → fc3 — a "
        "data-dependent branch flipped (rounding differs between the two), so outputs and gradients are "
        "not comparable on this example"
    )


def test_float32_overflow_against_float64(dyncheck_run):
    target = "reference_models.buggy.naive_log_softmax:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=dtype_agreement")
    text = "\n".join(lines_of(run, target, "dtype_agreement"))
    assert re.search(r"output differs on float32 from float64 \(reference\): Mismatched elements", text)


def test_steps_cut_to_the_batchs_longest_sequence_are_named_as_the_coupling(dyncheck_run):
    # pad_packed_sequence without the padded length: a sample's output has as many steps as
    # the longest sequence it is batched with. The message says so, not "batch statistics".
    target = "reference_models.buggy.short_total_length:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, target, "batch_invariance")
    assert re.fullmatch(
        r"sample (\d) differs from the same sample run alone \(output\): The values for attribute 'shape' do not "
        r"match: .* — the output of a sample depends on the rest of the batch through its shape: output has as "
        r"many steps as the longest sequence in the batch \(2 here; 1 for sample \1, the shortest, alone\), as "
        r"pad_packed_sequence gives without total_length, or a loop up to lengths.max\(\); give "
        r"total_length=<the padded length>, or step over every padded step, so that a sample's steps line up "
        r"with its input whatever it is batched with\.",
        lines[2],
    ), lines[2]


def test_state_kept_between_calls_is_not_blamed_on_the_batch(dyncheck_run, pytester):
    # A mask cached on the module by shape keeps the first call's lengths: the rows alone, run
    # one after another on one copy, read the first row's mask. On a fresh copy a row alone
    # agrees with the batch: the batch is not the cause, and the message said it was.
    pytester.makepyfile(cached="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self, input_size=8, hidden_size=12, output_size=4):
                super().__init__()
                self.proj = nn.Linear(input_size, hidden_size)
                self.fc = nn.Linear(hidden_size, output_size)
                self._mask_cache = {}

            def forward(self, x, lengths):
                key = (x.size(0), x.size(1))
                if key not in self._mask_cache:
                    self._mask_cache[key] = (torch.arange(x.size(1))[None] < lengths[:, None]).float()
                m = self._mask_cache[key][..., None]
                h = torch.tanh(self.proj(x))
                return self.fc((h * m).sum(1) / m.sum(1).clamp(min=1))
        """)
    run = dyncheck_run("--dyncheck", "cached:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, "cached:Model", "batch_invariance")
    assert re.fullmatch(
        r"sample \d+ run alone differs from its row in the batch only after other calls on the same model: run alone "
        r"on a fresh copy it agrees with the batch — forward keeps state between calls that changes the output \(a "
        r"cache kept on the module, keyed by shape; a counter\)\. Compute it in each call, or key the cache by "
        r"everything it depends on\.",
        lines[2],
    ), lines
    assert re.match(r"  sample \d+ differs from the same sample run alone \(output\): Mismatched", lines[3]), lines


def test_a_batch_axis_dropped_on_a_batch_of_one_is_named(dyncheck_run, pytester):
    # squeeze() without a dim turns [1, 1] into []: the sample alone has no batch axis, which
    # read as "batch statistics, per-position randomness, capacity limits".
    pytester.makepyfile(squeezed="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2, self.fc3 = nn.Linear(8, 12), nn.Linear(12, 1), nn.Linear(1, 3)

            def forward(self, x):
                s = self.fc2(torch.relu(self.fc1(x))).squeeze()
                return self.fc3(s.unsqueeze(-1)) if s.dim() else self.fc3(s.view(1))
        """)
    run = dyncheck_run("--dyncheck", "squeezed:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=5")
    lines = lines_of(run, "squeezed:Model", "batch_invariance")
    assert lines[2].endswith(
        "— the output of a sample depends on the rest of the batch through its size: alone, the sample's output has "
        "no batch axis ([3] where its row in the batch is [1, 3]): forward drops the batch axis of a batch of one "
        "(squeeze() without a dim, x[0]); squeeze the axis you mean, squeeze(-1)."
    ), lines[2]


def test_an_integer_input_handed_whole_to_each_sample_is_named_as_the_likely_coupling(dyncheck_run, pytester):
    # A GCN over (x, edge_index) with no skip declared: each sample alone was said to depend on
    # "batch statistics, per-position randomness, capacity limits", where the edges, not cut
    # with the batch, point at the other samples.
    pytester.makepyfile(edges="""
        import torch
        from torch import nn

        import dyncheck
        from dyncheck.strategies import tensors

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def forward(self, x, edge_index):
                h = self.fc(x)
                return h.index_add(0, edge_index[1], h[edge_index[0]])

        spec = dyncheck.Spec(Model, inputs={"x": tensors(shape=("batch", 8)),
                             "edge_index": tensors(shape=(2, "edges"), dtype=torch.int64, max_value=3)},
                             dims={"batch": (4, 8)})
        """)
    run = dyncheck_run("--dyncheck", "edges:spec", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=7")
    lines = lines_of(run, "edges:spec", "batch_invariance")
    assert lines[2].endswith(
        "— the output of a sample depends on the rest of the batch (batch statistics, per-position randomness, "
        "capacity limits; or edge_index, handed whole to each sample alone as no axis of it is the batch's: integers "
        "that pick other samples, as a graph's edges do, would couple them)."
    ), lines
    assert any("say so with Spec(skip={'batch_invariance': '<why>'})" in line for line in lines), lines


def test_a_sample_that_is_nan_alone_says_so_in_words(dyncheck_run, pytester):
    # A forecaster standardised by the batch's std shrinks to one-step series: alone, the std
    # of one value is NaN. The message read only "Greatest absolute difference: nan".
    pytester.makepyfile(batch_scaled="""
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn, self.head = nn.GRU(1, 8, batch_first=True), nn.Linear(8, 3)

            def forward(self, insample_y):
                y = (insample_y - insample_y.mean()) / (insample_y.std() + 1e-5)
                return self.head(self.rnn(y)[0][:, -1])
        """)
    run = dyncheck_run("--dyncheck", "batch_scaled:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=0")
    assert "; alone it gives NaN at 3 of 3 places where in the batch it gives numbers (a statistic over the batch, " \
        "undefined for one sample: the std or variance of one value)" in run.failure("::batch_invariance"), run.text


def test_a_sample_that_cannot_run_alone_is_a_coupling_not_a_crash(dyncheck_run, pytester):
    # A BatchNorm without running statistics normalises by the batch in eval: a sample alone
    # raises. Reported as the model raising "on an example the spec allows" (batch=2, which
    # runs), the call that raised was dyncheck's batch of one.
    pytester.makepyfile(untracked="""
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 16)
                self.bn = nn.BatchNorm1d(16, track_running_stats=False)
                self.out = nn.Linear(16, 3)

            def forward(self, x):
                return self.out(self.bn(self.fc(x)))
        """)
    run = dyncheck_run("--dyncheck", "untracked:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=7")
    lines = lines_of(run, "untracked:Model", "batch_invariance")
    assert re.fullmatch(
        r"sample \d+ alone \(a batch of one\) raises ValueError \(Expected more than 1 value per channel.*\) where the "
        r"batch of \d+ runs — the output of a sample depends on the rest of the batch \(batch statistics, "
        r"per-position randomness, capacity limits\)\.",
        lines[2],
    ), lines


def test_an_axis_of_the_batchs_size_by_chance_is_not_the_batch_axis(dyncheck_run, pytester):
    # A tagger returns fc(out).view(-1, tags) for CrossEntropyLoss: [batch * time, 3]. Its
    # tag axis had the batch's size (3) by chance, was taken for the batch axis, and a
    # correct tagger failed. Whose entries are a sample's in a flattened output is not
    # known (sample-major here, time-major in PyTorch's word_language_model, packed order):
    # such an example is not compared, and the summary says why.
    pytester.makepyfile(taggers="""
        import torch
        from torch import nn

        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(20, 8)
                self.lstm = nn.LSTM(8, 8, batch_first=True, bidirectional=True)
                self.fc = nn.Linear(16, 3)

            def forward(self, tokens):
                out, _ = self.lstm(self.embedding(tokens))
                return self.fc(out).view(-1, 3)
        """)
    run = dyncheck_run(
        "--dyncheck", "taggers:Tagger", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1", "-v",
        "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {"dyncheck::taggers:Tagger::batch_invariance": "PASSED"}, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(r"batch_invariance  passed   checked on \d+ of 20 examples", summary), summary
    assert re.search(
        r"not compared on \d+: output holds the batch flattened into its first axis \(\[batch \* time, \.\.\.\], a "
        r"sample alone \[time, \.\.\.\]: view\(-1, \.\.\.\)\), and which of its entries", summary,
    ), summary


def test_a_draw_that_reaches_only_an_integer_output_is_named_a_draw(dyncheck_run, pytester):
    # PonderNet samples each sample's halting step in eval: floating outputs agree under
    # any seed, and only the int64 step a draw decides tells that the model draws.
    pytester.makepyfile(halting="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.cell = nn.Linear(8, 8)
                self.halt = nn.Linear(8, 1)

            def forward(self, x):
                h = torch.tanh(self.cell(x))
                step = torch.bernoulli(torch.sigmoid(self.halt(h))[:, 0]).long()
                return h, step
        """)
    run = dyncheck_run("--dyncheck", "halting:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, "halting:Model", "batch_invariance")
    assert lines[2].startswith("sample ") and "(output[1])" in lines[2], lines
    assert lines[3].startswith("  The model draws random numbers in eval mode (another seed changes"), lines


@pytest.mark.parametrize("name", ["batch_mean_branch", "per_sample_coin", "capacity_routing"])
def test_batch_coupling(dyncheck_run, name):
    target = f"reference_models.buggy.{name}:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, target, "batch_invariance")
    assert re.fullmatch(
        r"(sample \d+ differs from the same sample run alone \(output\)|permuting the batch \(order \[[\d, ]+\]\) does not permute output alike): "
        r"Mismatched elements: .* — the output of a sample depends on the rest of the batch \(batch statistics, "
        r"per-position randomness, capacity limits\)\.",
        lines[2],
    )
    # A model that draws per sample is told so, with the two ways out; the others are not.
    drawn = name == "per_sample_coin"
    assert lines[3].startswith("  The model draws random numbers in eval mode (another seed changes") == drawn
    # Where the coupling starts: in forward's own code between two of its layers, or (a branch
    # on the batch's mean) where the batch's path parts from the sample's alone.
    if name == "batch_mean_branch":
        assert re.fullmatch(
            r"  the batch and the sample alone take different paths: the paths part after fc1: "
            r"the batch runs (fc3 where the sample alone ran fc2|fc2 where the sample alone ran fc3)",
            lines[3 + drawn],
        ), lines
    else:
        # experts is a ModuleList, with no forward of its own: the code after experts.1 is forward's
        between = {"per_sample_coin": ("fc1", "fc2"), "capacity_routing": (r"experts\.1", "head")}
        assert re.fullmatch(
            rf"  where it starts: in forward's own code after {between[name][0]}, whose output agrees, before "
            rf"{between[name][1]}, whose "
            r"inputs for sample \d already differ:",
            lines[3 + drawn],
        ), lines
        assert lines[4 + drawn] == "    args[0] against the sample alone:", lines
    example = next(line for line in lines if line.startswith("  example:"))
    assert re.fullmatch(r"  example:  x float32\[[2-4], \d+\].*", example)  # a batch: one sample cannot couple


CAPACITY_GATE = """
import torch
from torch import nn


class Gate(nn.Module):
    # Top-1 routing with a capacity over the whole batch, as MoE libraries' gates do: the
    # tokens past an expert's capacity (counted in batch order) get no expert.
    def __init__(self, dim, experts, capacity):
        super().__init__()
        self.router = nn.Linear(dim, experts)
        self.capacity = capacity

    def forward(self, x):
        choice = self.router(x).argmax(-1)
        onehot = torch.nn.functional.one_hot(choice, self.router.out_features).to(x.dtype)
        position = onehot.cumsum(0) * onehot  # 1 for the first token an expert takes, ...
        return onehot * (position <= self.capacity).to(x.dtype)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.gate = Gate(8, 2, capacity=1)
        self.experts = nn.ModuleList(nn.Linear(8, 8) for _ in range(2))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = self.embed(x)
        dispatch = self.gate(h)
        mixed = sum(dispatch[:, i:i + 1] * expert(h) for i, expert in enumerate(self.experts))
        return self.head(h + mixed)


class Counted(nn.Module):
    # What it returns depends on how often it was called: no call alone differs.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x) * self.calls
"""


def test_the_module_where_a_sample_starts_to_depend_on_its_batch_is_named(dyncheck_run, pytester):
    # The gate's inputs for the sample agree with the sample alone; its output does not (a
    # token past capacity), so the report sends the user to the gate, not to the whole model.
    pytester.makepyfile(capacity=CAPACITY_GATE)
    run = dyncheck_run("--dyncheck", "capacity:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, "capacity:Model", "batch_invariance")
    assert re.fullmatch(
        r"  where it starts: gate \(capacity\.Gate\) — its inputs for (sample \d|the batch) agree with the "
        r"(sample alone|permuted batch)'s, its output does not:",
        lines[3],
    ), lines
    assert re.fullmatch(r"    output against the (sample alone|permuted batch):", lines[4]), lines
    assert lines[5].startswith("      Mismatched elements:"), lines


def test_a_coupling_through_state_kept_between_calls_is_told_apart(dyncheck_run, pytester):
    # On a copy of its own per call the sample agrees with itself alone: the report says the
    # difference is what the model keeps between calls, and names no module.
    pytester.makepyfile(capacity=CAPACITY_GATE)
    run = dyncheck_run("--dyncheck", "capacity:Counted", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    lines = lines_of(run, "capacity:Counted", "batch_invariance")
    assert re.fullmatch(
        r"  where it starts: not in one call\. On a copy of its own for each call, (sample \d|the batch) agrees "
        r"with the (sample alone|permuted batch); one copy called for the batch and then for the (sample "
        r"alone|permuted batch) differs as in the check: what differs is what the model keeps from one call to "
        r"the next \(determinism names it\)",
        lines[3],
    ), lines


def test_a_coupling_after_the_last_module_is_placed_there():
    from dyncheck.examples import Example
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.errors import InvariantViolation
    from dyncheck.target import resolve

    # CLIP's pairwise logits divided by the batch size: every layer agrees, the code after them does not.
    target = "reference_models.buggy.batch_scaled_logits:Model"
    context = Context(resolve(target))
    args = {
        "input_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]),
        "pixel_values": torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
        "attention_mask": torch.ones(2, 3, dtype=torch.long),
    }
    with pytest.raises(InvariantViolation) as raised:
        BatchInvariance().check(context, Example(args, 0, {"batch": 2, "time": 3}))
    assert raised.value.details[0] == (
        "where it starts: in forward's own code after visual_projection: the output of every module for sample 0 "
        "agrees with the sample alone's"
    ), raised.value.details


def _built(factory):
    """A model whose weights are the same on every run (the global generator left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return factory()


def _placed(model, x, other, rows, *, alone=True, run=lambda m, a: m(a["x"])):
    """first_coupled_module on a plain model taking x, comparing the output as the check does."""
    def differs(ours, theirs, tolerance):
        return bool(close(theirs, ours.index_select(0, rows), tolerance=tolerance))

    return first_coupled_module(
        lambda: copy.deepcopy(model).eval(), run, lambda: {"x": x.clone()}, lambda: {"x": other.clone()},
        x.shape[0], rows, alone=alone, sample=f"sample {rows.item()}" if alone else "the batch", differs=differs,
        single=lambda: {"x": x[:1].clone()},
    )


class _Nudge(torch.nn.Module):
    def forward(self, x):
        return x + 1e-5 * x.shape[0]  # moves with the batch, by far less than the walk's tolerance


class _Mean(torch.nn.Module):
    def forward(self, x):
        return x - x.mean(0, keepdim=True)


def test_differences_within_rounding_do_not_name_a_module(monkeypatch):
    # A layer whose output moves with the batch by far less than the walk's tolerance is not
    # named: the one that moves it by more is.
    from dyncheck.invariants import _where

    model = _built(lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), _Nudge(), torch.nn.Linear(4, 4), _Mean()))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    row = torch.tensor([1])
    assert re.match(r"where it starts: 3 \(.*\._Mean\) — its inputs for sample 1 agree", _placed(model, x, x[1:2], row)[0])
    # At a tolerance as strict as float32's the walk stops at the nudge (or at rounding before it),
    # and _Mean is not reached.
    monkeypatch.setattr(_where, "TOLERANCE", (1e-7, 1e-7))
    assert not any("_Mean" in line for line in _placed(model, x, x[1:2], row))


class _Rank(torch.nn.Module):
    def forward(self, h):
        return h + torch.arange(h.shape[0], dtype=h.dtype)[:, None, None] / 10  # a value by place in the batch


class _Positions(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = torch.nn.Embedding(3, 5)
        self.rank = _Rank()
        self.head = torch.nn.Linear(5, 2)

    def forward(self, x):
        # positions [time, dim] with no batch axis, their time as long as the batch
        return self.head(self.rank(x + self.pos(torch.arange(x.shape[1]))))


def test_a_permuted_batch_is_cut_on_the_axes_a_sample_alone_shows():
    # The position ids have as many entries as the batch: only a run of one sample tells
    # that they have no batch axis, and the module placing each row by its rank is named.
    x = torch.randn(3, 3, 5, generator=torch.Generator().manual_seed(0))
    order = torch.tensor([2, 0, 1])
    lines = _placed(_built(_Positions), x, x[order], order, alone=False)
    assert re.fullmatch(
        r"where it starts: rank \(\S*test_agreement\._Rank\) — its inputs for the batch agree with the permuted "
        r"batch's, its output does not:",
        lines[0],
    ), lines


class _Fourier(torch.nn.Module):
    def forward(self, p):
        # NeRF's frequencies up to 2^11 pi: float32's rounding of p, times 6e3, is past the walk's tolerance
        z = p[..., None] * (2.0 ** torch.arange(12)) * math.pi
        return torch.cat([z.sin(), z.cos()], -1).flatten(-2)


def test_a_module_that_only_amplifies_its_inputs_rounding_is_not_named(monkeypatch):
    # The code's matrix product rounds each row otherwise in a batch of 64 than alone; the
    # Fourier features turn that into differences past 1e-3. Called again with the sample's
    # own inputs in its row, they give its output alone: they are not named (the walk cannot
    # see past them then, and says nothing), and where they do not hide it, _Mean is named.
    from dyncheck.invariants import _where

    model = _built(lambda: torch.nn.Sequential(torch.nn.Linear(512, 3), _Fourier(), torch.nn.Linear(72, 16), _Mean()))
    # inputs at scale 3 make the code's rounding large enough to matter, at 0.3 not
    inputs = [torch.randn(64, 512, generator=torch.Generator().manual_seed(seed)) * scale for seed, scale in enumerate((3, 3, 0.3))]

    def first_lines() -> list[str]:
        return [next(iter(_placed(model, x, x[5:6], torch.tensor([5]))), "") for x in inputs]

    said = first_lines()
    assert said[:2] == ["", ""] and re.match(r"where it starts: 3 \(\S*test_agreement\._Mean\) — ", said[2]), said
    # Unconfirmed, the Fourier features would have been named.
    monkeypatch.setattr(_where, "_batch_confirmed", lambda *args: "confirmed")
    assert all(re.match(r"where it starts: 1 \(\S*_Fourier\)", line) for line in first_lines()[:2])


class _PerSample(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block, self.head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

    def forward(self, x):
        h = torch.cat([self.block(x[i:i + 1]) for i in range(len(x))]).cumsum(0)
        return self.head(h)


class _Sorted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

    def forward(self, x):
        order = x.sum(1).argsort()
        h = self.enc(x[order])[order.argsort()]  # sorted in, unsorted out
        return self.head(h - h.mean(0, keepdim=True))


def test_calls_that_do_not_pair_one_to_one_name_nothing_wrong():
    # sample 1 sorts first: row 1 of enc's input is another sample's
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)) + torch.tensor([[3.0], [-3.0], [0.0]])
    row = torch.tensor([1])
    # A module called once per sample: its calls in the batch are other samples'. Nothing is said.
    assert _placed(_built(_PerSample), x, x[1:2], row) == []
    # Sorted inside forward: the sample's row in enc's input is another sample's; enc is left
    # out and named, and the coupling is placed before head.
    lines = _placed(_built(_Sorted), x, x[1:2], row)
    assert lines[0] == (
        "where it starts: before head, whose inputs for sample 1 already differ: in forward's own code or in enc, "
        "not compared (some of their tensors cannot be cut to the sample):"
    ), lines


def test_a_coupling_too_small_to_place_is_not_called_state():
    # Past float32's tolerance, under the walk's: no state, no location; the line is left out.
    class Weak(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)

        def forward(self, x):
            h = self.fc1(x)
            return self.fc2(h + 3e-4 * h.mean(0, keepdim=True))

    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    assert _placed(_built(Weak), x, x[1:2], torch.tensor([1])) == []


class _Experts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, flat):  # tokens flattened across the batch; the first 4 kept
        keep = torch.zeros(flat.shape[0], 1)
        keep[:4] = 1
        return self.fc(flat) * keep


class _Flattened(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.experts, self.head = torch.nn.Linear(4, 4), _Experts(), torch.nn.Linear(4, 2)

    def forward(self, x):
        b, t, d = x.shape
        return self.head(self.experts(self.inp(x).reshape(b * t, d)).reshape(b, t, d))


class _Centre(torch.nn.Module):
    def forward(self, h):
        return torch.relu(h - h.mean(0, keepdim=True))  # other rows all zeros, as the sample's may be


class _Saturated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.head = _Centre(), torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.head(self.c(x) + x)


class _Mix(torch.nn.Module):
    def forward(self, h):
        return h + 3e-4 * h.mean(0, keepdim=True)  # the coupling, under the walk's tolerance


class _Amplified(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.mix, self.head = torch.nn.Linear(4, 8), _Mix(), torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.sin(1000.0 * self.mix(self.fc(x))))  # forward's own code only amplifies it


class _Monitored(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.monitor, self.head = torch.nn.Linear(4, 4), torch.nn.Identity(), torch.nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        if x.shape[0] > 1:
            self.monitor(h)  # on batches only, changing nothing
        return self.head(h - 0.5 * h.mean(0, keepdim=True))


class _Coin(torch.nn.Module):
    def forward(self, h):
        return h * (torch.rand(h.shape[0], 1) < 0.5).to(h.dtype)  # a coin per position, in eval mode


def test_what_cannot_be_compared_is_named_as_a_possible_place():
    # The experts see tokens flattened across the batch: not compared, and named beside the
    # forward code as where the coupling may be, not left out of the sentence.
    x = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(_built(_Flattened), x, x[2:3], torch.tensor([2]))
    assert lines[0] == (
        "where it starts: before head, whose inputs for sample 2 already differ: in forward's own code after inp, "
        "whose output agrees, or in experts, not compared (some of their tensors cannot be cut to the "
        "sample):"
    ), lines


def test_a_saturated_output_is_compared_where_other_rows_match_it():
    # ReLU leaves the sample's row and another all zeros: the sample is not taken for moved.
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 0.5]])
    lines = _placed(_built(_Saturated), x, x[1:2], torch.tensor([1]))
    assert re.match(r"where it starts: c \(\S*_Centre\) — its inputs for sample 1 agree", lines[0]), lines


def test_forward_code_after_a_module_that_already_differed_is_not_blamed():
    # The module before the amplifying code already differed past float32's tolerance (under
    # the walk's): the code after it is not named, and nothing is said.
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert _placed(_built(_Amplified), x, x[1:2], torch.tensor([1])) == []


def test_another_path_is_said_as_seen_not_as_the_cause():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert _placed(_built(_Monitored), x, x[1:2], torch.tensor([1])) == [
        "the batch and the sample alone take different paths: the paths part after fc: the batch runs monitor "
        "where the sample alone ran head"
    ]


def test_a_module_drawing_by_position_is_named_as_such_and_the_callers_stream_is_left_alone():
    # Under seed 7 the batch's coin keeps sample 1 (0.199) where alone it is dropped (0.535).
    model = _built(lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), _Coin(), torch.nn.Linear(4, 2)))
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))

    def run(m, a):
        with torch.random.fork_rng():
            torch.manual_seed(7)  # the check's runs are seeded
            return m(a["x"])

    seen = set()
    for seed in range(3):  # the same line whatever the caller's generator holds, and it is left as it was
        torch.manual_seed(seed)
        before = torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy()
        lines = _placed(model, x, x[1:2], torch.tensor([1]), run=run)
        assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
        assert (numpy.random.get_state()[1] == before[2]).all()
        seen.add(lines[0] if lines else "")
    assert len(seen) == 1 and re.fullmatch(
        r"where it starts: 1 \(\S*_Coin\) — its inputs for sample 1 agree with the sample alone's, its output does "
        r"not; it draws random numbers \(a draw that depends on the sample's place in the batch would do this\):",
        seen.pop(),
    )


class _AddPos(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = torch.nn.Parameter(torch.ones(4))

    def forward(self, h):
        h += self.pos  # in place, into the tensor it was given
        return h - h.mean(0, keepdim=True)


class _SortByNorm(torch.nn.Module):
    def forward(self, h):
        order = h.norm(dim=1).argsort()
        return h[order], order


class _Sorting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.sort, self.head = torch.nn.Linear(4, 4), _SortByNorm(), torch.nn.Linear(4, 2)

    def forward(self, x):
        h, order = self.sort(self.fc(x))
        h = h[order.argsort()]  # undone: the sort is not the coupling
        return self.head(h - h.mean(0, keepdim=True))


class _Bucket(torch.nn.Module):
    def forward(self, h):
        return ((h - h.mean(0, keepdim=True)) * 4000).round().long() + 14000  # ids that move with the batch


class _Bucketed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.bucket, self.table = torch.nn.Linear(4, 4), _Bucket(), torch.nn.Embedding(20000, 2)

    def forward(self, x):
        return self.table(self.bucket(self.fc(x))).sum(1)


class _Nested(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.enc(x - x.mean(0, keepdim=True)))  # the coupling is forward's, before enc


def test_a_module_writing_into_its_input_is_not_said_to_draw():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    model = _built(lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), _AddPos(), torch.nn.Linear(4, 2)))
    lines = _placed(model, x, x[1:2], torch.tensor([1]))
    assert re.fullmatch(
        r"where it starts: 1 \(\S*_AddPos\) — its inputs for sample 1 agree with the sample alone's, its output does "
        r"not:", lines[0],
    ), lines


def test_a_module_that_only_sorts_the_batch_is_not_named():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([[3.0], [0.1], [1.0]])
    lines = _placed(_built(_Sorting), x, x[1:2], torch.tensor([1]))
    assert not any("_SortByNorm" in line for line in lines), lines


def test_integer_outputs_are_compared_exactly():
    # Bucket ids near 14000 that move by a few with the batch: within 1e-3 relative, not equal.
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(_built(_Bucketed), x, x[1:2], torch.tensor([1]))
    assert re.match(r"where it starts: bucket \(\S*_Bucket\) — its inputs for sample 1 agree", lines[0]), lines


class _Analytic(torch.nn.Module):
    def forward(self, h):
        return torch.complex(h, h - h.mean(0, keepdim=True))  # the coupling, in the imaginary part only


def test_complex_outputs_are_compared_on_both_parts():
    model = _built(lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), _Analytic()))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(model, x, x[1:2], torch.tensor([1]))
    assert re.match(r"where it starts: 1 \(\S*_Analytic\) — its inputs for sample 1 agree", lines[0]), lines


def test_code_before_a_block_is_the_forward_that_runs_it():
    # Inputs are compared when a call starts: the centring happens in the model's forward
    # before enc, not inside enc before its first layer.
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(_built(_Nested), x, x[1:2], torch.tensor([1]))
    assert lines[0] == (
        "where it starts: in forward's own code before enc, whose inputs for sample 1 already differ:"
    ), lines


class _Lin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.scale = 1.0

    def forward(self, h):
        return self.lin(h) * self.scale


class _Block(torch.nn.Module):
    def __init__(self, norm):
        super().__init__()
        self.norm = norm  # the model's own module, shared: listed once, under the model's name

    def forward(self, h):
        h = self.norm(h)
        return self.norm(h - h.mean(0, keepdim=True))  # the coupling, in the block's code


class _SharedNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = _Lin()
        self.block, self.head = _Block(self.norm), torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.block(x))


class _SetByParent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.s, self.head = torch.nn.Linear(4, 4), _Lin(), torch.nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        self.s.scale = h.abs().mean()  # the coupling, in the model's forward, through s's attribute
        return self.head(self.s(h))


class _Rows(torch.nn.Module):
    def forward(self, h):
        return h, torch.arange(h.shape[0])  # each row's place, to scatter results back


class _Capacity(torch.nn.Module):
    def forward(self, h):
        return h * (torch.arange(h.shape[0]) < 1).unsqueeze(1)  # room for the first sample only


class _Scattered(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.rows, self.cap, self.head = torch.nn.Linear(4, 4), _Rows(), _Capacity(), torch.nn.Linear(4, 2)

    def forward(self, x):
        h, where = self.rows(self.fc(x))
        return self.head(torch.zeros_like(h).index_copy(0, where, self.cap(h)))


def test_the_code_named_is_the_forward_running_then():
    # The shared module's second call is inside the block: the centring is the block's code.
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(_built(_SharedNorm), x, x[1:2], torch.tensor([1]))
    assert lines[0] == (
        "where it starts: in the code of block's forward (_Block) after norm, whose output agrees, before norm "
        "(call 2), whose inputs for sample 1 already differ:"
    ), lines


def test_a_module_coupled_through_what_its_parent_sets_is_not_named():
    # s, called on its own, does not give what the run recorded (its scale was set by the
    # model's forward): it is not named, and no place is claimed.
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert _placed(_built(_SetByParent), x, x[1:2], torch.tensor([1])) == []


def test_row_indices_are_not_taken_for_a_coupling():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    lines = _placed(_built(_Scattered), x, x[1:2], torch.tensor([1]))
    assert re.match(r"where it starts: cap \(\S*_Capacity\) — its inputs for sample 1 agree", lines[0]), lines


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage")
def test_the_diagnosis_never_breaks_the_check():
    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.spec import Spec
    from dyncheck.strategies import attention_masks, tensors
    from dyncheck.target import resolve_spec

    # nn.TransformerEncoder's eval fast path hands nested tensors to its layers under a
    # padding mask; they cannot be cut to a sample. The check still reports its finding.
    class Encoded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.encoder, self.head = torch.nn.TransformerEncoder(layer, 2), torch.nn.Linear(8, 4)

        def forward(self, x, mask):
            h = self.encoder(x, src_key_padding_mask=mask)
            return self.head(h - h.mean(0, keepdim=True))

    spec = Spec(Encoded, inputs={"x": tensors(shape=("batch", "time", 8)), "mask": attention_masks(marks="padding", dtype=torch.bool)})
    context = Context(resolve_spec(spec))
    mask = torch.tensor([[False, False, True], [False, False, False]])
    args = {"x": torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0)), "mask": mask}
    with pytest.raises(InvariantViolation) as raised:
        BatchInvariance().check(context, Example(args, 0, {"batch": 2, "time": 3}))
    assert raised.value.details[0].startswith(
        "where it starts: before head, whose inputs for sample 0 already differ: in forward's own code after "
        "encoder, whose output agrees, or in encoder.layers"
    ), raised.value.details


def test_lengths_drawn_longest_first_are_permuted_only_among_equal_lengths():
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.batch_invariance import _sorted_order
    from dyncheck.target import resolve

    context = Context(resolve("reference_models.caption_decoder:CaptionDecoder"))
    # Rows of equal length change places; the lengths stay longest first.
    for seed in range(5):
        order = _sorted_order(context, {"lengths": torch.tensor([5, 3, 3, 3, 1])}, 5, seed)
        assert order is not None and order.tolist()[0] == 0 and order.tolist()[4] == 4
        assert sorted(order.tolist()[1:4]) == [1, 2, 3] and order.tolist() != [0, 1, 2, 3, 4]
    # Every length differs: no other order is one the model takes.
    assert _sorted_order(context, {"lengths": torch.tensor([5, 3, 1])}, 3, 0) is None
    # Lengths in any order: any permutation, never the identity.
    context = Context(resolve("reference_models.rnn:DynamicRNN"))
    assert _sorted_order(context, {"seq_lengths": torch.tensor([5, 3, 1])}, 3, 0).tolist() != [0, 1, 2]


def test_a_model_taking_lengths_longest_first_is_checked_and_says_what_was_not_permuted(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.caption_decoder:CaptionDecoder",
                       "--dyncheck-invariants=batch_invariance", "--dyncheck-max-examples=40")
    assert run.outcomes() == {"dyncheck::reference_models.caption_decoder:CaptionDecoder::batch_invariance": "PASSED"}
    assert re.search(
        r"on \d+ examples? the batch was not permuted: its lengths all differ, and they are drawn longest first "
        r"\(descending=True\), the only order the model takes", run.text,
    ), run.text


def test_a_dict_of_inputs_is_cut_entry_by_entry(dyncheck_run, pytester):
    # A dict batch whose model scales by the batch's mean magnitude: caught sample by sample,
    # as the same model taking a tensor is; the correct dict model passes.
    pytester.makepyfile(
        dict_models="""
        import torch
        from torch import nn

        class Scaled(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, batch):
                h = self.fc(batch["x"])
                return h / (1.0 + h.abs().mean())

        class Plain(Scaled):
            def forward(self, batch):
                return self.fc(batch["x"])
        """
    )
    run = dyncheck_run(
        "--dyncheck", "dict_models:Scaled", "--dyncheck", "dict_models:Plain",
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1",
    )
    assert run.outcomes() == {
        "dyncheck::dict_models:Scaled::batch_invariance": "FAILED",
        "dyncheck::dict_models:Plain::batch_invariance": "PASSED",
    }, run.text
    lines = run.failure("dict_models:Scaled::batch_invariance").strip().splitlines()
    assert re.match(r"(sample \d+ differs from the same sample run alone|permuting the batch)", lines[2]), lines
    assert lines[3].startswith("  where it starts: in forward's own code after fc: the output of every module"), lines
    # the way out when the coupling is meant, and what to do when it is not
    assert lines[4].startswith("  If the batch is meant to couple its samples (experts' capacity shared"), lines
    assert lines[4].endswith(
        "Spec(tolerances={'batch_invariance': {'rtol': ..., 'atol': ...}}); else compute each sample from its own row only."
    )
    # (a line saying how large the first failure was may come between, where it shrank)
    example = next(line for line in lines[5:] if line.startswith("  example:"))
    assert re.fullmatch(r"  example:  batch\['x'\] float32\[[2-4], 4\].*, seed=\d+", example), lines


VIEW_LISTS = """
import dyncheck
from hypothesis import strategies as st
from dyncheck.strategies import tensors
from reference_models.two_views import TwoViewContrast
import torch
from reference_models.buggy.normalised_over_batch import Model as OverBatch

def views(shape):
    return {"views": st.lists(tensors(shape=shape), min_size=2, max_size=3)}

good = dyncheck.Spec(TwoViewContrast, inputs=views(("batch", 6)))
bad = dyncheck.Spec(OverBatch, inputs=views(("batch", 6)))
# elements of 3 rows that name no batch axis: not cut, by a size that happens to match or otherwise
unnamed = dyncheck.Spec(TwoViewContrast, inputs=views((3, 6)), dims={"batch": (3, 3)})


class SampleMajor(TwoViewContrast):
    # each sample's views together, [batch * views, features]
    def forward(self, views):
        return torch.stack([self.embed(view) for view in views], 1).flatten(0, 1)


class ViewMajor(TwoViewContrast):
    # each view's batch in turn, [views * batch, features]
    def forward(self, views):
        return torch.cat([self.embed(view) for view in views])


class ViewMajorOverBatch(ViewMajor):
    def embed(self, view):
        return torch.nn.functional.normalize(self.encoder(view), dim=0)


sample_major = dyncheck.Spec(SampleMajor, inputs=views(("batch", 6)))
view_major = dyncheck.Spec(ViewMajor, inputs=views(("batch", 6)))
view_major_bad = dyncheck.Spec(ViewMajorOverBatch, inputs=views(("batch", 6)))
"""


def test_a_list_of_batches_is_cut_element_by_element_on_each_ones_batch_axis(dyncheck_run, pytester):
    pytester.makepyfile(view_lists=VIEW_LISTS)
    run = dyncheck_run(
        *(f"--dyncheck=view_lists:{name}" for name in ("good", "bad", "unnamed")),
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {
        "dyncheck::view_lists:good::batch_invariance": "PASSED",
        "dyncheck::view_lists:bad::batch_invariance": "FAILED",
        "dyncheck::view_lists:unnamed::batch_invariance": "SKIPPED",
    }, run.text
    lines = run.failure("view_lists:bad::batch_invariance").strip().splitlines()
    assert re.fullmatch(r"  example:  views\[0\] float32\[[2-4], 6\].*, views\[1\] float32\[[2-4], 6\].*", lines[5]), lines
    assert run.vacuous_reason("dyncheck::view_lists:unnamed::batch_invariance") == (
        "no batch axis: views holds tensors, and no strategy says which axis of theirs is the batch; for a batch "
        'in each (views of the samples) name it, e.g. Spec(inputs={"views": lists(tensors(shape=("batch", 6)), '
        "min_size=2)}); for a sample in each, draw sequence_lists(feature_shape=(6,))"
    )


def test_an_output_of_a_batch_per_view_is_read_in_either_order(dyncheck_run, pytester):
    # [views * batch, ...] or [batch * views, ...]: both were skipped as a flattened batch.
    pytester.makepyfile(view_lists=VIEW_LISTS)
    run = dyncheck_run(
        *(f"--dyncheck=view_lists:{name}" for name in ("sample_major", "view_major", "view_major_bad")),
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=2", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {
        "dyncheck::view_lists:sample_major::batch_invariance": "PASSED",
        "dyncheck::view_lists:view_major::batch_invariance": "PASSED",
        "dyncheck::view_lists:view_major_bad::batch_invariance": "FAILED",
    }, run.text
    assert "differs from the same sample run alone" in run.failure("view_lists:view_major_bad::batch_invariance")


def test_a_tuple_in_a_dict_of_inputs_is_cut_member_by_member(dyncheck_run, pytester):
    # batch["hidden"] is an LSTM's (h_0, c_0), batch second: each member is cut on its own axis.
    pytester.makepyfile(
        dict_state="""
        import torch
        from torch import nn

        class Carried(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(20, 8)
                self.lstm = nn.LSTM(8, 8, batch_first=True)

            def forward(self, batch):
                return self.lstm(self.emb(batch["tokens"]), self.start(batch["hidden"]))[0]

            def start(self, hidden):
                return hidden

        class Averaged(Carried):
            def start(self, hidden):
                h, c = hidden
                return h, c.mean(1, keepdim=True).expand_as(c).contiguous()
        """
    )
    run = dyncheck_run(
        "--dyncheck", "dict_state:Carried", "--dyncheck", "dict_state:Averaged",
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {
        "dyncheck::dict_state:Carried::batch_invariance": "PASSED",
        "dyncheck::dict_state:Averaged::batch_invariance": "FAILED",
    }, run.text
    assert "differs from the same sample run alone" in run.failure("dict_state:Averaged::batch_invariance")


def test_a_named_tuple_of_states_is_cut_member_by_member(dyncheck_run, pytester):
    # sb3-contrib's RNNStates(pi=(h, c), vf=(h, c)): a NamedTuple was not cut, the sample
    # alone met the whole batch's state and raised, a false failure; cut, it keeps its type
    # (forward reads lstm_states.pi)
    pytester.makepyfile(
        named_states="""
        from typing import NamedTuple

        import torch
        from hypothesis import strategies as st
        from torch import nn

        import dyncheck
        from dyncheck.strategies import tensors

        class RNNStates(NamedTuple):
            pi: tuple
            vf: tuple

        class Policy(nn.Module):
            def __init__(self):
                super().__init__()
                self.actor, self.critic = nn.LSTM(4, 8), nn.LSTM(4, 8)

            def forward(self, obs, lstm_states):
                pi, _ = self.actor(obs, self.start(lstm_states.pi))
                vf, _ = self.critic(obs, lstm_states.vf)
                return pi + vf

            def start(self, state):
                return state

        class Averaged(Policy):
            def start(self, state):
                h, c = state
                return h.mean(1, keepdim=True).expand_as(h).contiguous(), c

        _h = tensors(shape=(1, "batch", 8), min_value=-1.0, max_value=1.0)
        _states = st.builds(RNNStates, st.tuples(_h, _h), st.tuples(_h, _h))
        _obs = tensors(shape=("time", "batch", 4))
        good = dyncheck.Spec(Policy, inputs={"obs": _obs, "lstm_states": _states})
        bad = dyncheck.Spec(Averaged, inputs={"obs": _obs, "lstm_states": _states})
        """
    )
    run = dyncheck_run(
        "--dyncheck", "named_states:good", "--dyncheck", "named_states:bad",
        "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=2", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {
        "dyncheck::named_states:good::batch_invariance": "PASSED",
        "dyncheck::named_states:bad::batch_invariance": "FAILED",
    }, run.text
    assert "differs from the same sample run alone" in run.failure("named_states:bad::batch_invariance")


def test_a_declared_batch_coupling_is_a_skip(dyncheck_run, pytester):
    pytester.makepyfile(
        coupled="""
        import dyncheck
        from reference_models.buggy.batch_mean_branch import Model

        spec = dyncheck.Spec(Model, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                             skip={"batch_invariance": "normalises by batch statistics on purpose"})
        """
    )
    run = dyncheck_run("--dyncheck", "coupled:spec", "--dyncheck-invariants=batch_invariance")
    run.result.assert_outcomes(skipped=1)


def test_tolerances_from_pyproject(dyncheck_run, pytester):
    pytester.makepyprojecttoml("[tool.dyncheck.dtype_agreement]\nrtol = 0.0\natol = 0.0\n")
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--dyncheck-invariants=dtype_agreement")
    assert "(up to 0 allowed)" in run.failure("::dtype_agreement")


def test_rtol_without_atol_is_a_usage_error(dyncheck_run, pytester):
    pytester.makepyprojecttoml("[tool.dyncheck.dtype_agreement]\nrtol = 1e-3\n")
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "[tool.dyncheck.dtype_agreement] gives rtol alone; give rtol and atol together" in run.text


@pytest.mark.skipif(not hasattr(torch.backends, "fp32_precision"), reason="torch < 2.9 has only allow_tf32")
def test_tolerances_for_an_invariant_without_them_is_a_usage_error(dyncheck_run, pytester):
    pytester.makepyprojecttoml("[tool.dyncheck.dtype_agreemnt]\nrtol = 1e-3\natol = 1e-4\n")
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "[tool.dyncheck.dtype_agreemnt] sets tolerances, but dtype_agreemnt takes none; did you mean "
        "[tool.dyncheck.dtype_agreement]? the invariants with tolerances are batch_invariance, "
        "compile_agreement, device_agreement, dtype_agreement"
    ) in run.text
    assert "Traceback" not in run.text


def test_a_tolerance_override_loosens_too(dyncheck_run, pytester):
    # The perturbed "device" moves outputs by 1e-3: an override of 1e-2 accepts it.
    target = "reference_models.gated:DynamicNet"
    args = ("--dyncheck", target, "--dyncheck-invariants=device_agreement", "--dyncheck-seed=3",
            f"--dyncheck-devices=cpu,{PERTURBED}:NUMERIC")
    assert dyncheck_run(*args).outcomes() == {f"dyncheck::{target}::device_agreement": "FAILED"}
    pytester.makepyprojecttoml("[tool.dyncheck.device_agreement]\nrtol = 1e-2\natol = 1e-2\n")
    assert dyncheck_run(*args).outcomes() == {f"dyncheck::{target}::device_agreement": "PASSED"}


def test_tf32_is_off_inside_and_restored():
    from dyncheck.agreement import _precision_settings, tf32_disabled

    # A user who chose TF32 with the current API (mixing it with allow_tf32 raises).
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    try:
        before = [getattr(owner, name) for owner, name in _precision_settings()]
        with tf32_disabled():
            assert {getattr(owner, name) for owner, name in _precision_settings()} == {"ieee"}
            assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert [getattr(owner, name) for owner, name in _precision_settings()] == before
    finally:
        torch.backends.cuda.matmul.fp32_precision = "none"


def test_compile_agreement_is_opt_in(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--co", "-q")
    assert "compile_agreement" not in run.text


@pytest.mark.usefixtures("compilation_loaded")
def test_compile_agreement_both_ways(dyncheck_run):
    # One run for both targets: the first compilation is the slow part.
    good, bad = "reference_models.gated:DynamicNet", "reference_models.buggy.compile_divergence:Model"
    run = dyncheck_run("--dyncheck", good, "--dyncheck", bad, "--dyncheck-invariants=compile_agreement",
                       "--dyncheck-max-examples=2", "-W", "ignore")
    assert run.outcomes() == {
        f"dyncheck::{good}::compile_agreement": "PASSED",
        f"dyncheck::{bad}::compile_agreement": "FAILED",
    }, run.text
    lines = run.failure("compile_divergence:Model::compile_agreement").strip().splitlines()
    assert lines[2] == "eager and compiled disagree (2 differences):"
    assert lines[3].startswith("  - output differs on torch.compile from eager: Mismatched elements")
    assert re.fullmatch(r"  - fc\.(weight|bias)\.grad differs on torch\.compile from eager: Mismatched elements.*", lines[4])
    # gated.py's `if control > 0.5:` is a data-dependent branch: dynamo breaks the graph there.
    assert re.search(
        r"compiled fc1 → f\S+( → fc3)?: \d+ graph\(s\) compiled, 1 new graph break\(s\): "
        r"gated\.py:40 Data-dependent branching",
        run.text,
    ), run.text


CONSTANT_ROWS = """
import torch
from hypothesis import strategies as st
import dyncheck
from reference_models.norm_encoder import NormEncoder

spec = dyncheck.Spec(NormEncoder, inputs={"x": st.just(torch.full((1, 4, 8), 1000.0))})
"""


EXACT_DEVICE = '''
import torch
from torch import nn
from dyncheck.agreement import Config


class _Float64Inside(nn.Module):
    """The model computed in float64 from its float32 weights, the result cast back: a
    "device" whose kernels round less than the CPU's float32 ones, and otherwise correct."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        state = {name: t.double() if t.is_floating_point() else t
                 for name, t in [*self.model.named_parameters(), *self.model.named_buffers()]}
        return torch.func.functional_call(self.model, state, (x.double(),)).float()


EXACT = Config("cpu (float64 inside)", "cpu", patch=_Float64Inside)
'''


def test_a_device_that_rounds_otherwise_agrees_where_float32_itself_is_that_far_off(dyncheck_run, pytester):
    # The constant rows again: the CPU's float32 gradients are 0.8 from float64's, and a
    # device that rounds less is that far from the CPU. The CPU's own distance from a float64
    # copy explains it; a configured tolerance is taken as it is. (A device that computes
    # something else still fails: the perturbed devices above.)
    pytester.makepyfile(constant=CONSTANT_ROWS, exactdev=EXACT_DEVICE)
    args = ("--dyncheck", "constant:spec", "--dyncheck-invariants=device_agreement",
            "--dyncheck-devices=cpu,exactdev:EXACT", "--dyncheck-max-examples=1")
    item = "dyncheck::constant:spec::device_agreement"
    assert dyncheck_run(*args).outcomes() == {item: "PASSED"}
    pytester.makepyprojecttoml("[tool.dyncheck.device_agreement]\nrtol = 1.3e-6\natol = 1e-5\n")
    run = dyncheck_run(*args)
    assert run.outcomes() == {item: "FAILED"}, run.text
    assert "The devices disagree" in run.failure("device_agreement"), run.text



CANCELLING_DEVICE = """
import torch
from hypothesis import strategies as st
from torch import nn
import dyncheck
from dyncheck.agreement import Config


class Cancelling(nn.Module):
    \"\"\"A ReLU unit whose input sums 1 - 1 + 2e-8: in this order float32 gets 2e-8, as float64
    does; summed the other way round (as another device's kernel may) 1 + (-1 + 2e-8) rounds
    to 0, the ReLU's other side.\"\"\"

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.reorder = False

    def forward(self, x):
        a = self.w[0] * x[:, 0]
        h = a + (x[:, 1] + x[:, 2]) if self.reorder else (a + x[:, 1]) + x[:, 2]
        return torch.relu(torch.stack([h, self.w[1] * x[:, 0]], 1)) * 2


def reordered(model):
    model.reorder = True
    return model


spec = dyncheck.Spec(Cancelling, inputs={"x": st.just(torch.tensor([[1.0, -1.0, 2e-8]]))})
REORDERED = Config("cpu (summed otherwise)", "cpu", patch=reordered)
"""


def test_a_relu_whose_side_the_devices_rounding_decides_is_not_a_finding(dyncheck_run, pytester, monkeypatch):
    # The second device puts the unit on the ReLU's other side: w[0]'s gradient differs by its
    # whole value, and the first device's float32 is as close to float64 as can be (no margin).
    # The second device taking the first's side of that kink explains all of it.
    from dyncheck.invariants.device_agreement import DeviceAgreement

    pytester.makepyfile(cancelling=CANCELLING_DEVICE)
    args = ("--dyncheck", "cancelling:spec", "--dyncheck-invariants=device_agreement",
            "--dyncheck-devices=cpu,cancelling:REORDERED", "--dyncheck-max-examples=1")
    item = "dyncheck::cancelling:spec::device_agreement"
    assert dyncheck_run(*args).outcomes() == {item: "PASSED"}
    monkeypatch.setattr(DeviceAgreement, "_kinks", staticmethod(lambda *args, **kwargs: None))
    run = dyncheck_run(*args)
    assert run.outcomes() == {item: "FAILED"}, run.text
    assert "w.grad differs on cpu (summed otherwise) from cpu" in run.failure("device_agreement"), run.text

@pytest.mark.usefixtures("compilation_loaded")
def test_compiled_rounding_that_eager_float32_shares_is_not_a_finding(dyncheck_run, pytester):
    # LayerNorm over a constant row: its variance is rounding, and eager and compiled
    # kernels (fused, reordered) round it otherwise, so their gradients differ by far more
    # than float32's tolerance; eager float32 is as far from a float64 copy, so the
    # difference is float32's, not the compiler's. A configured tolerance is taken as it is
    # (here float32's defaults): then the difference is reported. (A compiled path that
    # computes something else fails either way: test_compile_agreement_both_ways.)
    pytester.makepyfile(constant=CONSTANT_ROWS)
    args = ("--dyncheck", "constant:spec", "--dyncheck-invariants=compile_agreement",
            "--dyncheck-max-examples=1", "-W", "ignore")
    item = "dyncheck::constant:spec::compile_agreement"
    assert dyncheck_run(*args).outcomes() == {item: "PASSED"}
    pytester.makepyprojecttoml("[tool.dyncheck.compile_agreement]\nrtol = 1.3e-6\natol = 1e-5\n")
    run = dyncheck_run(*args)
    assert run.outcomes() == {item: "FAILED"}, run.text
    assert "eager and compiled disagree" in run.failure("compile_agreement"), run.text


def test_batch_axes_of_a_time_major_model_whose_time_equals_its_batch():
    # x is [time, batch, 8] and the output [time, batch, classes] with time == batch == 3:
    # the strategy's names tell the input's axes apart, the sample alone the output's.
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.target import resolve

    target = resolve("reference_models.time_major_gru:GRUTagger")
    x = torch.linspace(-2, 2, 3 * 3 * 8).reshape(3, 3, 8)
    example = Example({"x": x, "lengths": torch.tensor([1, 3, 2])}, 0, {"time": 3, "batch": 3})
    BatchInvariance().check(Context(target), example)  # raises InvariantViolation if misread


NOISY = """
import torch
from torch import nn


class Model(nn.Module):
    '''Adds noise drawn on the input's device, in eval mode too.'''

    def __init__(self, input_size=4, output_size=3):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x):
        return self.fc(x) + 0.1 * torch.randn(x.shape[0], 3, device=x.device)
"""


def test_another_random_stream_changes_nothing_for_a_model_that_draws_none(dyncheck_run):
    target = "reference_models.gated:DynamicNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=device_agreement",
                       f"--dyncheck-devices=cpu,{PERTURBED}:OTHER_STREAM")
    assert run.outcomes() == {f"dyncheck::{target}::device_agreement": "PASSED"}, run.text


def test_a_model_drawing_on_its_device_is_told_why_the_devices_disagree(dyncheck_run, pytester):
    pytester.makepyfile(noisy=NOISY)
    run = dyncheck_run("--dyncheck", "noisy:Model", "--dyncheck-invariants=device_agreement",
                       f"--dyncheck-devices=cpu,{PERTURBED}:OTHER_STREAM")
    lines = lines_of(run, "noisy:Model", "device_agreement")
    assert lines[2].startswith("output differs on cpu (another random stream) from cpu: Mismatched elements")
    assert lines[3] == "  The model draws random numbers even in eval mode (another seed changes its output on the first " \
        "device), and each device's generator gives its own stream from one seed: draw on the CPU and move " \
        "the result (torch.randn(shape).to(x.device)) so the devices agree, or declare " \
        "Spec(skip={'device_agreement': ...})."
    # A deterministic model's disagreement carries no such note.
    numeric = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--dyncheck-invariants=device_agreement",
                           f"--dyncheck-devices=cpu,{PERTURBED}:NUMERIC")
    assert "draws random numbers" not in numeric.text


def test_a_path_divergence_that_changes_nothing_is_the_same_answer():
    # A row of 1000s saturates the router: float32's second and third gates are both exactly
    # 0.0, so topk picks its second expert among equal zeros while float64 picks by the tiny
    # gates it still has. The paths differ, the outputs and gradients do not.
    from dyncheck.agreement import compare, run_config
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import FLOAT32, FLOAT64, DtypeAgreement
    from dyncheck.target import resolve

    target = resolve("reference_models.top_two_moe:TopTwoMoE")
    context = Context(target)
    x = torch.zeros(2, 8)
    x[0] = 1000.0
    example = Example({"x": x}, 0, {"batch": 2})
    reference = run_config(context.fresh_model(), target, example, FLOAT64)
    single = run_config(context.fresh_model(), target, example, FLOAT32)
    assert reference.path != single.path
    assert compare(reference, single, floor=DtypeAgreement.floor, model=reference.model) == []


# --- the fused comparison answers as the per-tensor one does --------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALUES = st.one_of(
    st.floats(-10, 10, width=32),
    st.sampled_from([0.0, float("nan"), float("inf"), -float("inf")]),
)


@st.composite
def _pairs(draw):
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        size = draw(st.integers(0, 5))
        expected = torch.tensor(draw(st.lists(_VALUES, min_size=size, max_size=size)), dtype=torch.float64)
        noise = torch.tensor(draw(st.lists(st.sampled_from([0.0, 1e-9, 1e-5, 1e-3, 1.0]), min_size=size, max_size=size)))
        actual = (expected + noise).to(draw(st.sampled_from([torch.float32, torch.float64])))
        tolerance = (draw(st.sampled_from([0.0, 1.3e-6, 1e-3])), draw(st.sampled_from([0.0, 1e-5, 1e-2])))
        pairs.append((actual, expected, tolerance))
    return pairs


@given(_pairs())
def test_the_fused_comparison_agrees_with_comparing_each_tensor(pairs):
    from dyncheck.agreement import _all_within
    from dyncheck.compare import mismatch

    each = [
        mismatch(a.to(torch.float64), e, rtol=rtol, atol=atol) for a, e, (rtol, atol) in pairs
    ]
    finite = all(bool(torch.isfinite(a).all() and torch.isfinite(e).all()) for a, e, _ in pairs)
    if _all_within(pairs):
        assert each == [[]] * len(pairs)
    elif finite:  # with a NaN or inf it only says "look at each one"
        assert any(each)


def test_the_fused_comparison_goes_in_pieces(monkeypatch):
    # A big model's gradients are compared a few at a time, never all copied at once.
    import dyncheck.agreement as agreement

    monkeypatch.setattr(agreement, "_CHUNK", 4)
    seen = []
    cat = torch.cat
    monkeypatch.setattr(agreement.torch, "cat", lambda tensors: seen.append(sum(t.numel() for t in tensors)) or cat(tensors))
    pairs = [(torch.ones(2), torch.ones(2, dtype=torch.float64), (0.0, 0.0))] * 5
    assert agreement._all_within(pairs)
    assert seen and max(seen) == 4
    assert not agreement._all_within([*pairs, (torch.zeros(2), torch.ones(2, dtype=torch.float64), (0.0, 0.5))])
    assert agreement._scale(torch.full((3,), -7.0), torch.ones(3)) == 7.0
    # A tensor compared alone works in place only on its own float64 copy, never on the run's.
    actual = torch.full((6,), 2.0, dtype=torch.float64)
    assert not agreement._all_within([(actual, torch.ones(6, dtype=torch.float64), (0.0, 0.5))])
    assert torch.equal(actual, torch.full((6,), 2.0, dtype=torch.float64))


def test_batch_versus_alone_rounding_of_a_cancelling_sum_is_not_a_finding():
    # A correct top-1 mixture of experts: a sample's expert sees a batch of one alone and a
    # batch of two in the batch, and the matrix products round in another order. With inputs
    # in the hundreds that cancel, float32 lies 6e-4 from float64 on this row, so the two
    # float32 results differ by 1.1e-3: past the default tolerance (1e-3 at this magnitude) and
    # past what a one-ulp move of the row's inputs changes, but a tenth of what float32's own
    # distance from float64 explains.
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.target import resolve

    context = Context(resolve("reference_models.routing:TopOneMoE"))
    x = torch.tensor([[0.0] * 8, [-821.0, 899.0, -804.0, 381.0, 169.0, 4.0, -779.0, 2.5]])
    with context.counting():
        BatchInvariance().check(context, Example({"x": x}, 0, {"batch": 2}))
    assert context.checked == 1  # compared, and held


def test_batch_versus_alone_rounding_of_a_model_that_draws_its_branch_is_not_a_finding():
    # The founding Paddle model draws its branch (torch.rand([1]) > 0.5): the float64 copy
    # that measures float32's rounding draws too, and the draws are lined up with the float32
    # copy's, so the margin still applies. Inputs near 1e3 cancel to an output of 0.27, which
    # rounds by 1.1e-5 between a batch of three and the row alone (1e-5 allowed).
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.target import resolve

    context = Context(resolve("reference_models.paddle_branch:MyModel"))
    row = [35.34994125366211, -426.78125, 0.0, 369.5, -479.94171142578125, 994.109375, 365.875, 735.0]
    inputs = torch.tensor([row, [0.0] * 8, [0.0] * 8])
    with context.counting():
        BatchInvariance().check(context, Example({"inputs": inputs}, 435, {"batch": 3}))
    assert context.checked == 1


class _PlainGroupMatrix(nn.Module):
    """Row-wise; its two heads nearly equal, so their difference cancels; its feature matrix
    kept in a plain attribute, as pytorch-tabnet keeps its group matrices."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 32)
        self.head_a = nn.Linear(32, 3)
        self.head_b = nn.Linear(32, 3)
        with torch.no_grad():
            self.head_b.weight.copy_(self.head_a.weight * (1 + 1e-4))
        self.matrix = torch.eye(32)

    def forward(self, x):
        h = torch.relu(self.fc(x)) @ self.matrix
        return self.head_a(h) - self.head_b(h)


def test_batch_rounding_is_measured_against_float64_where_to_misses_a_plain_attribute():
    # .to(float64) leaves the plain matrix float32 and the cast copy raises (dtype_agreement
    # reports that): batch_invariance had no float64 margin then, and called a batch-versus-
    # alone rounding of 2.3e-5 (1e-5 allowed) a batch dependence. Its float64 reference now
    # casts the attribute too.
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    context = Context(resolve_spec(Spec(_PlainGroupMatrix)))
    x = torch.tensor([[0.0] * 6, [-7.0, 536.0, -823.0, -736.0, -385.0, 268.0]])
    with context.counting():
        BatchInvariance().check(context, Example({"x": x}, 0, {"batch": 2}))
    assert context.checked == 1


def test_a_widened_copy_casts_the_tensors_its_modules_keep_in_plain_attributes():
    from dyncheck.casting import widened

    model = _PlainGroupMatrix()
    model.tables = [torch.ones(2), (torch.zeros(1), 3)]
    model.named = {"scale": torch.ones(1), "steps": torch.arange(3)}
    model.spectrum = torch.ones(2, dtype=torch.complex64)
    original = (model.matrix, model.tables, model.named)
    wide = widened(model, torch.float64)
    assert wide is model and wide.fc.weight.dtype == torch.float64 and wide.matrix.dtype == torch.float64
    assert wide.tables[0].dtype == torch.float64 and wide.tables[1][0].dtype == torch.float64 and wide.tables[1][1] == 3
    assert wide.named["scale"].dtype == torch.float64 and wide.named["steps"].dtype == torch.long
    assert wide.spectrum.dtype == torch.complex128
    # replaced, never written into: a tensor the user's model shares is left as it was
    assert original[0].dtype == torch.float32 and original[1][0].dtype == torch.float32
    assert original[2]["scale"].dtype == torch.float32
    assert wide(torch.ones(2, 6, dtype=torch.float64)).dtype == torch.float64


GRID = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import tensors


class GridReadout(nn.Module):
    # a neural ODE's readout at each time of a grid the batch shares: [steps, batch, 2]

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x, t):
        return self.fc(x[None] * torch.exp(-(t - t[0]))[:, None, None])


spec = dyncheck.Spec(
    GridReadout,
    inputs={"x": tensors(shape=("batch", 4)), "t": tensors(shape=("steps",), min_value=0.0, max_value=2.0)},
    dims={"batch": (2, 3), "steps": (2, 3)},
)
"""


def test_an_input_whose_named_shape_has_no_batch_is_never_cut(dyncheck_run, pytester):
    # torchdiffeq's time grid t: where its length equalled the batch's size, each sample was
    # run alone with one time of the grid, and batch_invariance failed a correct model.
    pytester.makepyfile(grid=GRID)
    run = dyncheck_run("--dyncheck", "grid:spec", "--dyncheck-invariants=batch_invariance", "--dyncheck-max-examples=20")
    assert run.outcomes() == {"dyncheck::grid:spec::batch_invariance": "PASSED"}, run.text


# --- an output pairing every sample with every other ------------------------------------


def test_a_pairwise_output_is_compared_on_its_diagonal():
    from dyncheck.invariants.batch_invariance import _output_batch_axis, _select, pairwise_axes

    whole, alone = torch.randn(3, 3), torch.randn(1, 1)
    assert pairwise_axes(whole, alone, 3) == (0, 1) and _output_batch_axis(whole, alone, 3) == (0, 1)
    assert _select(whole, (0, 1), torch.tensor([2])).item() == whole[2, 2].item()
    order = torch.tensor([2, 0, 1])
    assert torch.equal(_select(whole, (0, 1), order), whole[order][:, order])
    # a per-sample output, and one whose other axes differ, are not pairwise
    assert pairwise_axes(torch.randn(3, 5), torch.randn(1, 5), 3) is None
    assert pairwise_axes(torch.randn(3, 3, 4), torch.randn(1, 1, 2), 3) is None


def test_a_pass_on_a_pairwise_output_says_only_its_diagonal_was_compared(dyncheck_run):
    # A two-tower model's [batch, batch] in-batch logits passed with nothing said of how they
    # were read: each sample with itself only.
    run = dyncheck_run(
        "--dyncheck", "reference_models.two_tower:TwoTower", "--dyncheck-invariants=batch_invariance",
        "--dyncheck-max-examples=10",
    )
    assert run.outcomes() == {"dyncheck::reference_models.two_tower:TwoTower::batch_invariance": "PASSED"}, run.text
    assert re.search(
        r"pairs every sample with every other \(\[batch, batch\], as in-batch negatives' logits\): only its "
        r"diagonal, each sample with itself, was compared with the sample alone \(the pairs between samples are "
        r"coupled by design; \d+ examples?\)", run.text
    ), run.text


OWN_GENERATOR = """
import torch
from torch import nn


class Model(nn.Module):
    '''Samples a token per row at inference from a generator seeded in forward: the rows draw
    from one stream in turn, so a row's token depends on its place in the batch.'''

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        generator = torch.Generator().manual_seed(0)
        probs = self.head(x).softmax(-1)
        return torch.multinomial(probs, 4, replacement=True, generator=generator)
"""


def test_draws_from_a_generator_of_its_own_are_named(dyncheck_run, pytester):
    # dyncheck's seed does not reach the generator, so "another seed changes the output" does
    # not hold; the failure blamed batch statistics and capacity before.
    pytester.makepyfile(owngen=OWN_GENERATOR)
    run = dyncheck_run("--dyncheck", "owngen:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::owngen:Model::batch_invariance": "FAILED"}, run.text
    text = run.failure("owngen:Model::batch_invariance")
    assert (
        "The model draws random numbers in eval mode from a generator of its own (multinomial with generator=...)"
        in text
    ), text
    assert "say so with Spec(skip=" not in text  # the by-design line is for couplings, not draws


ADAPTIVE = """
import torch
from torch import nn


class Adaptive(nn.Module):
    # steps until the whole batch settles, as an adaptive solver's error norm over the batch
    def __init__(self):
        super().__init__()
        self.step = nn.Linear(4, 4)

    def forward(self, x):
        h = x
        for _ in range(1 + int(x.abs().max().clamp(max=3))):
            h = h + 0.1 * torch.tanh(self.step(h))
        return h
"""


def test_a_sample_alone_on_another_path_is_said_so(dyncheck_run, pytester, verdicts_only):
    # torchdiffeq's dopri5 takes as many steps as the batch's error norm asks: the failure
    # named batch statistics, randomness and capacity limits, not the step counts that differ.
    pytester.makepyfile(adaptive=ADAPTIVE)
    run = dyncheck_run("--dyncheck", "adaptive:Adaptive", "--dyncheck-invariants=batch_invariance")
    text = run.failure("::batch_invariance")
    assert re.search(
        r"  paths: the batch took step ×\d; sample \d alone took step( ×\d)?: a branch or a loop count decided on "
        r"the whole batch \(an adaptive solver's step count", text,
    ), text


@pytest.mark.parametrize(("threshold", "verdict"), [("0", "PASSED"), ("h.mean(0, keepdim=True)", "FAILED")])
def test_a_bool_output_beside_the_features_is_compared(dyncheck_run, pytester, threshold, verdict):
    # A decision or a pooled mask returned beside the features (charformer's GBST): the
    # tolerance's scale took .abs() of it, and dyncheck itself raised on every example.
    pytester.makepyfile(decided=f"""
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(8, 4)

            def forward(self, x):
                h = self.proj(x)
                return h, h > {threshold}
        """)
    run = dyncheck_run("--dyncheck", "decided:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::decided:Model::batch_invariance": verdict}, run.text
    if verdict == "FAILED":
        assert "violated by decided:Model" in run.failure("::batch_invariance")


def test_a_sample_alone_outside_the_specs_batch_is_not_blamed_on_the_batch(dyncheck_run, pytester):
    # A state set up for a batch of 4 (torchtune's KVCache after setup_caches): a sample
    # alone raises, which read as samples depending on each other.
    pytester.makepyfile(fixed="""
        import torch
        from torch import nn
        import dyncheck

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)
                self.register_buffer("state", torch.zeros(4, 4))

            def forward(self, x):
                return self.fc(x) + self.state.expand(x.size(0), -1)

        spec = dyncheck.Spec(Model, dims={"batch": 4})
        """)
    run = dyncheck_run("--dyncheck", "fixed:spec", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::fixed:spec::batch_invariance": "SKIPPED"}, run.text
    assert run.skip_reason("dyncheck::fixed:spec::batch_invariance").startswith(
        "the spec fixes the batch at 4, and sample 0 alone (a batch of one) raises "
        "RuntimeError"
    ), run.text


def test_a_batch_range_the_spec_gives_still_shows_a_sample_alone_that_raises(dyncheck_run, pytester):
    # A BatchNorm without running statistics, its batch given as (2, 8): only a fixed batch
    # excuses a sample alone that raises.
    pytester.makepyfile(ranged="""
        from torch import nn

        class Model(nn.Module):
            __dyncheck__ = {"dims": {"batch": (2, 8)}}

            def __init__(self):
                super().__init__()
                self.fc, self.bn, self.out = nn.Linear(4, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.Linear(8, 2)

            def forward(self, x):
                return self.out(self.bn(self.fc(x)))
        """)
    run = dyncheck_run("--dyncheck", "ranged:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::ranged:Model::batch_invariance": "FAILED"}, run.text


def test_a_tie_a_batchs_rounding_decided_is_not_a_finding(dyncheck_run, pytester):
    # A mixture-of-depths routes each sequence's top tokens. Tokens that repeat in a row score
    # equally up to rounding, and the router's product rounds a row in a batch one ulp
    # otherwise than alone, so topk picked another of the equal tokens: batch_invariance
    # reported the batch's order as a dependence (0.182 apart) on this example at every seed.
    pytester.makepyfile(tie_spec="""
        import torch
        from hypothesis import strategies as st
        import dyncheck
        from reference_models.depth_router import MixtureOfDepths

        spec = dyncheck.Spec(MixtureOfDepths, inputs={"tokens": st.just(torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]))})
        """)
    run = dyncheck_run("--dyncheck", "tie_spec:spec", "--dyncheck-invariants=batch_invariance",
                       "--dyncheck-max-examples=2")
    assert run.outcomes() == {"dyncheck::tie_spec:spec::batch_invariance": "PASSED"}, run.text
    assert (
        "a tie not counted on 2 examples: permuting the batch does not permute output alike only where topk "
        "picked among scores equal up to rounding"
    ) in run.text
    # the top tokens of the whole batch differ from a row's own, tie or not
    run = dyncheck_run("--dyncheck", "reference_models.buggy.batch_topk_depth:Model",
                       "--dyncheck-invariants=batch_invariance", "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::reference_models.buggy.batch_topk_depth:Model::batch_invariance": "FAILED"}


def test_scores_equal_up_to_rounding_are_picked_alike_by_position():
    from dyncheck.ties import ConsistentTies, rounded

    # one ulp apart, either side of a cut at one offset, together at the other
    near = torch.tensor([-2.5, -2.5000002])
    assert rounded(near, 20, 0.0)[0] != rounded(near, 20, 0.0)[1]
    assert rounded(near, 20, 0.5)[0] == rounded(near, 20, 0.5)[1]
    # four ulps apart (the router's scores of one token in a batch and alone) tie within 8
    scores = torch.tensor([[0.031138747930526733, 0.03113873302936554, 0.01]])
    assert scores.topk(1).indices.item() == 0
    picked = set()
    for offset in (0.0, 0.5):
        with ConsistentTies(ulps=8, offset=offset) as ties:
            picked.add(scores.flip(-1).topk(1).indices.item())
        assert ties.used == 1
    assert 1 in picked  # the first of the tied pair by position, at one offset or both
    # 64 ulps apart is no tie
    apart = torch.tensor([[1.0, 1.0 + 64 * 2**-23]])
    for offset in (0.0, 0.5):
        with ConsistentTies(ulps=8, offset=offset):
            assert apart.topk(1).indices.item() == 1
    # the order of values that differ stays theirs
    values = torch.randn(1000)
    for offset in (0.0, 0.5):
        keys = rounded(values, 20, offset)[values.argsort()]
        assert bool((keys[1:] >= keys[:-1]).all())


def test_a_models_own_tolerance_is_used_for_it_alone(dyncheck_run, pytester, verdicts_only):
    # An adaptive ODE solver picks one step size for the batch: each sample moves with its
    # batch-mates by about the solver's tolerance, which batch_invariance reports at its own.
    # The model declares the tolerance it is built for (Spec(tolerances=...)); before, only
    # [tool.dyncheck.batch_invariance] could, for every model in the project at once.
    pytester.makepyfile(ode="""
        import dyncheck
        from reference_models.adaptive_ode import AdaptiveODEClassifier
        from reference_models.buggy.normalised_over_batch import Model as Normalised


        class Plain(AdaptiveODEClassifier):
            __dyncheck__ = {}


        loose = {"batch_invariance": {"rtol": 1e-2, "atol": 1e-3}}
        normalised = dyncheck.Spec(Normalised, tolerances=loose)
        """)
    args = ("--dyncheck-invariants=batch_invariance", "--dyncheck-max-examples=5", "--dyncheck-seed=1")
    run = dyncheck_run("--dyncheck", "ode:Plain", *args)
    assert run.outcomes() == {"dyncheck::ode:Plain::batch_invariance": "FAILED"}
    target = "reference_models.adaptive_ode:AdaptiveODEClassifier"
    run = dyncheck_run("--dyncheck", target, "--dyncheck", "ode:normalised", *args)
    assert run.outcomes() == {
        f"dyncheck::{target}::batch_invariance": "PASSED",
        # a coupling past the tolerance is still one
        "dyncheck::ode:normalised::batch_invariance": "FAILED",
    }, run.text
    assert "(up to 0.01 allowed)" in run.failure("ode:normalised::batch_invariance")
    run = dyncheck_run("--dyncheck", target, "--dyncheck-explain", "--co")
    assert "    tolerances={'batch_invariance': {'rtol': 0.01, 'atol': 0.001}}," in run.text


@pytest.mark.parametrize(("given", "says"), [
    ({"finite": {"rtol": 1e-3, "atol": 1e-4}}, "Spec(tolerances={'finite': ...}): 'finite' takes no tolerances"),
    ({"batch_invariance": {"rtol": 1e-3}}, "Spec(tolerances={'batch_invariance': {'rtol': 0.001}}) needs rtol and atol"),
    ({"batch_invariance": {"rtol": -1, "atol": 0}}, "needs rtol and atol, two numbers of 0 or more"),
])
def test_a_spec_tolerance_is_checked_when_written(given, says):
    from reference_models.gated import DynamicNet

    with pytest.raises(InvalidArgument) as excinfo:
        Spec(DynamicNet, tolerances=given)
    assert says in str(excinfo.value)


def test_an_example_whose_only_comparison_a_tie_set_aside_compared_nothing():
    # a tie is not a comparison: an example with nothing else compared is not counted as
    # checked, and says why (a pass must mean something was compared)
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.batch_invariance import _tie_note
    from dyncheck.target import resolve

    context = Context(resolve("reference_models.gated:DynamicNet"))
    with context.counting():
        _tie_note(context, "sample 1 differs from the same sample run alone", "topk")
    assert context.checked == 0
    [(reason, count)] = context.uncompared.items()
    assert count == 1 and reason.startswith("sample 1 differs from the same sample run alone only where topk picked")
    assert context.report["notes"] == [f"a tie not counted on 1 example: {reason}"]
