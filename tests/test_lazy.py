"""Lazy layers (nn.LazyLinear, LazyConv1d, LazyBatchNorm1d): inferred inputs of a fixed size,
copies of uninitialised buffers, checks on the model a dry run materialised, and examples
through a lazy layer the dry run missed left uncompared by the two-copy checks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, is_lazy

from dyncheck.cloning import clone
from dyncheck.examples import Example
from dyncheck.invariants._base import Context
from dyncheck.seeding import seeded
from dyncheck.target import BUILD_SEED, resolve

TARGET = "reference_models.lazy_layers:LazyConvNet"


def test_a_lazy_buffer_is_cloned_uninitialised_and_apart():
    # copy.deepcopy raises on it; a lazy BatchNorm could not be checked at all
    norm = nn.LazyBatchNorm1d()
    cloned = clone(norm)
    assert isinstance(cloned.running_mean, UninitializedBuffer)
    assert cloned.running_mean is not norm.running_mean
    cloned(torch.randn(4, 3))  # materialises the copy alone
    assert cloned.running_mean.shape == (3,) and is_lazy(norm.running_mean)


def test_a_lazy_layer_takes_a_fixed_size_of_its_rank(dyncheck_run):
    # Any size works, but the first call fixes it for good: one size, the layer's rank.
    run = dyncheck_run("--dyncheck", TARGET, "--dyncheck-explain", "--co")
    assert (
        "        # inferred: first consumed by conv (LazyConv1d: any number of channels, 3 drawn)\n"
        "        'x': tensors(shape=('batch', 3, 'length')),"
    ) in run.text, run.text


def _example(control: float) -> Example:
    return Example({"x": torch.randn(2, 3, 5), "control": torch.tensor([control])}, seed=7, dims={"batch": 2})


def test_the_checks_work_on_the_model_a_dry_run_materialised():
    target = resolve(TARGET)
    context = Context(target)
    built = context.prototype()
    assert is_lazy(built.conv.weight)
    context.materialise(_example(0.0))
    prototype = context.prototype()
    assert not is_lazy(prototype.conv.weight) and not is_lazy(prototype.norm.running_mean)
    assert is_lazy(prototype.fc2.weight)  # on the branch the first example did not take
    assert is_lazy(built.conv.weight)  # the build itself was not called: a copy was
    # Under the build seed, whatever the example's: the same weights as a build called so.
    expected, args = target.build(), _example(0.0).fresh_args()
    with seeded(BUILD_SEED), torch.no_grad():
        expected.eval()(**args)
    torch.testing.assert_close(prototype.conv.weight, expected.conv.weight, rtol=0, atol=0)
    assert prototype.training  # its modes as built
    # New builds are materialised alike (state_roundtrip and tied_weights load them).
    assert not is_lazy(context.build_model().conv.weight)


def test_a_dry_run_that_raises_changes_nothing():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.LazyLinear(2)

        def forward(self, x):
            raise RuntimeError("not today")

    context = Context(resolve(TARGET))
    context._prototype = Broken()
    before = context.prototype()
    context.materialise(Example({"x": torch.ones(1, 3)}, seed=0))
    assert context.prototype() is before and is_lazy(before.fc.weight)


def test_an_example_through_a_lazy_layer_the_dry_run_missed_is_not_compared(dyncheck_run):
    run = dyncheck_run("--dyncheck", TARGET, "--dyncheck-invariants=dtype_agreement", "-v", "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    assert (
        "lazy layer fc2 gets its weights on its first call, which this example makes (the dry "
        "run on the check's first example did not reach it)" in run.text
    ), run.text


def test_a_baseline_records_and_replays_a_lazy_model(dyncheck_run, tmp_path):
    # Recording saved the state before any call materialised it: torch cannot write an
    # uninitialised parameter, and dyncheck raised.
    folder = str(tmp_path / "baselines")
    common = ("--dyncheck", TARGET, "--dyncheck-invariants=baseline", f"--dyncheck-baseline={folder}", "--dyncheck-seed=3")
    recorded = dyncheck_run(*common, "--dyncheck-update-baseline")
    assert recorded.ret == 0, recorded.text
    replayed = dyncheck_run(*common)
    assert replayed.ret == 0, replayed.text


def test_lazy_buffers_alone_and_a_model_that_raises_before_its_lazy_layer(dyncheck_run, pytester):
    # LazyBatchNorm1d(affine=False) has lazy buffers and no parameters; a model raising before
    # it reaches its lazy layer is reported for its own error, not for dyncheck's.
    pytester.makepyfile(lazier="""
        import torch
        from torch import nn

        class NoAffine(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 6)
                self.norm = nn.LazyBatchNorm1d(affine=False)
                self.out = nn.Linear(6, 2)

            def forward(self, x):
                return self.out(self.norm(self.fc(x)))

        class EarlyBug(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 6)
                self.lazy = nn.LazyLinear(2)

            def forward(self, x):
                return self.lazy(self.fc(x).view(x.shape[0], 3, -1) @ torch.ones(5, 1))  # the bug: [.., 2] @ [5, 1]
        """)
    run = dyncheck_run("--dyncheck", "lazier:NoAffine", "--dyncheck", "lazier:EarlyBug", "--dyncheck-max-examples=10")
    assert "dyncheck itself raised" not in run.text, run.text
    outcomes = run.outcomes()
    assert {o for n, o in outcomes.items() if "NoAffine" in n} <= {"PASSED", "SKIPPED"}, run.text
    assert "FAILED" in {o for n, o in outcomes.items() if "EarlyBug" in n}, run.text
