"""dyncheck's options, parsed once into a frozen dataclass kept in ``config.stash``.

This module imports neither torch nor hypothesis: the plugin loads it at pytest start-up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Settings", "SETTINGS_KEY", "parse"]


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

    def reproduce(self, target: str, invariant: str) -> str:
        """The command that re-runs one check with this run's seed."""
        parts = ["pytest", f"--dyncheck {target}", "--dyncheck-only", f"--dyncheck-seed={self.seed}"]
        if self.against and invariant == "refactor_agreement":
            parts.append(f"--dyncheck-against={self.against}")
        if self.baseline and invariant == "baseline":
            import os

            relative = os.path.relpath(self.baseline)
            parts.append(f"--dyncheck-baseline={self.baseline if relative.startswith('..') else relative}")
        if self.max_examples is not None:
            parts.append(f"--dyncheck-max-examples={self.max_examples}")
        parts.append(f"-k {invariant}")
        return " ".join(parts)


SETTINGS_KEY = pytest.StashKey[Settings]()


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


#: The invariants whose tolerances ``[tool.dyncheck.<invariant>]`` can override.
TOLERANCE_INVARIANTS = (
    "batch_invariance", "compile_agreement", "device_agreement", "dtype_agreement", "refactor_agreement", "baseline",
)


def _tolerances(config: pytest.Config) -> dict[str, tuple[float, float]]:
    """``[tool.dyncheck.<invariant>] rtol = ..., atol = ...`` from the rootdir's pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    path = config.rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("dyncheck", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: cannot read [tool.dyncheck]: {exc}") from None
    found = {}
    for invariant, values in table.items():
        if not isinstance(values, dict) or not ({"rtol", "atol"} & set(values)):
            continue
        if invariant not in TOLERANCE_INVARIANTS:
            from difflib import get_close_matches

            close = get_close_matches(invariant, TOLERANCE_INVARIANTS, n=1)
            hint = f"did you mean [tool.dyncheck.{close[0]}]? " if close else ""
            raise pytest.UsageError(
                f"{path}: [tool.dyncheck.{invariant}] sets tolerances, but {invariant} takes none; {hint}"
                f"the invariants with tolerances are {', '.join(TOLERANCE_INVARIANTS)}"
            )
        if set(values) & {"rtol", "atol"} != {"rtol", "atol"}:
            raise pytest.UsageError(
                f"{path}: [tool.dyncheck.{invariant}] gives {', '.join(sorted(set(values) & {'rtol', 'atol'}))} "
                "alone; give rtol and atol together, e.g. rtol = 1e-4 and atol = 1e-5"
            )
        try:
            found[invariant] = (float(values["rtol"]), float(values["atol"]))
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{path}: [tool.dyncheck.{invariant}] rtol and atol must be numbers") from None
    return found


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
    """Read and validate every option; ``known_invariants`` is a callable returning the
    registered invariant names (only called when ``--dyncheck-invariants`` is used)."""
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

    max_examples = _int_option(config, "--dyncheck-max-examples", "dyncheck_max_examples", minimum=1)

    raw_invariants = config.getoption("dyncheck_invariants") or config.getini("dyncheck_invariants") or None
    invariants = None
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

    return Settings(
        against=against,
        against_ini=against_ini,
        baseline=baseline,
        update_baseline=update_baseline,
        devices=config.getoption("dyncheck_devices") or config.getini("dyncheck_devices") or "",
        tolerances=_tolerances(config),
        targets=tuple(targets),
        seed=seed,
        seed_given=seed_given,
        max_examples=max_examples,
        invariants=invariants,
        explain=bool(config.getoption("dyncheck_explain")),
        only=bool(config.getoption("dyncheck_only")),
    )
