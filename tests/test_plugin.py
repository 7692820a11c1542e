"""The pytest plugin: collection, selection, options, header, summary, xdist, explain."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys

import pytest
from conftest import default_invariants

GATED = "reference_models.gated:DynamicNet"
COUNTER = "reference_models.buggy.call_counter:Model"


def test_collects_one_item_per_target_and_invariant(dyncheck_run):
    from dyncheck.invariants import registry

    run = dyncheck_run("--dyncheck", GATED, "--co", "-q")
    ids = re.findall(r"^dyncheck::\S+", run.text, re.M)
    assert ids == [f"dyncheck::{GATED}::{name}" for name in default_invariants()]
    # Opt-in invariants (slow: torch.compile) are collected only when named.
    assert "compile_agreement" in registry() and "compile_agreement" not in default_invariants()
    assert f"{len(ids)} tests collected" in run.text


def test_collection_keeps_target_order_and_dedupes(dyncheck_run):
    rnn = "reference_models.rnn:DynamicRNN"
    run = dyncheck_run(
        "--dyncheck", rnn, "--dyncheck", GATED, "--dyncheck", rnn, "--co", "-q",
        "--dyncheck-invariants=determinism,finite",
    )
    ids = re.findall(r"^dyncheck::\S+", run.text, re.M)
    assert ids == [
        f"dyncheck::{rnn}::determinism",
        f"dyncheck::{rnn}::finite",
        f"dyncheck::{GATED}::determinism",
        f"dyncheck::{GATED}::finite",
    ]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (("-k", "finite"), {"finite"}),
        (("-k", "determinism or tied"), {"determinism", "tied_weights"}),
        (("-k", "not agreement and not invariance and not rnn and not tied and not state and not purity and not reset"),
         {"determinism", "finite", "grad_isolation", "coverage"}),
        (("-m", "dyncheck"), set(default_invariants())),
        (("--dyncheck-invariants", "finite"), {"finite"}),
        (("--dyncheck-invariants", "finite, determinism"), {"determinism", "finite"}),
    ],
)
def test_selection(dyncheck_run, selection, expected):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-max-examples=3", *selection)
    assert {nodeid.rsplit("::", 1)[1] for nodeid in run.outcomes()} == expected
    assert run.ret == 0


def test_marker_deselects_everything(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "-m", "not dyncheck")
    assert run.outcomes() == {}
    assert run.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_unknown_invariant_is_a_usage_error(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-invariants=determinsm")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown invariant(s) determinsm; did you mean determinism? known: determinism, finite" in run.text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--dyncheck-seed=abc", "--dyncheck-seed='abc' must be a whole number"),
        ("--dyncheck-seed=-1", "--dyncheck-seed=-1 must be at least 0"),
        ("--dyncheck-max-examples=0", "--dyncheck-max-examples=0 must be at least 1"),
    ],
)
def test_bad_option_values(dyncheck_run, option, message):
    run = dyncheck_run("--dyncheck", GATED, option)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert message in run.text
    assert "Traceback" not in run.text


def test_every_target_refused_is_said_at_once(dyncheck_run, pytester):
    # the first refusal stopped the run, and the next target's was seen only once it was fixed
    pytester.makepyfile(refusals="""
        from torch import nn

        class A(nn.Module):
            def forward(self, thing):
                return thing.whatever()

        class B(nn.Module):
            def forward(self, other):
                return other.something()
        """)
    run = dyncheck_run("--dyncheck", "refusals:A", "--dyncheck", GATED, "--dyncheck", "refusals:B")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "--dyncheck refusals:A: cannot infer forward argument 'thing'" in run.text, run.text
    assert "--dyncheck refusals:B: cannot infer forward argument 'other'" in run.text, run.text
    assert "Traceback" not in run.text


def test_header_shows_seed_as_a_flag_only_when_active(dyncheck_run, pytester):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-seed=123", "--dyncheck-max-examples=2")
    assert "dyncheck: 1 target, seed 123 (reproduce with --dyncheck-seed=123)" in run.text
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    plain = pytester.runpytest("-p", "no:cacheprovider")
    assert "dyncheck:" not in plain.stdout.str()
    assert plain.ret == 0


def test_ini_targets(dyncheck_run, pytester):
    pytester.makeini(
        f"[pytest]\ndyncheck_targets =\n    {GATED}\ndyncheck_max_examples = 2\n"
        "dyncheck_invariants = determinism,finite\n"
    )
    run = dyncheck_run()
    assert set(run.outcomes()) == {f"dyncheck::{GATED}::determinism", f"dyncheck::{GATED}::finite"}
    assert "2 examples" in run.text


def test_runs_beside_ordinary_tests(pytester):
    from conftest import ROOT

    pytester.syspathinsert(ROOT)
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--dyncheck", GATED, "--dyncheck-max-examples=2",
        "--dyncheck-invariants=determinism,finite",
    )
    result.assert_outcomes(passed=3)


def test_summary_per_target(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck", COUNTER, "--dyncheck-max-examples=10",
                       "--dyncheck-seed=1", "--dyncheck-invariants=determinism,finite")
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(rf"{re.escape(GATED)}  —  [12] distinct paths? seen", summary)
    assert re.search(r"determinism  passed   10 examples", summary)
    # Where the failure was found, and the examples after it that shrank it, not one count of both.
    found = re.search(r"determinism  failed   on example (\d+), shrunk in (\d+) more", summary)
    assert found and int(found[1]) <= 10, summary
    assert "path fc1 → fc3" in summary


def test_skip_with_reason(dyncheck_run, pytester):
    pytester.makepyfile(
        mymod="""
        import torch
        import dyncheck
        from reference_models.gated import DynamicNet

        spec = dyncheck.Spec(DynamicNet, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                             skip={"determinism": "the model is stochastic by design"})
        """
    )
    run = dyncheck_run("--dyncheck", "mymod:spec", "--dyncheck-max-examples=2", "--dyncheck-invariants=determinism,finite")
    assert run.outcomes() == {"dyncheck::mymod:spec::finite": "PASSED", "dyncheck::mymod:spec::determinism": "SKIPPED"}
    run.result.assert_outcomes(passed=1, skipped=1)
    assert "determinism does not apply to mymod:spec: the model is stochastic by design" in run.text
    assert re.search(r"^  determinism +skipped  the model is stochastic by design$", run.text, re.M), run.text


def test_disabled_with_no_dyncheck(pytester):
    result = pytester.runpytest("-p", "no:dyncheck", "--dyncheck", GATED)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unrecognized arguments: --dyncheck" in result.stderr.str()


@pytest.mark.usefixtures("subprocess_env")
@pytest.mark.parametrize("named", ["-p", "conftest"])
def test_the_plugin_named_again_while_installed_is_loaded_once(pytester, named):
    # as a checkout needs it (-p dyncheck.plugin), or in a conftest's pytest_plugins: with
    # dyncheck installed, pytest stopped with "Plugin already registered under a different
    # name" and a dump of every plugin
    args = ["-p", "dyncheck.plugin"] if named == "-p" else []
    if named == "conftest":
        pytester.makeconftest('pytest_plugins = ["dyncheck.plugin"]')
    result = pytester.runpytest_subprocess(*args, "--dyncheck", GATED, "--co", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert f"dyncheck::{GATED}::determinism" in result.stdout.str()


def test_hypothesis_statistics_work(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-max-examples=3", "--hypothesis-show-statistics")
    assert "Hypothesis Statistics" in run.text
    assert f"dyncheck::{GATED}::finite" in run.text.split("Hypothesis Statistics")[1]


def test_hypothesis_seed_is_used_when_no_dyncheck_seed(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-max-examples=2", "--hypothesis-seed=77")
    assert "seed 77 (reproduce with --dyncheck-seed=77)" in run.text


def _failure_text(run, suffix):
    return run.failure(suffix)


def test_same_seed_same_verdict_and_message(dyncheck_run):
    args = ("--dyncheck", COUNTER, "--dyncheck-seed=5", "--dyncheck-max-examples=20", "-p", "no:randomly")
    first = dyncheck_run(*args)
    second = dyncheck_run(*args)
    assert first.outcomes() == second.outcomes()
    assert first.failure("determinism") == second.failure("determinism")


RECORDED = """
import torch
import dyncheck
from dyncheck.strategies import controls


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, a, b, c, d):
        with open("seen.txt", "a") as seen:
            seen.write(f"{a} {b} {c} {d}\\n")
        return self.scale * (a + b + c + d)


