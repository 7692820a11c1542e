"""No vacuous passes: every check counts the examples it compared something on, the summary
shows it when that is not every example, and a check that compared nothing is a skip that
says what was missing and the Spec that supplies it."""

from __future__ import annotations

import re

import pytest

NONE_OUTPUT = "forward returned None: no output to check"

MODELS = """
import torch
from torch import nn
from hypothesis import strategies as st
import dyncheck
from dyncheck.strategies import sequence_lengths, tensors


def rows(width, low=1, high=3):
    '''A float32 [n, width] tensor, n drawn from low to high, in plain Hypothesis.'''
    return st.integers(low, high).flatmap(
        lambda n: st.lists(st.floats(-10, 10, width=32), min_size=n * width, max_size=n * width).map(
            lambda values: torch.tensor(values).reshape(n, width)
        )
    )


class RowWise(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.fc(x))


class Total(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x).sum()


class TimeMajor(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 5)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.gru(x)[0])


class Forgot(nn.Module):
    '''forward computes, and forgets to return.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        self.fc(x)


class Sometimes(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, give: bool):
        return self.fc(x) if give else None


class Labels(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x).argmax(-1)


class Ramp(nn.Module):
    def forward(self, n: int):
        return torch.linspace(0, 1, n)


class Jittery(nn.Module):
    '''Noise from a generator seeded by the OS, on some calls: not a function of its state.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, noisy: bool):
        h = self.fc(x)
        if noisy:
            generator = torch.Generator()
            generator.seed()
            h = h + torch.randn(h.shape, generator=generator)
        return h


class Padded(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, lengths, give: bool = True):
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return self.fc(x * mask[..., None]) if give else None


class PaddedTotal(Padded):
    # summed over the batch, step by step, flattened: no batch axis, and as long as the
    # padded length (extra padding changes its shape: nothing to compare whole either)
    def forward(self, x, lengths):
        return super().forward(x, lengths).sum(0).flatten()


class PaddedLoss(Padded):
    # a mean over the valid steps of the batch: no batch axis, compared whole under extra padding
    def forward(self, x, lengths):
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        return (super().forward(x, lengths) * mask[..., None]).sum() / mask.sum().clamp(min=1)


class PaddedDict(Padded):
    def forward(self, batch):
        return super().forward(batch["x"], batch["lengths"])


class PaddedPair(Padded):
    def forward(self, batch):
        return super().forward(*batch)


class ComplexRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.gru = nn.GRU(4, 5).to(torch.complex64)

    def forward(self, x):
        return self.fc(x)


class LazyNormal(torch.distributions.Distribution):
    '''A distribution that runs its network when it is scored or sampled (zuko's flows).'''
    arg_constraints = {}

    def __init__(self, net, c):
        super().__init__(validate_args=False)
        self.net, self.c = net, c

    def rsample(self, shape=torch.Size()):
        loc, log_scale = self.net(self.c).chunk(2, dim=-1)
        return loc + torch.tanh(log_scale).exp() * torch.randn(*shape, *loc.shape)


class LazyDensity(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))

    def forward(self, c):
        return LazyNormal(self.net, c)


class HeadAlongside(LazyDensity):
    '''Returns its output beside a layer it ran: nothing is left for later.'''

    def forward(self, c):
        return self.net(c), self.net


class Scorer(LazyDensity):
    '''Returns a bound method of a layer forward did not run (a partial of it, as a flow's transform).'''

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 3)

    def forward(self, c):
        import functools
        return functools.partial(self.net.forward, self.embed(c))


class TiedHead(LazyDensity):
    '''Uses its layer's weight without calling it, and returns the layer (for tied decoding).'''

    def forward(self, c):
        return torch.nn.functional.linear(c, self.net[0].weight), self.net


plain = dyncheck.Spec(RowWise, inputs={"x": rows(4)})
single = dyncheck.Spec(RowWise, inputs={"x": rows(4, 1, 1)})
named_single = dyncheck.Spec(RowWise, inputs={"x": tensors(shape=("batch", 4))}, dims={"batch": 1})
total = dyncheck.Spec(Total, inputs={"x": tensors(shape=("batch", 4))})
time_major = dyncheck.Spec(TimeMajor, inputs={"x": st.tuples(st.integers(1, 4), st.integers(1, 3)).map(
    lambda sizes: torch.ones(*sizes, 4))})
sometimes = dyncheck.Spec(Sometimes, inputs={"x": tensors(shape=("batch", 4)), "give": st.booleans()})
ramp = dyncheck.Spec(Ramp, inputs={"n": st.integers(1, 5)})
jittery = dyncheck.Spec(Jittery, inputs={"x": tensors(shape=("batch", 4)), "noisy": st.booleans()})
jittery_always = dyncheck.Spec(Jittery, inputs={"x": tensors(shape=("batch", 4)), "noisy": st.just(True)})
lazy = dyncheck.Spec(LazyDensity, inputs={"c": tensors(shape=("batch", 3), min_value=-1, max_value=1)})
lazy_scored = lazy.replace(loss=lambda d: d.rsample().pow(2).sum())
head_alongside = lazy.replace(model=HeadAlongside)
scorer = lazy.replace(model=Scorer)
tied_head = lazy.replace(model=TiedHead)
padded_x = tensors(shape=("batch", "time", 4))
padded_none = dyncheck.Spec(Padded, inputs={"x": padded_x, "lengths": sequence_lengths(), "give": st.just(False)})
padded_sometimes = dyncheck.Spec(Padded, inputs={"x": padded_x, "lengths": sequence_lengths(), "give": st.booleans()})
padded_empty = dyncheck.Spec(Padded, inputs={"x": st.just(torch.ones(2, 3, 4)), "lengths": st.just(torch.tensor([0, 0]))})
padded_total = dyncheck.Spec(PaddedTotal, inputs={"x": padded_x, "lengths": sequence_lengths()})
padded_loss = dyncheck.Spec(PaddedLoss, inputs={"x": padded_x, "lengths": sequence_lengths()})
no_steps = {"x": st.just(torch.ones(2, 3, 4)), "lengths": st.just(torch.tensor([0, 0]))}
padded_dict_empty = dyncheck.Spec(PaddedDict, inputs={"batch": st.fixed_dictionaries(no_steps)})
padded_pair_empty = dyncheck.Spec(
    PaddedPair, inputs={"batch": st.tuples(no_steps["x"], no_steps["lengths"])}, lengths="batch[1]"
)
"""

