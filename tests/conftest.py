"""Hypothesis profiles for dyncheck's own suite: fewer examples on CI, no deadlines
(torch work has unpredictable first-call latency)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings


def _import_once() -> None:
    """What every in-process run uses, imported before the first one: pytester's module
    snapshots drop what a run imported, and torch, coverage's tracer and a second copy of
    dyncheck's modules (a second Spec class) must not be dropped and imported again."""
    import coverage  # noqa: F401
    import torch  # noqa: F401

    import dyncheck._items  # noqa: F401
    import dyncheck.invariants  # noqa: F401
    import dyncheck.target  # noqa: F401


def _import_what_optimizer_steps_import() -> None:
    """An optimizer's first step imports parts of torch lazily (torch._dynamo, inductor
    test ops); importing them once here keeps pytester from dropping and re-registering
    them, which torch refuses."""
    import torch

    from dyncheck.invariants.grad_isolation import default_optimizers

    parameter = torch.nn.Parameter(torch.zeros(1))
    for factory in default_optimizers().values():
        parameter.grad = torch.ones(1)
        factory([parameter]).step()


settings.register_profile(
    "ci", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # xdist's controller runs no test: its workers start only after this returns, and
        # torch's import (about 2 s here) would delay them all.
        return
    _import_once()
    # Each xdist worker gets its share of the cores for torch's thread pool, as dyncheck
    # gives its own workers (dyncheck.parallel): with -n 2 on two cores, two workers each
    # running a two-thread pool are slower than one thread each.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from dyncheck.parallel import share_cores

        share_cores(int(workerinput.get("workercount", 1)))
    # `make check` (python -m dyncheck, i.e. --dyncheck-only) also loads this file through
    # testpaths; it checks the reference models with the count pyproject.toml's
    # [tool.dyncheck] gives, as a user's project would, and pays for torch._dynamo only if a
    # check builds an optimizer.
    if not config.getoption("dyncheck_only", False):
        _import_what_optimizer_steps_import()
        settings.load_profile(_profile())


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (torch, Hypothesis, dyncheck, the test modules) lives as
    long as the process: moved out of the collector's sight. Every full collection (one
    every second or so, as the tests' checks make copies and autograd graphs) otherwise
    walks all of it again. Objects made later, every model a test builds, are collected
    as before. (A checks-only run of dyncheck freezes its own heap the same way; in this
    process, already frozen, it leaves the freeze to this hook.)"""
    import gc

    if not session.config.getoption("dyncheck_only", False):
        gc.collect()
        gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    # The suite's own xdist workers exit right after this: what the tests left is freed by
    # the exit, not walked by the collector first (about a second). Only here, where every
    # object is the suite's own: dyncheck's freeze of a checks-only run ends with its session,
    # so that the finalizers of objects left in reference cycles (a file one buffers into)
    # still run; this one is never undone.
    if hasattr(config, "workerinput") and not config.getoption("dyncheck_only", False):
        import gc

        gc.freeze()


def _profile() -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def verdicts_only():
    """The suite's profile without shrinking, for the in-process runs of a test that reads
    verdicts, not counterexamples (Hypothesis still replays the failing example once, so a
    failure that does not reproduce is still an error). Shrunk examples are pinned in each
    invariant's own tests."""
    from hypothesis import Phase

    name = _profile()
    settings.register_profile(
        f"{name}-verdicts",
        parent=settings.get_profile(name),
        phases=[phase for phase in settings.get_profile(name).phases if phase is not Phase.shrink],
    )
    settings.load_profile(f"{name}-verdicts")
    try:
        yield
    finally:
        settings.load_profile(name)


ROOT = Path(__file__).resolve().parent.parent


def default_invariants() -> list[str]:
    """The invariants a run collects when --dyncheck-invariants is not given (not opt-in)."""
    from dyncheck.invariants import registry

    return [name for name, cls in registry().items() if not cls.opt_in]


class DyncheckRun:
    """The outcome of one in-process ``pytest --dyncheck ...`` run."""

    def __init__(self, result: pytest.RunResult) -> None:
        self.result = result
        self.ret = result.ret
        self.text = result.stdout.str() + "\n" + result.stderr.str()

    def outcomes(self) -> dict[str, str]:
        """node id -> PASSED/FAILED/SKIPPED/ERROR/XFAIL/XPASS, from the -rA short summary."""
        found = {}
        for line in self.text.splitlines():
            match = re.match(r"^(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) (?:\[\d+\] )?(dyncheck::\S+)", line)
            if match:
                found[match.group(2)] = match.group(1)
                continue
            # -rA shows a skip by its location, not its node id: read both from the reason.
            match = re.match(
                r"^SKIPPED \[\d+\] \S+:\d+: (\w+) (?:does not apply to (\S+):|compared nothing on (\S+) in )", line
            )
            if match:
                found[f"dyncheck::{match.group(2) or match.group(3)}::{match.group(1)}"] = "SKIPPED"
        return found

    def skip_reason(self, nodeid: str) -> str:
        """Why the item ``nodeid`` was skipped (the text after its target)."""
        invariant, target = nodeid.rsplit("::", 1)[1], nodeid.split("::")[1]
        prefix = f"{invariant} does not apply to {target}: "
        for line in self.text.splitlines():
            if prefix in line:
                return line.partition(prefix)[2]
        return self.vacuous_reason(nodeid)

    def vacuous_reason(self, nodeid: str) -> str:
        """Why the item ``nodeid`` compared nothing (the text after ``compared nothing on
        <target> in N examples: ``)."""
        invariant, target = nodeid.rsplit("::", 1)[1], nodeid.split("::")[1]
        pattern = rf"{re.escape(invariant)} compared nothing on {re.escape(target)} in \d+ examples?: (.*)$"
        for line in self.text.splitlines():
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError(f"{nodeid} was not skipped:\n{self.text}")

    def failure(self, nodeid_suffix: str) -> str:
        """The failure section of the item whose node id ends with ``nodeid_suffix``."""
        sections = re.split(r"\n_{3,} (.+?) _{3,}\n", self.text)
        for title, body in zip(sections[1::2], sections[2::2]):
            if title.endswith(nodeid_suffix):
                return body.split("\n=====")[0]
        raise AssertionError(f"no failure section for {nodeid_suffix}:\n{self.text}")


@pytest.fixture
def dyncheck_run(pytester: pytest.Pytester, request: pytest.FixtureRequest):
    """Run pytest in-process with the given dyncheck arguments (only dyncheck items).

    A run whose arguments give no seed gets one fixed by the test's node id: the suite's
    verdicts are the same on every run and machine, as a user's with --dyncheck-seed, and
    each test still draws other examples than its neighbours. ``run(..., seeded=False)``
    leaves the seed out, as a user's run without one."""
    import zlib

    pytester.syspathinsert(ROOT)
    seed = f"--dyncheck-seed={zlib.crc32(request.node.nodeid.encode()) % 100_000}"

    def run(*args: str, seeded: bool = True) -> DyncheckRun:
        """``seeded=False``: as a user's run with no seed (one drawn per run)."""
        if seeded and not any(a.startswith(("--dyncheck-seed", "--hypothesis-seed")) for a in args):
            args = (*args, seed)
        # Hypothesis's plugin loads a run's --hypothesis-profile for the whole process: put
        # back the profile this test runs under, or the next in-process run on this worker
        # (another test's) would draw under it.
        profile = settings.get_current_profile_name()
        try:
            return DyncheckRun(pytester.runpytest("--dyncheck-only", "-rA", "-p", "no:cacheprovider", *args))
        finally:
            settings.load_profile(profile)

    return run


@pytest.fixture(scope="session")
def compilation_loaded() -> None:
    """torch.compile, once in this process before any in-process run compiles: its first
    compilation imports modules that register operators and cache artifacts, which
    pytester drops after an in-process run, and a second run's compilation registering
    them again is refused ("Artifact of type=autotune already registered")."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch's own modules, imported by the first compilation (torch.jit deprecations)
        warnings.simplefilter("ignore")
        torch.compile(lambda x: x * 2)(torch.ones(2))


@pytest.fixture
def subprocess_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocess runs import reference_models from the repository root."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
