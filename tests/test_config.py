"""``[tool.dyncheck]`` in pyproject.toml: targets with their own invariants, skips and
budgets, default invariants, devices, profiles, the example database; the command line
overrides it; every mistake is one line naming the key and the fix. JUnit XML carries
each item's target, invariant, examples and paths as properties."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

GATED = "reference_models.gated:DynamicNet"
DEPTH = "reference_models.random_depth:DynamicNet"
RNN = "reference_models.rnn:DynamicRNN"
ROOT = Path(__file__).resolve().parent.parent

PROJECT = f"""
[tool.dyncheck]
targets = [
    "{GATED}",
    {{target = "{DEPTH}", invariants = ["determinism", "finite"], skip = {{finite = "checked by the training loop"}}, max_examples = 3}},
]
invariants = ["determinism"]
max_examples = 2

[tool.dyncheck.profiles.fast]
invariants = ["finite"]
max_examples = 1
"""


def examples(text: str, target: str, invariant: str) -> str:
    """The summary's "N examples" for one check."""
    summary = text.split("dyncheck summary")[1]
    block = summary.split(target, 1)[1].split("\nreference_models.", 1)[0]
    match = re.search(rf"^  {invariant} +\w+ +(.*)$", block, re.M)
    assert match, block
    return match.group(1)


def test_targets_with_their_own_invariants_skips_and_budgets(dyncheck_run, pytester):
    pytester.makepyprojecttoml(PROJECT)
    run = dyncheck_run("--dyncheck-seed=1")
    assert run.outcomes() == {
        f"dyncheck::{GATED}::determinism": "PASSED",
        f"dyncheck::{DEPTH}::determinism": "PASSED",
        f"dyncheck::{DEPTH}::finite": "SKIPPED",
    }
    assert examples(run.text, GATED, "determinism") == "2 examples"
    assert examples(run.text, DEPTH, "determinism") == "3 examples"
    assert run.skip_reason(f"dyncheck::{DEPTH}::finite") == "checked by the training loop"
    # not Hypothesis's own count: the header says where it was chosen
    assert (
        "dyncheck: 2 examples per check, from [tool.dyncheck] in pyproject.toml; a target with its own "
        "max_examples in [tool.dyncheck] targets uses that"
    ) in run.text


def test_the_command_line_overrides_the_file(dyncheck_run, pytester):
    pytester.makepyprojecttoml(PROJECT)
    run = dyncheck_run("--dyncheck-seed=1", "--dyncheck-invariants=determinism,finite", "--dyncheck-max-examples=4")
    assert set(run.outcomes()) == {
        f"dyncheck::{target}::{name}" for target in (GATED, DEPTH) for name in ("determinism", "finite")
    }
    assert examples(run.text, DEPTH, "determinism") == "4 examples"
    # a skip with its reason stays a skip
    assert run.outcomes()[f"dyncheck::{DEPTH}::finite"] == "SKIPPED"
    # targets named on the command line replace the file's
    listed = dyncheck_run("--dyncheck", RNN, "--co", "-q")
    assert re.findall(r"^dyncheck::\S+", listed.text, re.M) == [f"dyncheck::{RNN}::determinism"]


def test_a_profile_replaces_the_top_level_values(dyncheck_run, pytester):
    pytester.makepyprojecttoml(PROJECT)
    run = dyncheck_run("--dyncheck-seed=1", "--dyncheck-profile=fast")
    assert "dyncheck: profile fast (--dyncheck-profile=fast)" in run.text
    assert "dyncheck: 1 example per check, from [tool.dyncheck.profiles.fast] in pyproject.toml" in run.text
    # a target's own entry is more specific than the profile: only the command line beats it
    assert run.outcomes() == {
        f"dyncheck::{GATED}::finite": "PASSED",
        f"dyncheck::{DEPTH}::determinism": "PASSED",
        f"dyncheck::{DEPTH}::finite": "SKIPPED",
    }
    assert examples(run.text, GATED, "finite") == "1 example"
    assert examples(run.text, DEPTH, "determinism") == "3 examples"
    # the command line still wins over the profile
    run = dyncheck_run("--dyncheck-seed=1", "--dyncheck-profile=fast", "--dyncheck-max-examples=2")
    assert examples(run.text, GATED, "finite") == "2 examples"
    assert "examples per check, from" not in run.text  # the user gave it: nothing to say