NUMERIC = "--dyncheck-devices=cpu,reference_models.buggy.perturbed_device:NUMERIC"
#: A second "device" that computes exactly as the CPU does for a model drawing no random
#: numbers: device_agreement compares and must pass.
AGREEING = "--dyncheck-devices=cpu,reference_models.buggy.perturbed_device:OTHER_STREAM"


@pytest.fixture
def models(pytester):
    pytester.makepyfile(vac=MODELS)


def _row(run, target, invariant):
    """The summary row of ``invariant`` under ``target``: (verdict, detail)."""
    summary = run.text.split("dyncheck summary")[1]
    block = summary.split(f"\n{target}  —  ")[1]
    match = re.search(rf"^  {invariant} +(\w+) +(.*)$", block, re.M)
    assert match, run.text
    return match.group(1), match.group(2)


# ----------------------------------------------------------------------- batch_invariance


def test_the_batch_is_read_from_plain_strategies(dyncheck_run, models):
    # Plain Hypothesis strategies name no "batch" axis: the batch is the leading size every
    # tensor input shares. A model scaled by a batch statistic fails; a row-wise one passes,
    # checked on the examples with a batch of 2 or more.
    bad = "reference_models.buggy.batch_scaled:Model"
    run = dyncheck_run("--dyncheck", bad, "--dyncheck", "vac:plain", "--dyncheck-invariants=batch_invariance",
                       "--dyncheck-seed=3", "--dyncheck-max-examples=20")
    assert run.outcomes() == {
        f"dyncheck::{bad}::batch_invariance": "FAILED",
        "dyncheck::vac:plain::batch_invariance": "PASSED",
    }, run.text
    lines = run.failure("::batch_invariance").strip().splitlines()
    assert re.fullmatch(r"sample \d differs from the same sample run alone \(output\): Mismatched elements: .*", lines[2])
    verdict, detail = _row(run, "vac:plain", "batch_invariance")
    checked = re.fullmatch(r"checked on (\d+) of (\d+) examples", detail)
    assert verdict == "passed" and checked and 0 < int(checked.group(1)) < int(checked.group(2)), detail


