"""``[tool.dyncheck]`` in ``pyproject.toml``: read once, validated, every mistake one line.

::

    [tool.dyncheck]
    targets = [
        "mypkg.models:Net",
        {target = "mypkg.moe:MoE", invariants = ["determinism", "grad_isolation"],
         skip = {batch_invariance = "the router balances load across the batch"},
         max_examples = 300},
    ]
    invariants = ["determinism", "finite", "grad_isolation", "coverage"]   # default invariants
    devices = "cpu,cuda"
    max_examples = 100
    time_budget = "2m"                 # per check (dyncheck.budget)
    database = ".hypothesis/shared"    # or "github:owner/repo", "redis://host:6379/0", "none"

    [tool.dyncheck.dtype_agreement]    # tolerances of an agreement check
    rtol = 1e-3
    atol = 1e-4

    [tool.dyncheck.profiles.nightly]   # selected with --dyncheck-profile=nightly
    max_examples = 2000

This module imports neither torch nor hypothesis (the plugin reads it at start-up). Every
error is a ``pytest.UsageError`` of one line that names the file, the key and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["DATABASE_FORMS", "Profile", "ProjectConfig", "TOLERANCE_INVARIANTS", "TargetConfig", "read"]

#: The invariants whose tolerances ``[tool.dyncheck.<invariant>]`` can override.
TOLERANCE_INVARIANTS = (
    "batch_invariance", "compile_agreement", "device_agreement", "dtype_agreement", "refactor_agreement", "baseline",
)

#: What ``database = ...`` may be, for messages.
DATABASE_FORMS = 'a directory, "github:owner/repo[/artifact]", "redis://host:port/db" or "none"'

_TOP_KEYS = ("targets", "invariants", "devices", "max_examples", "time_budget", "database", "profiles")
_TARGET_KEYS = ("target", "invariants", "skip", "max_examples", "time_budget")
_PROFILE_KEYS = ("invariants", "devices", "max_examples", "time_budget", "database")


@dataclass(frozen=True)
class TargetConfig:
    """One entry of ``targets``: the target and what it overrides for itself."""

    target: str
    invariants: tuple[str, ...] | None = None
    #: invariant -> why it does not apply to this model
    skip: dict[str, str] = field(default_factory=dict)
    max_examples: int | None = None
    #: seconds each of its checks may spend
    time_budget: float | None = None


@dataclass(frozen=True)
class Profile:
    """``[tool.dyncheck.profiles.<name>]``: values that replace the top-level ones."""

    name: str
    invariants: tuple[str, ...] | None = None
    devices: str | None = None
    max_examples: int | None = None
    time_budget: float | None = None
    database: str | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """Everything ``[tool.dyncheck]`` says; empty when there is no such table."""

    path: Path | None = None
    targets: tuple[TargetConfig, ...] = ()
    invariants: tuple[str, ...] | None = None
    devices: str | None = None
    max_examples: int | None = None
    #: seconds each check may spend generating examples (dyncheck.budget)
    time_budget: float | None = None
    #: as written; a directory is relative to the pyproject.toml's folder
    database: str | None = None
    #: invariant -> (rtol, atol)
    tolerances: dict[str, tuple[float, float]] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; a usage error naming the known ones otherwise."""
        if name in self.profiles:
            return self.profiles[name]
        if not self.profiles:
            where = f"{self.path} has" if self.path else "there is no pyproject.toml, so there is"
            raise pytest.UsageError(
                f"--dyncheck-profile={name}: {where} no [tool.dyncheck.profiles.{name}] table; define it, "
                f"e.g. [tool.dyncheck.profiles.{name}] with max_examples = 1000"
            )
        raise pytest.UsageError(
            f"--dyncheck-profile={name}: no profile {name!r} in {self.path}; "
            f"{_did_you_mean(name, self.profiles)}known profiles: {', '.join(sorted(self.profiles))}"
        )


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean {close[0]}? " if close else ""


