"""Spreading the checks over machines: ``--dyncheck-shard=K/N`` splits the items exactly
(shards together = the whole run, no item twice, also with ``-n 2``), and a shared
Hypothesis example database makes a failure found by one process replay first in another."""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dyncheck.shard import split

GATED = "reference_models.gated:DynamicNet"
DEPTH = "reference_models.random_depth:DynamicNet"
ROOT = Path(__file__).resolve().parent.parent


class Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_split_is_exact_balanced_and_independent_of_order():
    items = [Item(f"dyncheck::t{t}::inv{i}") for t in range(3) for i in range(7)]
    for n in (1, 2, 3, 4, 5, 21, 25):
        shards = [split(items, k, n)[0] for k in range(1, n + 1)]
        ids = [item.nodeid for shard in shards for item in shard]
        assert sorted(ids) == sorted(item.nodeid for item in items) and len(ids) == len(set(ids))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        shuffled = items[:]
        random.Random(n).shuffle(shuffled)
        for k in range(1, n + 1):
            mine, others = split(shuffled, k, n)
            assert {i.nodeid for i in mine} == {i.nodeid for i in shards[k - 1]}
            assert {i.nodeid for i in others} == {i.nodeid for i in items} - {i.nodeid for i in mine}
            assert mine == [i for i in shuffled if i in mine]  # the run's order is kept


def collected(dyncheck_run, *args: str) -> list[str]:
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck", DEPTH, "--co", "-q", *args)
    assert run.ret == 0, run.text
    return re.findall(r"^dyncheck::\S+", run.text, re.M)


@pytest.mark.parametrize("n", [2, 3])
def test_shards_together_collect_the_whole_run_once(dyncheck_run, n):
    whole = collected(dyncheck_run)
    shards = [collected(dyncheck_run, f"--dyncheck-shard={k}/{n}") for k in range(1, n + 1)]
    union = [nodeid for shard in shards for nodeid in shard]
    assert sorted(union) == sorted(whole) and len(union) == len(set(union))
    assert all(shard for shard in shards)


def test_shards_of_a_selection_split_the_selection(dyncheck_run):
    whole = collected(dyncheck_run, "-k", "not agreement")
    halves = [collected(dyncheck_run, "-k", "not agreement", f"--dyncheck-shard={k}/2") for k in (1, 2)]
    assert sorted(halves[0] + halves[1]) == sorted(whole) and not set(halves[0]) & set(halves[1])


def test_header_names_the_shard(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-shard=2/3", "--co")
    assert "dyncheck: shard 2 of 3 (--dyncheck-shard=2/3)" in run.text
    assert re.search(r"collected \d+ items / \d+ deselected / \d+ selected", run.text)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3/2", "--dyncheck-shard=3/2: K must be between 1 and N=2, e.g. --dyncheck-shard=1/2"),
        ("0/2", "--dyncheck-shard=0/2: K must be between 1 and N=2, e.g. --dyncheck-shard=1/2"),
        ("1/0", "--dyncheck-shard=1/0 must be K/N, e.g. --dyncheck-shard=1/4 for the first of four shards"),
        ("half", "--dyncheck-shard=half must be K/N, e.g. --dyncheck-shard=1/4 for the first of four shards"),
    ],
)
def test_bad_shards_are_usage_errors(dyncheck_run, value, message):
    run = dyncheck_run("--dyncheck", GATED, f"--dyncheck-shard={value}", "--co")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {message}" in run.text


def test_a_shard_runs_its_items_with_xdist(pytester, dyncheck_run, subprocess_env):
    from conftest import ROOT

    pytester.syspathinsert(ROOT)
    args = ["--dyncheck-only", "-p", "no:cacheprovider", "-rA", "--dyncheck", GATED, "--dyncheck", DEPTH,
            "--dyncheck-seed=4", "--dyncheck-max-examples=2", "--dyncheck-invariants=determinism,finite,coverage"]
    mine = collected(dyncheck_run, "--dyncheck-invariants=determinism,finite,coverage", "--dyncheck-shard=1/2")
    result = pytester.runpytest_subprocess("-n", "2", "--dyncheck-shard=1/2", *args)
    ran = re.findall(r"^(?:PASSED|FAILED|SKIPPED|ERROR) (dyncheck::\S+)", result.stdout.str(), re.M)
    assert sorted(ran) == sorted(mine) and len(mine) == 3, result.stdout.str()


# --------------------------------------------------------------------------- a shared database

MODEL = '''
import os

import torch
from torch import nn


class Net(nn.Module):
    """Fails (a NaN) only on a batch of two or more with control above 0.5."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x, control):
        # Only the check's own examples (pytest's "call" phase; in training, as each example
        # runs first): dyncheck's probes of the model while setting the check up, and
        # finite's second call in eval mode, are not logged.
        if self.training and os.environ.get("PYTEST_CURRENT_TEST", "").endswith("(call)"):
            with open(os.environ["REPLAY_LOG"], "a") as log:
                log.write(f"{tuple(x.shape)} {float(control)!r} {x.sum().item()!r}\\n")
        out = self.fc(x)
        if x.shape[0] >= 2 and control > 0.5:
            return out * float("nan")
        return out
'''


def check(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """``pytest --dyncheck replaymod:Net`` (finite only) in its own process; the examples
    the model saw, in order."""
    log = folder / "calls.log"
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}", "REPLAY_LOG": str(log), "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)  # this test's own: the model logs the child's call phase only
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--dyncheck=replaymod:Net", "--dyncheck-only", "-p", "no:cacheprovider",
         "--dyncheck-invariants=finite", "--dyncheck-max-examples=60", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def project(tmp_path: Path, name: str, database: str | None) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "replaymod.py").write_text(textwrap.dedent(MODEL))
    if database is not None:
        (folder / "pyproject.toml").write_text(f'[tool.dyncheck]\ndatabase = "{database}"\n')
    return folder


def test_a_failure_found_by_one_process_replays_first_in_another(tmp_path):
    first, calls = check(project(tmp_path, "machine1", "shared-db"), "--dyncheck-seed=1")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "dyncheck: example database shared-db" in first.stdout
    minimal = calls[-1]  # Hypothesis runs the shrunk failing example last, to report it
    assert minimal.startswith("(2, 3) ")
    shared = tmp_path / "machine1" / "shared-db"
    # Saved under a key made of the node id alone, not of dyncheck's source: a failure
    # saved before an upgrade of dyncheck still replays after it.
    from hypothesis.database import DirectoryBasedExampleDatabase

    key = hashlib.sha384(b"dyncheck:dyncheck::replaymod:Net::finite").digest()
    assert list(DirectoryBasedExampleDatabase(shared).fetch(key))

    # Another machine, another seed, the same database given on the command line.
    # The saved failure replays right after the examples every run starts with: the
    # simplest one, then one on each side of the threshold.
    second, replayed = check(project(tmp_path, "machine2", None), "--dyncheck-seed=2", f"--dyncheck-database={shared}")
    assert second.returncode == 1, second.stdout + second.stderr
    assert replayed[:3] == ["(1, 3) 0.5 0.0", "(1, 3) 0.4999999701976776 0.0", "(1, 3) 0.5000000596046448 0.0"]
    assert replayed[3] == minimal

    # Without the shared database, the same run starts elsewhere: the replay came from it.
    alone, fresh = check(project(tmp_path, "machine3", "own-db"), "--dyncheck-seed=2")
    assert fresh[:3] == replayed[:3]
    assert fresh[3] != minimal