def test_a_reproduce_command_carries_the_targets_own_budget(pytester):
    from dyncheck.project import TargetConfig
    from dyncheck.settings import Settings

    settings = Settings(
        targets=(GATED,), seed=5, seed_given=True, max_examples=2, invariants=None, explain=False, only=True,
        target_config={GATED: TargetConfig(GATED, max_examples=50, time_budget=90.0)},
    )
    assert settings.reproduce(GATED, "finite") == (
        f"pytest --dyncheck {GATED} --dyncheck-only --dyncheck-seed=5 --dyncheck-max-examples=50 "
        "--dyncheck-time-budget=90 -k finite"
    )


def test_unknown_profile(dyncheck_run, pytester):
    path = pytester.makepyprojecttoml(PROJECT)
    run = dyncheck_run("--dyncheck-profile=nightly")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: --dyncheck-profile=nightly: no profile 'nightly' in {path}; known profiles: fast" in run.text
    pytester.makepyprojecttoml("[tool.dyncheck]\nmax_examples = 3\n")
    run = dyncheck_run("--dyncheck-profile=ci")
    assert (
        f"ERROR: --dyncheck-profile=ci: {path} has no [tool.dyncheck.profiles.ci] table; define it, "
        "e.g. [tool.dyncheck.profiles.ci] with max_examples = 1000"
    ) in run.text


KNOWN = (
    "determinism, finite, grad_isolation, coverage, state_roundtrip, purity, tied_weights, device_agreement, "
    "dtype_agreement, batch_invariance, packed_rnn, padding_invariance, episode_reset, causality, compile_agreement, "
    "refactor_agreement, "
    "baseline"
)