spec = dyncheck.Spec(Model, inputs={name: controls() for name in "abcd"})
"""


def test_a_seeds_examples_do_not_depend_on_what_the_process_imported(dyncheck_run, pytester):
    # Hypothesis mixes literals from the source of every local module imported so far into
    # its draws; a check uses only its target's, so a module imported in between (by another
    # test, another check, another xdist split) cannot change the examples of a seed.
    pytester.makepyfile(recorded=RECORDED)
    pytester.makepyfile(literals="VALUES = [" + ", ".join(f"{i / 512}" for i in range(1, 512)) + "]")
    args = ("--dyncheck", "recorded:spec", "--dyncheck-invariants=finite", "--dyncheck-seed=3",
            "--dyncheck-max-examples=50")
    seen = pytester.path / "seen.txt"
    assert dyncheck_run(*args).ret == 0
    first = seen.read_text()
    seen.unlink()
    pytester.syspathinsert()
    importlib.import_module("literals")
    assert dyncheck_run(*args).ret == 0
    assert seen.read_text() == first


def test_reproduce_line_reproduces(dyncheck_run):
    run = dyncheck_run("--dyncheck", COUNTER, "--dyncheck-max-examples=20")
    text = run.failure("call_counter:Model::determinism")
    command = re.search(r"^Reproduce: pytest (.+)$", text, re.M).group(1).split()
    assert command[:3] == ["--dyncheck", COUNTER, "--dyncheck-only"]
    again = dyncheck_run(*command)
    assert again.outcomes() == {f"dyncheck::{COUNTER}::determinism": "FAILED"}
    assert again.failure("determinism") == text


#: A model whose sizes resolution probes (a head over a 12-long input), which notes in
#: probe_calls.log each call resolution makes, by the calling process's id.
PROBED = """
import os

