"""dyncheck's options, parsed once into a frozen dataclass kept in ``config.stash``.

This module imports neither torch nor hypothesis: the plugin loads it at pytest start-up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from dyncheck.plugin import SETTINGS_KEY
from dyncheck.project import TOLERANCE_INVARIANTS, database_problem, read

__all__ = ["Settings", "SETTINGS_KEY", "TOLERANCE_INVARIANTS", "parse"]


@dataclass(frozen=True)
class Settings:
    targets: tuple[str, ...]
    seed: int
    seed_given: bool
    max_examples: int | None
    invariants: tuple[str, ...] | None
    explain: bool
    only: bool
    devices: str = ""
    #: invariant name -> (rtol, atol) from [tool.dyncheck.<invariant>] in pyproject.toml
    tolerances: dict = field(default_factory=dict)
    #: seconds each check may spend generating examples (None: adaptive, see dyncheck.budget)
    time_budget: float | None = None
    #: the --dyncheck-profile in use (its values are already merged into these fields)
    profile: str | None = None
    #: where ``max_examples`` was configured, for the header ("[tool.dyncheck] in
    #: pyproject.toml"); empty when the command line gave it or nothing did
    max_examples_origin: str = ""
    #: (K, N): this run is shard K of N (--dyncheck-shard=K/N)
    shard: tuple[int, int] | None = None
    #: the example database as written, where it was given (for messages), and the folder
    #: a relative directory is relative to; None: Hypothesis's own default database
    database: str | None = None
    database_origin: str = ""
    database_base: str = ""
    #: where ``devices`` was given, as the start of a message ("--dyncheck-devices=cpu,cuda")
    devices_origin: str = ""
    #: target -> its entry in [tool.dyncheck] targets (own invariants, skips, budget)
    target_config: dict = field(default_factory=dict)
    #: the fields the command line gave: they win over a target's own entry
    from_command_line: frozenset = frozenset()
    #: the old model every target must agree with: --dyncheck-against (over a Spec's
    #: against), and the ini value dyncheck_against (under it)
    against: str = ""
    against_ini: str = ""
    #: where the golden baselines live (--dyncheck-baseline / dyncheck_baseline), absolute
    baseline: str = ""
    #: (re)record the baselines instead of comparing with them
    update_baseline: bool = False

    @property
    def active(self) -> bool:
        return bool(self.targets)

    def _for(self, target: str, name: str) -> Any:
        """``name`` for ``target``: its own [tool.dyncheck] targets entry, unless the
        command line gave the field, else the run's value."""
        own = getattr(self.target_config.get(target), name, None)
        if own is not None and name not in self.from_command_line:
            return own
        return getattr(self, name)

    def invariants_for(self, target: str) -> tuple[str, ...] | None:
        """The invariants to collect for ``target`` (None: every one that is not opt-in)."""
        return self._for(target, "invariants")

    def max_examples_for(self, target: str) -> int | None:
        """The example budget of each check of ``target`` (None: Hypothesis's profile)."""
        return self._for(target, "max_examples")

    def time_budget_for(self, target: str) -> float | None:
        """The seconds each check of ``target`` may spend (None: adaptive)."""
        return self._for(target, "time_budget")

    def reproduce(self, target: str, invariant: str, *, named: bool = False) -> str:
        """The command that re-runs one check with this run's seed; ``named``: an opt-in
        check collected only because the run named it."""
        parts = ["pytest", f"--dyncheck {target}", "--dyncheck-only", f"--dyncheck-seed={self.seed}"]
        if self.against and invariant == "refactor_agreement":
            parts.append(f"--dyncheck-against={self.against}")
        if self.baseline and invariant == "baseline":
            import os

            relative = os.path.relpath(self.baseline)
            parts.append(f"--dyncheck-baseline={self.baseline if relative.startswith('..') else relative}")
        max_examples = self.max_examples_for(target)
        if max_examples is not None:
            parts.append(f"--dyncheck-max-examples={max_examples}")
        time_budget = self.time_budget_for(target)
        if time_budget is not None:
            parts.append(f"--dyncheck-time-budget={time_budget:g}")
        if named:
            # an opt-in check this run collected because it was named (causality on a model
            # not declared causal, compile_agreement): -k alone would select nothing
            parts.append(f"--dyncheck-invariants={invariant}")
        parts.append(f"-k {invariant}")
        return " ".join(parts)