class _Reader:
    """Validates one file's table; ``fail`` makes the one-line usage error."""

    def __init__(self, path: Path, known_invariants: Callable[[], Iterable[str]]) -> None:
        self.path = path
        self._known_invariants = known_invariants
        self._known: list[str] | None = None

    def fail(self, message: str) -> pytest.UsageError:
        return pytest.UsageError(f"{self.path}: {message}")

    @property
    def known(self) -> list[str]:
        if self._known is None:
            self._known = list(self._known_invariants())
        return self._known

    def keys(self, where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    f"{where} has unknown key {key!r}; {_did_you_mean(key, allowed)}"
                    f"known keys: {', '.join(allowed)}"
                )

    def count(self, where: str, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where} {key} = {value!r} must be a whole number, e.g. {key} = 100")
        if value < 1:
            raise self.fail(f"{where} {key} = {value} must be at least 1")
        return value

    def seconds(self, where: str, value: Any) -> float:
        from dyncheck.budget import parse_seconds

        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError(value)
            return parse_seconds(str(value))
        except ValueError:
            raise self.fail(
                f'{where} time_budget = {value!r} must be a positive duration in seconds (120, "90s", "1.5m" or '
                '"2h"), e.g. time_budget = 120'
            ) from None

    def invariant_names(self, where: str, key: str, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f'{where} {key} must be a list of invariant names, e.g. {key} = ["determinism", "finite"]')
        names = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
        unknown = [n for n in names if n not in self.known]
        if unknown or not names:
            close = [c for n in unknown for c in difflib.get_close_matches(n, self.known, n=1)]
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise self.fail(
                f"{where} {key}: unknown invariant(s) {', '.join(unknown) or '(none given)'}; "
                f"{hint}known: {', '.join(self.known)}"
            )
        return names

    def devices(self, where: str, value: Any) -> str:
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise self.fail(f'{where} devices must name devices, e.g. devices = "cpu,cuda" or ["cuda:0", "cuda:1"]')

    def database(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where} database = {value!r} must be {DATABASE_FORMS}")
        problem = database_problem(value.strip())
        if problem:
            raise self.fail(f"{where} database = {value!r}: {problem}")
        return value.strip()

    def skip(self, where: str, value: Any) -> dict[str, str]:
        example = 'skip = {compile_agreement = "uses a custom CUDA op"}'
        if not isinstance(value, dict):
            raise self.fail(f"{where} skip must be a table of invariant = reason, e.g. {example}")
        for name, reason in value.items():
            self.invariant_names(where, "skip", [name])
            if not isinstance(reason, str) or not reason.strip():
                raise self.fail(f"{where} skip.{name} must be the reason it is skipped, a string, e.g. {example}")
        return {name: reason.strip() for name, reason in value.items()}

    def target(self, index: int, value: Any) -> TargetConfig:
        where = f"[tool.dyncheck] targets[{index}]"
        if isinstance(value, str) and value.strip():
            return TargetConfig(value.strip())
        if not isinstance(value, dict) or not isinstance(value.get("target"), str) or not value["target"].strip():
            if isinstance(value, dict):
                self.keys(where, value, _TARGET_KEYS)
            raise self.fail(
                f'{where} must be "module.path:Name" or a table with target = "module.path:Name", '
                f'e.g. {{target = "mypkg.models:Net", max_examples = 200}}'
            )
        self.keys(where, value, _TARGET_KEYS)
        return TargetConfig(
            target=value["target"].strip(),
            invariants=self.invariant_names(where, "invariants", value["invariants"]) if "invariants" in value else None,
            skip=self.skip(where, value["skip"]) if "skip" in value else {},
            max_examples=self.count(where, "max_examples", value["max_examples"]) if "max_examples" in value else None,
            time_budget=self.seconds(where, value["time_budget"]) if "time_budget" in value else None,
        )

    def profile(self, name: str, value: Any) -> Profile:
        where = f"[tool.dyncheck.profiles.{name}]"
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a table, e.g. [tool.dyncheck.profiles.{name}] with max_examples = 1000")
        self.keys(where, value, _PROFILE_KEYS)
        return Profile(
            name=name,
            invariants=self.invariant_names(where, "invariants", value["invariants"]) if "invariants" in value else None,
            devices=self.devices(where, value["devices"]) if "devices" in value else None,
            max_examples=self.count(where, "max_examples", value["max_examples"]) if "max_examples" in value else None,
            time_budget=self.seconds(where, value["time_budget"]) if "time_budget" in value else None,
            database=self.database(where, value["database"]) if "database" in value else None,
        )

    def tolerance(self, invariant: str, values: dict[str, Any]) -> tuple[float, float]:
        if invariant not in TOLERANCE_INVARIANTS:
            close = difflib.get_close_matches(invariant, TOLERANCE_INVARIANTS, n=1)
            hint = f"did you mean [tool.dyncheck.{close[0]}]? " if close else ""
            raise self.fail(
                f"[tool.dyncheck.{invariant}] sets tolerances, but {invariant} takes none; {hint}"
                f"the invariants with tolerances are {', '.join(TOLERANCE_INVARIANTS)}"
            )
        given = set(values) & {"rtol", "atol"}
        if given != {"rtol", "atol"}:
            raise self.fail(
                f"[tool.dyncheck.{invariant}] gives {', '.join(sorted(given))} "
                "alone; give rtol and atol together, e.g. rtol = 1e-4 and atol = 1e-5"
            )
        self.keys(f"[tool.dyncheck.{invariant}]", values, ("rtol", "atol"))
        try:
            return (float(values["rtol"]), float(values["atol"]))
        except (TypeError, ValueError):
            raise self.fail(f"[tool.dyncheck.{invariant}] rtol and atol must be numbers") from None