def test_batch_invariance_draws_a_batch_of_2_or_more_where_the_range_reaches_2(dyncheck_run):
    # A batch of 1 compares nothing: drawn at the range's low end, it was about half of
    # every run. batch_invariance's own examples start the range at 2; other checks keep it.
    from dyncheck import Spec
    from dyncheck.invariants.batch_invariance import BatchInvariance
    from dyncheck.target import resolve_spec
    from reference_models.rnn import DynamicRNN

    ranges = {
        dims: BatchInvariance().dims(resolve_spec(Spec(DynamicRNN, dims={} if dims is None else {"batch": dims})))
        for dims in (None, (1, 3), (1, 1), 1, (3, 5))
    }
    assert ranges == {None: {"batch": (2, 4)}, (1, 3): {"batch": (2, 3)}, (1, 1): {}, 1: {}, (3, 5): {}}
    target = "reference_models.rnn:DynamicRNN"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=batch_invariance",
                       "--dyncheck-seed=3", "--dyncheck-max-examples=20")
    # Every example compared (drawn from the spec's range, about half were a batch of 1).
    assert _row(run, target, "batch_invariance") == ("passed", "20 examples"), run.text


def test_a_run_with_no_batch_to_split_is_a_skip_that_says_how_to_name_it(dyncheck_run, models):
    run = dyncheck_run(
        *("--dyncheck", "vac:single", "--dyncheck", "vac:named_single", "--dyncheck", "vac:total"),
        *("--dyncheck", "vac:time_major", "--dyncheck", "vac:ramp"),
        "--dyncheck-invariants=batch_invariance", "--dyncheck-max-examples=8",
    )
    reasons = {target: run.vacuous_reason(f"dyncheck::{target}::batch_invariance")
               for target in ("vac:single", "vac:named_single", "vac:total", "vac:time_major", "vac:ramp")}
    assert reasons == {
        "vac:single": 'no batch of 2 or more: no strategy names a "batch" axis, and the tensor inputs share no '
                      'leading size of 2 or more; name the batch axis, e.g. '
                      'Spec(inputs={"x": tensors(shape=("batch", 4))})',
        "vac:named_single": 'a batch of 1, with no other sample to depend on; let the batch grow, e.g. '
                            'Spec(dims={"batch": (1, 4)})',
        "vac:total": "no output has an axis of the batch's size (where a sample alone has size 1): nothing to "
                     "compare sample by sample",
        # A layer that takes time first: the leading axis may be time, so it is not taken for the batch.
        "vac:time_major": 'no batch axis: no strategy names a "batch" axis, and gru (GRU, batch_first=False) '
                          "takes time first, so the inputs' leading axis may be time; name the batch axis, e.g. "
                          'Spec(inputs={"x": tensors(shape=("time", "batch", 4))})',
        "vac:ramp": "forward takes no tensor argument: no batch to split",
    }
    assert set(run.outcomes().values()) == {"SKIPPED"}
    assert re.search(
        r"^  batch_invariance  skipped  compared nothing in 8 examples: a batch of 1, with no other sample", run.text,
        re.M,
    ), run.text


# ------------------------------------------------------------ a forward with nothing to check


def test_a_forward_that_returns_none_is_one_line_per_check(dyncheck_run, models):
    run = dyncheck_run("--dyncheck", "vac:Forgot", "--dyncheck-max-examples=5", NUMERIC)
    vacuous = ["determinism", "finite", "grad_isolation", "state_roundtrip", "device_agreement",
               "dtype_agreement", "batch_invariance"]
    outcomes = run.outcomes()
    for name in vacuous:
        assert outcomes.pop(f"dyncheck::vac:Forgot::{name}") == "SKIPPED", run.text
        assert run.vacuous_reason(f"dyncheck::vac:Forgot::{name}") == NONE_OUTPUT
        assert _row(run, "vac:Forgot", name) == ("skipped", f"compared nothing in 5 examples: {NONE_OUTPUT}")
    # What does not depend on the output still checks something: the inputs and state left
    # alone, the parameters reached by a module that ran, the ties.
    assert outcomes == {
        "dyncheck::vac:Forgot::purity": "PASSED",
        "dyncheck::vac:Forgot::coverage": "PASSED",
        "dyncheck::vac:Forgot::tied_weights": "PASSED",
        "dyncheck::vac:Forgot::packed_rnn": "SKIPPED",
        "dyncheck::vac:Forgot::padding_invariance": "SKIPPED",
        "dyncheck::vac:Forgot::episode_reset": "SKIPPED",
    }