def _int_option(config: pytest.Config, option: str, ini: str | None, *, minimum: int) -> int | None:
    raw: Any = config.getoption(option.lstrip("-").replace("-", "_"))
    source = option
    if raw is None and ini is not None:
        raw = config.getini(ini) or None
        source = ini
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{source}={raw!r} must be a whole number, e.g. {option}=100") from None
    if value < minimum:
        raise pytest.UsageError(f"{source}={value} must be at least {minimum}")
    return value


def _seconds_option(config: pytest.Config, option: str, ini: str | None) -> float | None:
    from dyncheck.budget import parse_seconds

    raw: Any = config.getoption(option.lstrip("-").replace("-", "_"))
    source = option
    if raw is None and ini is not None:
        raw = config.getini(ini) or None
        source = ini
    if raw is None:
        return None
    try:
        return parse_seconds(raw)
    except ValueError:
        raise pytest.UsageError(
            f"{source}={raw!r} must be a positive duration in seconds (90, 90s, 1.5m or 2h), e.g. {option}=120"
        ) from None


def _shard(config: pytest.Config) -> tuple[int, int] | None:
    raw = config.getoption("dyncheck_shard", None)
    if raw is None:
        return None
    k, slash, n = str(raw).partition("/")
    try:
        shard = (int(k), int(n)) if slash else None
    except ValueError:
        shard = None
    if shard is None or shard[1] < 1:
        raise pytest.UsageError(f"--dyncheck-shard={raw} must be K/N, e.g. --dyncheck-shard=1/4 for the first of four shards")
    if not 1 <= shard[0] <= shard[1]:
        raise pytest.UsageError(f"--dyncheck-shard={raw}: K must be between 1 and N={shard[1]}, e.g. --dyncheck-shard=1/{shard[1]}")
    return shard


def _baseline_path(config: pytest.Config, targets: list[str], update: bool) -> str:
    """The baseline location as an absolute path: the option is relative to the directory
    pytest was invoked from, the ini value to the ini file's directory (the rootdir)."""
    import os

    raw = config.getoption("dyncheck_baseline", None)
    base = config.invocation_params.dir
    source = "--dyncheck-baseline"
    if not raw:
        raw = config.getini("dyncheck_baseline") or ""
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        source = "dyncheck_baseline"
    raw = raw.strip()
    if not raw:
        if update:
            raise pytest.UsageError(
                "--dyncheck-update-baseline needs to know where the baselines live: "
                "give --dyncheck-baseline=PATH (a .json file, or a directory for one file per target)"
            )
        return ""
    path = os.path.normpath(os.path.join(str(base), os.path.expanduser(raw)))
    if path.endswith(".json") and len(targets) > 1:
        raise pytest.UsageError(
            f"{source}={raw} names one file but there are {len(targets)} targets; give a directory "
            "(one baseline file per target is kept in it)"
        )
    return path