def bad(toml: str, message: str, id: str) -> object:
    return pytest.param(toml, message, id=id)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        bad("max_exmples = 3", "[tool.dyncheck] has unknown key 'max_exmples'; did you mean max_examples? known keys: "
            "targets, invariants, devices, max_examples, time_budget, database, profiles, and the tolerance tables "
            "[tool.dyncheck.batch_invariance], [tool.dyncheck.compile_agreement], [tool.dyncheck.device_agreement], "
            "[tool.dyncheck.dtype_agreement], [tool.dyncheck.refactor_agreement], [tool.dyncheck.baseline]",
            id="unknown-key"),
        bad('max_examples = "ten"', "[tool.dyncheck] max_examples = 'ten' must be a whole number, e.g. max_examples = 100",
            id="not-a-number"),
        bad("max_examples = 0", "[tool.dyncheck] max_examples = 0 must be at least 1", id="too-few"),
        bad('invariants = ["determinsm"]', "[tool.dyncheck] invariants: unknown invariant(s) determinsm; did you mean "
            f"determinism? known: {KNOWN}", id="unknown-invariant"),
        bad("invariants = 3", '[tool.dyncheck] invariants must be a list of invariant names, e.g. invariants = '
            '["determinism", "finite"]', id="invariants-not-a-list"),
        bad('targets = "pkg:Net"', '[tool.dyncheck] targets must be a list, e.g. targets = ["mypkg.models:Net"]',
            id="targets-not-a-list"),
        bad('targets = [3]', '[tool.dyncheck] targets[0] must be "module.path:Name" or a table with target = '
            '"module.path:Name", e.g. {target = "mypkg.models:Net", max_examples = 200}', id="target-not-a-name"),
        bad('targets = [{name = "pkg:Net"}]', "[tool.dyncheck] targets[0] has unknown key 'name'; known keys: "
            "target, invariants, skip, max_examples, time_budget", id="target-unknown-key"),
        bad('targets = ["pkg:Net", "pkg:Net"]', "[tool.dyncheck] targets names pkg:Net twice; give it once", id="twice"),
        bad('targets = [{target = "pkg:Net", skip = {finite = 3}}]', "[tool.dyncheck] targets[0] skip.finite must be "
            'the reason it is skipped, a string, e.g. skip = {compile_agreement = "uses a custom CUDA op"}',
            id="skip-without-reason"),
        bad('targets = [{target = "pkg:Net", skip = {finit = "why"}}]', "[tool.dyncheck] targets[0] skip: unknown "
            f"invariant(s) finit; did you mean finite? known: {KNOWN}", id="skip-unknown-invariant"),
        bad('targets = [{target = "pkg:Net", max_examples = -1}]', "[tool.dyncheck] targets[0] max_examples = -1 "
            "must be at least 1", id="target-budget"),
        bad('time_budget = "soon"', "[tool.dyncheck] time_budget = 'soon' must be a positive duration in seconds "
            '(120, "90s", "1.5m" or "2h"), e.g. time_budget = 120', id="time-budget"),
        bad("[tool.dyncheck.profiles.nightly]\ntime_budget = -5", "[tool.dyncheck.profiles.nightly] time_budget = -5 must "
            'be a positive duration in seconds (120, "90s", "1.5m" or "2h"), e.g. time_budget = 120', id="profile-time-budget"),
        bad("devices = 3", '[tool.dyncheck] devices must name devices, e.g. devices = "cpu,cuda" or ["cuda:0", "cuda:1"]',
            id="devices"),
        bad('database = "ftp://host/db"', "[tool.dyncheck] database = 'ftp://host/db': ftp:// is not a database "
            'dyncheck can open; give a directory, "github:owner/repo[/artifact]", "redis://host:port/db" or "none"',
            id="database-scheme"),
        bad('database = "github:owner"', "[tool.dyncheck] database = 'github:owner': write a GitHub artifact database "
            'as "github:owner/repo" or "github:owner/repo/artifact-name"', id="database-github"),
        bad("database = 1", "[tool.dyncheck] database = 1 must be a directory, \"github:owner/repo[/artifact]\", "
            '"redis://host:port/db" or "none"', id="database-type"),
        bad("[tool.dyncheck.profiles.ci]\nmax_example = 3", "[tool.dyncheck.profiles.ci] has unknown key "
            "'max_example'; did you mean max_examples? known keys: invariants, devices, max_examples, time_budget, database",
            id="profile-unknown-key"),
        bad("profiles = 3", "[tool.dyncheck] profiles must be tables, e.g. [tool.dyncheck.profiles.nightly] with "
            "max_examples = 1000", id="profiles-not-tables"),
        bad("[tool.dyncheck.dtype_agreement]\nrtol = 1e-3\natol = 1e-4\nmargin = 2", "[tool.dyncheck.dtype_agreement] "
            "has unknown key 'margin'; known keys: rtol, atol", id="tolerance-unknown-key"),
    ],
)
def test_mistakes_are_one_line_usage_errors(dyncheck_run, pytester, toml, message):
    path = pytester.makepyprojecttoml("[tool.dyncheck]\n" + toml + "\n")
    run = dyncheck_run("--co")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in run.text.splitlines() if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {path}: {message}"]
    assert "Traceback" not in run.text


def test_devices_from_the_file_name_the_file_in_errors(dyncheck_run, pytester):
    path = pytester.makepyprojecttoml('[tool.dyncheck]\ndevices = "cpu,nosuchdevice"\n')
    run = dyncheck_run("--dyncheck", GATED, "--co")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in run.text.splitlines() if line.startswith("ERROR:")]
    assert line.startswith(f"ERROR: {path}: [tool.dyncheck] devices = 'cpu,nosuchdevice': ")
    assert line.endswith("give devices such as cpu,cuda or cuda:0,cuda:1, or module:Name of a dyncheck.agreement.Config")


@pytest.mark.skipif(importlib.util.find_spec("redis") is not None, reason="redis is installed here")
def test_a_redis_database_without_redis_is_a_usage_error(dyncheck_run, pytester):
    path = pytester.makepyprojecttoml('[tool.dyncheck]\ndatabase = "redis://localhost:6379/0"\n')
    run = dyncheck_run("--dyncheck", GATED, "--co")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        f"ERROR: {path}: [tool.dyncheck] database = 'redis://localhost:6379/0': a Redis database needs the "
        "redis package: pip install 'hypothesis[redis]'"
    ) in run.text
    run = dyncheck_run("--dyncheck", GATED, "--co", "--dyncheck-database=redis://localhost")
    assert (
        "ERROR: --dyncheck-database=redis://localhost: a Redis database needs the redis package: "
        "pip install 'hypothesis[redis]'"
    ) in run.text