def test_a_forward_that_sometimes_returns_none_is_checked_on_the_others(dyncheck_run, models):
    invariants = "determinism,finite,grad_isolation,state_roundtrip,device_agreement,dtype_agreement,batch_invariance"
    run = dyncheck_run("--dyncheck", "vac:sometimes", f"--dyncheck-invariants={invariants}", "--dyncheck-seed=1",
                       "--dyncheck-max-examples=10", AGREEING, "-v")
    for name in invariants.split(","):
        verdict, detail = _row(run, "vac:sometimes", name)
        checked = re.fullmatch(r"checked on (\d) of 10 examples", detail)
        assert verdict == "passed" and checked and int(checked.group(1)) > 0, (name, detail)
    # -v says why the others were not compared.
    assert re.search(rf"^ +not compared on \d: {NONE_OUTPUT}$", run.text, re.M), run.text


def test_nothing_floating_and_nothing_trainable_are_skips_with_the_reason(dyncheck_run, models):
    run = dyncheck_run("--dyncheck", "vac:Labels", "--dyncheck", "vac:ramp", "--dyncheck-max-examples=5")
    labels = {name: run.vacuous_reason(f"dyncheck::vac:Labels::{name}")
              for name in ("finite", "grad_isolation", "dtype_agreement")}
    assert labels == {
        "finite": "the output has no floating tensor and there is no loss: nothing can be NaN/inf",
        "grad_isolation": "the output has no floating tensor, so there is no loss and no gradient to follow",
        "dtype_agreement": "the output has no floating tensor and no parameter got a gradient: nothing to compare",
    }
    # Integer outputs are still compared where the check compares them.
    for name in ("determinism", "state_roundtrip", "batch_invariance"):
        assert run.outcomes()[f"dyncheck::vac:Labels::{name}"] == "PASSED"
    ramp = {name: run.vacuous_reason(f"dyncheck::vac:ramp::{name}")
            for name in ("grad_isolation", "coverage", "purity", "tied_weights")}
    assert ramp == {
        "grad_isolation": "the loss reaches no parameter that requires grad: no gradient to follow",
        "coverage": "the model has no parameters and declares no branches (Spec(branches=...)): nothing to cover",
        "purity": "forward takes no tensor argument and the model has no parameters or buffers: nothing it could "
                  "change",
        "tied_weights": "the model has no parameters: no tie to check",
    }
    for name in ("determinism", "finite", "state_roundtrip", "dtype_agreement"):
        assert run.outcomes()[f"dyncheck::vac:ramp::{name}"] == "PASSED"


# -------------------------------------------------------------------- the other early returns


def test_state_roundtrip_on_a_model_that_is_not_a_function_of_its_state(dyncheck_run, models):
    # Two copies loaded from one state_dict disagree with each other: determinism's finding,
    # and nothing state_roundtrip can judge, so such examples are not compared.
    run = dyncheck_run("--dyncheck", "vac:jittery_always", "--dyncheck", "vac:jittery",
                       "--dyncheck-invariants=state_roundtrip,determinism", "--dyncheck-seed=1",
                       "--dyncheck-max-examples=10")
    assert run.vacuous_reason("dyncheck::vac:jittery_always::state_roundtrip") == (
        "two copies loaded from one state_dict disagreed with each other: the model is not a function of its "
        "state, input and seed (determinism reports it), so what the state_dict misses cannot be told"
    )
    assert run.outcomes()["dyncheck::vac:jittery_always::determinism"] == "FAILED"
    verdict, detail = _row(run, "vac:jittery", "state_roundtrip")
    assert verdict == "passed" and re.fullmatch(r"checked on [1-9] of 10 examples", detail), detail