def parse(config: pytest.Config, known_invariants: Any) -> Settings:
    """Read and validate every option and ``[tool.dyncheck]`` (:mod:`dyncheck.project`);
    ``known_invariants`` is a callable returning the registered invariant names (only
    called when invariants are named)."""
    targets = list(config.getoption("dyncheck_targets") or [])
    targets += [t for t in config.getini("dyncheck_targets") if t not in targets]
    targets = list(dict.fromkeys(t.strip() for t in targets if t.strip()))

    workerinput = getattr(config, "workerinput", None)
    seed_given = False
    if workerinput is not None and "dyncheck_seed" in workerinput:
        seed = int(workerinput["dyncheck_seed"])
        seed_given = bool(workerinput.get("dyncheck_seed_given"))
    else:
        option_seed = _int_option(config, "--dyncheck-seed", None, minimum=0)
        hypothesis_seed = config.getoption("hypothesis_seed", None)
        if option_seed is not None:
            seed, seed_given = option_seed, True
        elif hypothesis_seed is not None:
            try:
                seed, seed_given = int(hypothesis_seed), True
            except ValueError:
                seed, seed_given = int.from_bytes(str(hypothesis_seed).encode()[:8], "big"), True
        else:
            seed = random.Random().randrange(10_000, 100_000)

    project = read(config.rootpath / "pyproject.toml", known_invariants)
    profile_name = config.getoption("dyncheck_profile", None)
    profile = project.profile(profile_name) if profile_name else None
    from_command_line = set()

    # The command line wins, then the profile, then [tool.dyncheck], then pytest's ini values.
    max_examples = _int_option(config, "--dyncheck-max-examples", None, minimum=1)
    max_examples_origin = ""
    if max_examples is not None:
        from_command_line.add("max_examples")
    else:
        max_examples = (
            (profile.max_examples if profile else None)
            or project.max_examples
            or _int_option(config, "--dyncheck-max-examples", "dyncheck_max_examples", minimum=1)
        )
        if profile and profile.max_examples:
            max_examples_origin = f"[tool.dyncheck.profiles.{profile_name}] in pyproject.toml"
        elif project.max_examples:
            max_examples_origin = "[tool.dyncheck] in pyproject.toml"
        elif max_examples is not None:
            max_examples_origin = "the dyncheck_max_examples ini option"

    time_budget = _seconds_option(config, "--dyncheck-time-budget", None)
    if time_budget is not None:
        from_command_line.add("time_budget")
    else:
        time_budget = (
            (profile.time_budget if profile else None)
            or project.time_budget
            or _seconds_option(config, "--dyncheck-time-budget", "dyncheck_time_budget")
        )

    raw_invariants = config.getoption("dyncheck_invariants")
    if raw_invariants:
        from_command_line.add("invariants")
    configured = (profile.invariants if profile else None) or project.invariants
    raw_invariants = raw_invariants or (None if configured else config.getini("dyncheck_invariants")) or None
    invariants = None if raw_invariants else configured
    if raw_invariants:
        names = tuple(dict.fromkeys(n.strip() for n in raw_invariants.split(",") if n.strip()))
        known = list(known_invariants())
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            import difflib

            close = [c for n in unknown for c in difflib.get_close_matches(n, known, n=1)]
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise pytest.UsageError(
                f"--dyncheck-invariants={raw_invariants}: unknown invariant(s) "
                f"{', '.join(unknown) or '(none given)'}; {hint}known: {', '.join(known)}"
            )
        invariants = names

    against = (config.getoption("dyncheck_against", None) or "").strip()
    against_ini = (config.getini("dyncheck_against") or "").strip()
    update_baseline = bool(config.getoption("dyncheck_update_baseline", False))
    baseline = _baseline_path(config, targets, update_baseline)

    if not targets and project.targets:
        targets = [entry.target for entry in project.targets]

    devices, devices_origin = "", ""
    for value, where in (
        (config.getoption("dyncheck_devices"), None),
        (profile.devices if profile else None, f"[tool.dyncheck.profiles.{profile_name}]"),
        (project.devices, "[tool.dyncheck]"),
        (config.getini("dyncheck_devices"), None),
    ):
        if value:
            devices = value
            devices_origin = f"{project.path}: {where} devices = {value!r}" if where else f"--dyncheck-devices={value}"
            break

    database, database_origin, database_base = config.getoption("dyncheck_database", None), "", ""
    if database:
        problem = database_problem(database)
        if problem:
            raise pytest.UsageError(f"--dyncheck-database={database}: {problem}")
        database_origin, database_base = f"--dyncheck-database={database}", str(config.invocation_params.dir)
    else:
        for where, value in (
            (f"[tool.dyncheck.profiles.{profile_name}]", profile.database if profile else None),
            ("[tool.dyncheck]", project.database),
        ):
            if value:
                database = value
                database_origin = f"{project.path}: {where} database = {value!r}"
                database_base = str(project.path.parent) if project.path else ""
                break

    return Settings(
        against=against,
        against_ini=against_ini,
        baseline=baseline,
        update_baseline=update_baseline,
        devices=devices,
        devices_origin=devices_origin,
        tolerances=project.tolerances,
        profile=profile_name,
        max_examples_origin=max_examples_origin,
        shard=_shard(config),
        database=database or None,
        database_origin=database_origin,
        database_base=database_base,
        target_config={entry.target: entry for entry in project.targets},
        from_command_line=frozenset(from_command_line),
        targets=tuple(targets),
        seed=seed,
        seed_given=seed_given,
        max_examples=max_examples,
        time_budget=time_budget,
        invariants=invariants,
        explain=bool(config.getoption("dyncheck_explain")),
        only=bool(config.getoption("dyncheck_only")),
    )