from torch import nn

from dyncheck import probing


class Probed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.head = nn.Linear(20, 2)

    def forward(self, x):
        if probing._CURRENT.get() is not None:
            with open("probe_calls.log", "a") as log:
                log.write(f"{os.getpid()}\\n")
        return self.head(self.conv(x).flatten(1))
"""


@pytest.mark.usefixtures("subprocess_env")
def test_xdist_same_collection_and_verdicts(pytester, dyncheck_run):
    from test_paths import DECODER

    pytester.makepyfile(decoder=DECODER)  # forty modules: paths described against the merged census
    pytester.makepyfile(probed=PROBED)
    args = ["-p", "no:cacheprovider", "--dyncheck-only", "-rA", "--dyncheck", GATED, "--dyncheck", COUNTER,
            "--dyncheck", "decoder:spec", "--dyncheck", "probed:Probed", "--dyncheck-seed=9",
            "--dyncheck-max-examples=10", "--dyncheck-invariants=determinism,finite", "--dyncheck-explain"]
    # The serial run in this process (a fresh one costs seconds), the parallel one in fresh ones.
    serial = dyncheck_run(*args).result
    # The first run's example database (what Hypothesis's targeting kept) would steer the
    # second: both start from none.
    shutil.rmtree(pytester.path / ".hypothesis", ignore_errors=True)
    log = pytester.path / "probe_calls.log"
    log.unlink()
    parallel = pytester.runpytest_subprocess("-n", "2", *args)
    # Resolution called the model in one process, the controller: each worker reused its calls.
    made = log.read_text().split()
    assert made and len(set(made)) == 1, made

    def verdicts(result):
        return sorted(re.findall(r"^(PASSED|FAILED) (dyncheck::\S+)", result.stdout.str(), re.M))

    assert verdicts(serial) == verdicts(parallel)
    assert len(verdicts(parallel)) == 8

    def summary(result):
        return result.stdout.str().split("dyncheck summary")[1].split("\n==")[0]

    assert summary(serial) == summary(parallel)
    assert "    paths through embed → layers.0-3 → norm → head (39 modules)" in summary(serial)
    assert "seed 9" in parallel.stdout.str()
    assert "dyncheck summary" in parallel.stdout.str()
    assert "determinism  failed" in parallel.stdout.str()
    # --dyncheck-explain: printed once by the controller, which collects nothing itself
    for result in (serial, parallel):
        assert result.stdout.str().count(f"# dyncheck spec for {GATED} (inferred parts marked)") == 1


def test_explain_prints_pasteable_python(dyncheck_run, pytester):
    run = dyncheck_run("--dyncheck", "reference_models.rnn:DynamicRNN", "--dyncheck-explain", "--co")
    code = run.text[run.text.index("# dyncheck spec for"):run.text.index("\n)\n") + 3]
    assert "'x': tensors(shape=('batch', 'time', 8))," in code
    assert "'seq_lengths': sequence_lengths()," in code
    assert "# inferred: first consumed by rnn (RNN(input_size=8, batch_first=True))" in code
    namespace: dict = {}
    exec(compile(code, "<explain>", "exec"), namespace)
    spec = namespace["spec"]
    assert spec.init == {"input_size": 8, "hidden_size": 6, "output_size": 4}
    # The pasted spec is a working spec: check it.
    pytester.makepyfile(pasted=code)
    again = dyncheck_run("--dyncheck", "pasted:spec", "--dyncheck-max-examples=3")
    assert again.ret == 0, again.text


def test_importing_dyncheck_and_the_plugin_imports_neither_torch_nor_hypothesis():
    code = (
        "import sys, dyncheck, dyncheck.plugin\n"
        "heavy = sorted(m for m in ('torch', 'hypothesis') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plain_pytest_run_does_not_import_torch(pytester):
    # Nor dyncheck's settings: nothing in the run names dyncheck, so the plugin reads nothing.
    pytester.makepyfile(
        test_plain="import sys\n\ndef test_ok():\n"
        "    assert 'torch' not in sys.modules\n"
        "    assert 'dyncheck.settings' not in sys.modules and 'dyncheck.project' not in sys.modules\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "given",
    [
        ("--dyncheck-max-examples=many",),
        ("-o", "dyncheck_max_examples=many"),
        ("pyproject", "[tool.dyncheck]\nmax_examples = 'many'\n"),
    ],
    ids=["option", "ini", "pyproject"],
)
def test_a_mistake_in_dyncheck_settings_is_reported_even_without_a_target(pytester, given):
    # The quick path for runs that do not use dyncheck must not swallow a bad value.
    args: tuple = given
    if given[0] == "pyproject":
        pytester.makefile(".toml", pyproject=given[1])
        args = ()
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert "many" in result.stderr.str()


@pytest.mark.usefixtures("subprocess_env")
def test_a_run_imports_only_what_its_checks_need(pytester):
    # coverage.py only when the coverage check runs; torch._dynamo only when a check builds
    # an optimizer or compiles (the gated net has no tie to train and nothing skipped here).
    pytester.makeconftest(
        "import sys\n\n"
        "def pytest_sessionfinish(session):\n"
        "    print('LOADED', sorted(m for m in ('coverage', 'torch._dynamo') if m in sys.modules))\n"
    )
    common = ["-p", "no:cacheprovider", "-s", "--dyncheck", GATED, "--dyncheck-only", "--dyncheck-max-examples=5"]
    light = pytester.runpytest_subprocess(*common, "--dyncheck-invariants=determinism,finite,purity")
    assert "LOADED []" in light.stdout.str(), light.stdout.str()
    covered = pytester.runpytest_subprocess(*common, "--dyncheck-invariants=coverage")
    assert "LOADED ['coverage']" in covered.stdout.str(), covered.stdout.str()


NEW_MODEL = """
import random