def test_padding_invariance_compares_rows_or_says_why_not(dyncheck_run, models):
    run = dyncheck_run(
        *("--dyncheck", "vac:padded_none", "--dyncheck", "vac:padded_empty", "--dyncheck", "vac:padded_total"),
        "--dyncheck", "vac:padded_sometimes", "--dyncheck", "vac:padded_loss",
        *("--dyncheck", "vac:padded_dict_empty", "--dyncheck", "vac:padded_pair_empty"),
        "--dyncheck-invariants=padding_invariance", "--dyncheck-seed=1", "--dyncheck-max-examples=10",
    )
    assert run.vacuous_reason("dyncheck::vac:padded_none::padding_invariance") == NONE_OUTPUT
    assert run.vacuous_reason("dyncheck::vac:padded_empty::padding_invariance") == (
        "no sequence of length 1 or more (lengths empty or all 0): no row to run alone; draw at least one step, "
        'e.g. Spec(inputs={"lengths": sequence_lengths(min_length=1)})'
    )
    # Lengths inside a dict or tuple of inputs: a Spec names its inputs by argument.
    for target, where in (("padded_dict_empty", "batch['lengths']"), ("padded_pair_empty", "batch[1]")):
        assert run.vacuous_reason(f"dyncheck::vac:{target}::padding_invariance") == (
            f"no sequence of length 1 or more ({where} empty or all 0): no row to run alone; draw at least one step, "
            f'e.g. sequence_lengths(min_length=1) as the strategy of {where} inside Spec(inputs={{"batch": ...}})'
        )
    assert run.vacuous_reason("dyncheck::vac:padded_total::padding_invariance") == (
        "no output has an axis of the batch's size where a row alone has size 1: nothing to compare row by row"
    )
    verdict, detail = _row(run, "vac:padded_sometimes", "padding_invariance")
    assert verdict == "passed" and re.fullmatch(r"checked on [1-9] of 10 examples", detail), detail
    # A loss over the batch has no row to compare, but the extra padding must not change it.
    verdict, detail = _row(run, "vac:padded_loss", "padding_invariance")
    assert verdict == "passed" and detail == "10 examples", (verdict, detail)


def test_packed_rnn_with_no_floating_rnn_compares_nothing(dyncheck_run, models):
    run = dyncheck_run("--dyncheck", "vac:ComplexRNN", "--dyncheck-invariants=packed_rnn",
                       "--dyncheck-max-examples=3", "-W", "ignore::UserWarning")
    assert run.vacuous_reason("dyncheck::vac:ComplexRNN::packed_rnn") == (
        "no nn.RNN/LSTM/GRU submodule has floating-point parameters (gru: complex64): nothing to run through "
        "the naive loop"
    )


# ----------------------------------------------------------------------------------- xdist


@pytest.mark.usefixtures("subprocess_env")
def test_what_was_compared_travels_from_xdist_workers(pytester, dyncheck_run):
    pytester.makepyfile(vac=MODELS)
    args = ["-p", "no:cacheprovider", "--dyncheck-only", "-rA", "--dyncheck", "vac:sometimes",
            "--dyncheck", "vac:Forgot", "--dyncheck-seed=2", "--dyncheck-max-examples=6",
            "--dyncheck-invariants=determinism,batch_invariance"]
    # The serial run in this process (a fresh one costs seconds), the parallel one in fresh ones.
    serial = dyncheck_run(*args).result.stdout.str()
    parallel = pytester.runpytest_subprocess("-n", "2", *args).stdout.str()

    def rows(text):
        summary = text.split("dyncheck summary")[1]
        return sorted(re.findall(r"^  (?:determinism|batch_invariance) .*$", summary, re.M))

    assert rows(parallel) == rows(serial)
    assert any("checked on" in row for row in rows(parallel)), parallel
    assert f"  determinism       skipped  compared nothing in 6 examples: {NONE_OUTPUT}" in rows(parallel), parallel