def test_the_database_is_the_one_each_check_uses(pytester):
    """The item's Hypothesis settings use the configured database (a directory, the
    GitHub-artifact recipe, or none), not Hypothesis's default one."""
    from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase

    from dyncheck.database import open_database

    folder = open_database("shared/db", Path("/base"))
    assert isinstance(folder, DirectoryBasedExampleDatabase) and str(folder.path) == "/base/shared/db"
    github = open_database("github:octo/models/nightly-db", Path("/base"))
    assert isinstance(github, MultiplexedDatabase)
    assert "GitHubArtifactDatabase(owner='octo', repo='models', artifact_name='nightly-db')" in repr(github)
    assert open_database("none", Path("/base")) is None


def test_junit_xml_properties(dyncheck_run, pytester):
    run = dyncheck_run(
        "--dyncheck", GATED, "--dyncheck-seed=1", "--dyncheck-max-examples=3",
        "--dyncheck-invariants=determinism,packed_rnn", "--junitxml=out.xml",
    )
    assert run.ret == 0
    cases = {
        f"{case.get('classname')}::{case.get('name')}": case
        for case in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    }
    properties = {
        name: [(p.get("name"), p.get("value")) for p in case.iter("property") if p.get("name", "").startswith("dyncheck")]
        for name, case in cases.items()
    }
    determinism = properties[f"dyncheck.{GATED}::determinism"]
    assert determinism[:4] == [
        ("dyncheck.target", GATED), ("dyncheck.invariant", "determinism"), ("dyncheck.examples", "3"),
        ("dyncheck.paths", str(sum(1 for name, _ in determinism if name == "dyncheck.path"))),
    ]
    assert all(re.fullmatch(r"fc1 → (fc2 → )?fc3 \(\d+ calls?\)", value) for name, value in determinism[4:])
    # a check skipped before it ran still says what it was
    assert properties[f"dyncheck.{GATED}::packed_rnn"] == [("dyncheck.target", GATED), ("dyncheck.invariant", "packed_rnn")]
    assert "{'target'" not in (pytester.path / "out.xml").read_text()


def test_audit_reads_the_file_and_its_profiles(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.dyncheck]\ntargets = ["{GATED}"]\ninvariants = ["determinism", "grad_isolation"]\n'
        '[tool.dyncheck.profiles.fast]\ninvariants = ["finite"]\nmax_examples = 2\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "dyncheck", "audit", "--dyncheck-profile", "fast", "--seed", "2", "--no-cost"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "budget: the budget of profile fast (--dyncheck-profile)" in result.stdout
    assert f"{GATED}  —  clean" in result.stdout
    assert re.search(r"^  finite +passed +2 ", result.stdout, re.M)
    assert "determinism" not in result.stdout.split("Invariants")[1].split("Paths")[0]


def test_the_documented_configurations_are_valid(tmp_path):
    """Every pyproject.toml sample in docs/ reads without a usage error."""
    from dyncheck.invariants import registry
    from dyncheck.project import read

    samples = [
        block
        for page in sorted((ROOT / "docs").glob("*.md"))
        for block in re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)
    ]
    assert len(samples) >= 3
    for number, block in enumerate(samples):
        path = tmp_path / f"sample{number}.toml"
        path.write_text(block)
        read(path, lambda: list(registry()))


def test_a_time_budget_from_the_file_ends_the_checks(dyncheck_run, pytester):
    pytester.makepyprojecttoml(
        f'[tool.dyncheck]\ntargets = [{{target = "{GATED}", time_budget = "0.001s"}}]\n'
        'invariants = ["determinism"]\nmax_examples = 50\n'
    )
    run = dyncheck_run("--dyncheck-seed=1")
    assert re.search(r"the time budget of 0\.001 s ended it after \d+ of 50 examples", run.text), run.text
    # the command line wins over the target's own budget
    run = dyncheck_run("--dyncheck-seed=1", "--dyncheck-time-budget=1h")
    assert "ended it" not in run.text
    assert examples(run.text, GATED, "determinism") == "50 examples"


def test_the_header_names_the_ini_option_a_count_came_from(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-invariants=finite", "-o", "dyncheck_max_examples=3")
    assert "dyncheck: 3 examples per check, from the dyncheck_max_examples ini option" in run.text, run.text
    assert examples(run.text, GATED, "finite") == "3 examples"