import torch
from torch import nn
from torch.nn import functional as F


class Model(nn.Module):
    '''A dynamic model nobody has shown dyncheck before: routed depth and a gated branch.'''

    def __init__(self, in_features, hidden, classes):
        super().__init__()
        self.embed = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(3)])
        self.extra = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, features, gate):
        h = F.gelu(self.embed(features))
        for block in self.blocks[: random.randint(1, 3)]:
            h = h + torch.tanh(block(h))
        if gate >= 0.25:
            h = self.extra(h)
        return self.head(h)
"""


@pytest.mark.usefixtures("subprocess_env")
@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_a_new_model_in_a_temporary_directory(pytester, workers):
    pytester.makepyfile(mymod=NEW_MODEL)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *workers, "--dyncheck", "mymod:Model", "--dyncheck-max-examples=15"
    )
    import torch

    # Not applicable here: an RNN, a lengths argument, episode flags (and a second device, without CUDA).
    skipped = 3 if torch.cuda.is_available() else 4
    result.assert_outcomes(passed=len(default_invariants()) - skipped, skipped=skipped)
    out = result.stdout.str()
    assert "mymod:Model  —  " in out
    # Both sides of the gate and several depths were seen.
    assert re.search(r"mymod:Model  —  ([4-9]|\d\d) distinct paths seen", out), out