def test_a_batch_of_1_hints_at_the_spec_only_when_the_range_allows_no_other_size():
    # Beside a range that already reaches 4, "let the batch grow" would be noise in the
    # summary's "not compared on N: a batch of 1" line.
    from dyncheck import Spec
    from dyncheck.invariants import Context
    from dyncheck.invariants.batch_invariance import _one_sample
    from dyncheck.target import resolve_spec
    from reference_models.gated import DynamicNet

    hint = '; let the batch grow, e.g. Spec(dims={"batch": (1, 4)})'
    reasons = {
        dims: _one_sample(Context(resolve_spec(Spec(DynamicNet, dims={} if dims is None else {"batch": dims}))))
        for dims in (None, (1, 3), (1, 1), 1)
    }
    base = "a batch of 1, with no other sample to depend on"
    assert reasons == {None: base, (1, 3): base, (1, 1): base + hint, 1: base + hint}


def test_an_output_reduced_over_the_batch_is_named_in_the_skip(dyncheck_run, pytester):
    # PointNet's pooling written over the batch axis (max(0)) where it meant the points: no output
    # keeps a batch axis, so nothing is compared, and the skip says what the shapes show
    pytester.makepyfile(pooled="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(3, 8, 1)
                self.fc = nn.Linear(8, 4)

            def forward(self, x):
                return self.fc(self.conv(x).max(0)[0].transpose(0, 1))
    """)
    run = dyncheck_run("--dyncheck", "pooled:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::pooled:Model::batch_invariance": "SKIPPED"}, run.text
    assert re.fullmatch(
        r"no output has an axis of the batch's size \(where a sample alone has size 1\): nothing to compare sample "
        r"by sample; output has the same shape for the batch of \d as for a sample alone \(\[\d+, 4\]\) and other "
        r"values: forward reduces over the batch axis \(x\.max\(0\), x\.mean\(0\)\); if each sample should have its "
        r"own output, reduce over another axis",
        run.vacuous_reason("dyncheck::pooled:Model::batch_invariance"),
    )


# ------------------------------------------------------------------ a lazy returned object


LAZY = "forward returned a LazyNormal holding net (68 parameters) without running them: they run when it is used"


def test_an_output_that_runs_the_layers_later_is_a_skip_that_says_what_to_check(dyncheck_run, models):
    # forward returns a distribution that runs net when it is scored: every check would have
    # compared the input it holds, and coverage called net dead.
    run = dyncheck_run("--dyncheck", "vac:lazy", "--dyncheck-max-examples=5")
    outcomes = run.outcomes()
    assert set(outcomes.values()) == {"SKIPPED"}, run.text
    for name in ("determinism", "finite", "grad_isolation", "coverage", "state_roundtrip", "purity", "tied_weights",
                 "dtype_agreement", "batch_invariance"):
        reason = run.skip_reason(f"dyncheck::vac:lazy::{name}")
        assert reason.startswith(LAZY), (name, reason)
        assert reason.endswith(
            "Check a module whose forward uses it (for a distribution, `return self.model(c).log_prob(x)`), "
            "or give Spec(loss=...) that uses it"
        ), reason
    assert "dead:" not in run.text


def test_a_lazy_output_with_a_loss_that_uses_it_is_checked(dyncheck_run, models):
    run = dyncheck_run("--dyncheck", "vac:lazy_scored", "--dyncheck-max-examples=5",
                       "--dyncheck-invariants=grad_isolation,coverage,dtype_agreement")
    assert run.outcomes() == {f"dyncheck::vac:lazy_scored::{name}": "PASSED"
                              for name in ("grad_isolation", "coverage", "dtype_agreement")}, run.text


@pytest.mark.parametrize(("target", "held"), [("head_alongside", None), ("tied_head", None), ("scorer", "Scorer")])
def test_a_layer_in_the_output_is_left_for_later_only_if_forward_did_not_run_it(dyncheck_run, models, target, held):
    run = dyncheck_run("--dyncheck", f"vac:{target}", "--dyncheck-max-examples=5",
                       "--dyncheck-invariants=determinism,dtype_agreement")
    if held is None:  # the layer ran: its output is checked
        assert set(run.outcomes().values()) == {"PASSED"}, run.text
    else:  # a partial of its forward, the layer unrun
        for name in ("determinism", "dtype_agreement"):
            assert run.skip_reason(f"dyncheck::vac:{target}::{name}").startswith(
                "forward returned a partial holding net (68 parameters) without running them"
            ), run.text