def database_problem(text: str) -> str | None:
    """None when ``text`` is a database dyncheck knows how to open, else what is wrong
    (only its form is checked here; opening it is :mod:`dyncheck.database`'s job)."""
    if text.startswith("github:"):
        parts = text[len("github:"):].split("/")
        if len(parts) not in (2, 3) or not all(parts):
            return 'write a GitHub artifact database as "github:owner/repo" or "github:owner/repo/artifact-name"'
        return None
    if "://" in text and not text.startswith(("redis://", "rediss://", "unix://")):
        scheme = text.split("://", 1)[0]
        return f"{scheme}:// is not a database dyncheck can open; give {DATABASE_FORMS}"
    return None


def read(path: Path, known_invariants: Callable[[], Iterable[str]]) -> ProjectConfig:
    """``[tool.dyncheck]`` of ``path`` (a pyproject.toml); an empty config when the file or
    the table is missing. ``known_invariants`` is called only when an invariant is named."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    if not path.is_file():
        return ProjectConfig()
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("dyncheck", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: cannot read [tool.dyncheck]: {exc}") from None
    if not table:
        return ProjectConfig(path=path)
    reader = _Reader(path, known_invariants)

    tolerances: dict[str, tuple[float, float]] = {}
    for key, value in table.items():
        if key in _TOP_KEYS:
            continue
        # [tool.dyncheck.<invariant>] with rtol/atol: tolerances (an unknown or misspelt
        # invariant gets the tolerance message, which names the ones that take them).
        if isinstance(value, dict) and {"rtol", "atol"} & set(value):
            tolerances[key] = reader.tolerance(key, value)
            continue
        known_tables = [f"[tool.dyncheck.{name}]" for name in TOLERANCE_INVARIANTS]
        raise reader.fail(
            f"[tool.dyncheck] has unknown key {key!r}; {_did_you_mean(key, _TOP_KEYS)}"
            f"known keys: {', '.join(_TOP_KEYS)}, and the tolerance tables {', '.join(known_tables)}"
        )

    where = "[tool.dyncheck]"
    targets: list[TargetConfig] = []
    if "targets" in table:
        raw = table["targets"]
        if not isinstance(raw, list):
            raise reader.fail(f'{where} targets must be a list, e.g. targets = ["mypkg.models:Net"]')
        seen: set[str] = set()
        for index, value in enumerate(raw):
            entry = reader.target(index, value)
            if entry.target in seen:
                raise reader.fail(f"{where} targets names {entry.target} twice; give it once")
            seen.add(entry.target)
            targets.append(entry)

    profiles_table = table.get("profiles", {})
    if not isinstance(profiles_table, dict):
        raise reader.fail(f"{where} profiles must be tables, e.g. [tool.dyncheck.profiles.nightly] with max_examples = 1000")

    return ProjectConfig(
        path=path,
        targets=tuple(targets),
        invariants=reader.invariant_names(where, "invariants", table["invariants"]) if "invariants" in table else None,
        devices=reader.devices(where, table["devices"]) if "devices" in table else None,
        max_examples=reader.count(where, "max_examples", table["max_examples"]) if "max_examples" in table else None,
        time_budget=reader.seconds(where, table["time_budget"]) if "time_budget" in table else None,
        database=reader.database(where, table["database"]) if "database" in table else None,
        tolerances=tolerances,
        profiles={name: reader.profile(name, value) for name, value in profiles_table.items()},
    )
