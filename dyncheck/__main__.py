"""``python -m dyncheck [TARGET ...] [pytest options]``: check models without a test suite;
``python -m dyncheck audit [TARGET ...] [options]`` (:mod:`dyncheck.audit`): audit them.

A TARGET is ``module.path:Name`` as for ``--dyncheck``, or a bare module or package name,
which stands for every model it defines: each ``nn.Module`` subclass and ``dyncheck.Spec``
defined at the top level of the module (for a package: of each of its modules, not of its
sub-packages), whose name does not start with an underscore and, when the module has an
``__all__``, is listed there. A file path (``convnet.py:Model``, ``pkg/models.py``) is read as the module
it names. Everything else is passed to pytest unchanged, e.g. ``-n 2`` or
``--dyncheck-seed=1``, and the exit code is pytest's.

User errors found here (a module that cannot be imported or defines no model, no
arguments at all) are one line on stderr and exit code 4, pytest's usage error, as the
plugin does for a bad ``--dyncheck`` target; every such module is said at once.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

from dyncheck.audit import plugin_argument
from dyncheck.errors import NOTHING_LEFT, DyncheckError

__all__ = ["expand", "main", "usage"]

#: pytest's exit code for a usage error (``pytest.ExitCode.USAGE_ERROR``), without
#: importing pytest just to name it.
USAGE_ERROR = 4

#: Options whose value may come as the next argument (``-n 2``): that argument is the
#: option's, never a target. pytest's parser is only built once pytest runs, after the
#: targets are known, so these are listed: pytest's, pytest-xdist's, Hypothesis's and
#: dyncheck's own. ``--option=value`` and ``-n2`` need no entry.
VALUE_OPTIONS = frozenset({
    # dyncheck
    "--dyncheck", "--dyncheck-seed", "--dyncheck-max-examples", "--dyncheck-invariants",
    "--dyncheck-devices", "--dyncheck-profile", "--dyncheck-shard", "--dyncheck-database",
    "--dyncheck-time-budget",
    "--dyncheck-against", "--dyncheck-baseline",
    # Hypothesis
    "--hypothesis-seed", "--hypothesis-profile", "--hypothesis-verbosity",
    # pytest
    "-k", "-m", "-p", "-W", "--pythonwarnings", "-c", "--config-file", "-o", "--override-ini",
    "--rootdir", "--maxfail", "--tb", "-r", "--durations", "--durations-min", "--basetemp",
    "--confcutdir", "--ignore", "--ignore-glob", "--deselect", "--import-mode", "--capture",
    "--color", "--code-highlight", "--show-capture", "--junitxml", "--junit-xml",
    "--junit-prefix", "--log-level", "--log-format", "--log-date-format", "--log-cli-level",
    "--log-cli-format", "--log-cli-date-format", "--log-file", "--log-file-mode",
    "--log-file-level", "--log-file-format", "--log-file-date-format", "--log-disable",
    "--pdbcls", "--verbosity", "--assert",
    # pytest-xdist
    "-n", "--numprocesses", "--maxprocesses", "--dist", "--tx", "--rsyncdir", "--rsyncignore",
    "--max-worker-restart",
})

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

_USAGE = """\
usage: python -m dyncheck TARGET [TARGET ...] [options]

Check PyTorch models with dyncheck's invariants, without writing a test.

A TARGET is
  module.path:Name        an nn.Module subclass, a dyncheck.Spec or a zero-argument factory
  module.path             every nn.Module subclass and dyncheck.Spec the module defines at
                          top level (a package: each of its modules); a class that cannot be
                          checked without a Spec is skipped with a note
  path/to/file.py[:Name]  the same, written as a file (read as path.to.file[:Name])
The current directory is importable.

examples:
  python -m dyncheck reference_models
  python -m dyncheck mypkg.models:Net -n 2 --dyncheck-seed=1

python -m dyncheck audit TARGET ... audits models instead: python -m dyncheck audit --help
"""

_AUDIT_USAGE = """\
usage: dyncheck audit [TARGET ...] [--examples N] [--time-budget SECONDS] [--dyncheck-profile NAME]
                      [--json PATH] [--html PATH] [--seed N] [--invariants NAMES] [--devices DEVICES]
                      [--database DB] [--no-progress] [--no-cost]

Audit PyTorch models: run every applicable invariant with a larger budget, then report the
model (parameters, leaf modules, the inputs and controls used), each invariant's verdict,
the path census with each path's cost (FLOPs and forward time), dead parameters, branches
never exercised both ways, untaken source branches, and each finding's minimal example and
reproduce command. TARGETs are as for python -m dyncheck; with none, [tool.dyncheck]
targets in pyproject.toml.

options:
  --examples N             examples per check (default: 200, or the profile's)
  --time-budget SECONDS    time each check may spend (90, 90s, 1.5m, 2h); with --examples, both apply
  --dyncheck-profile NAME  the values of [tool.dyncheck.profiles.NAME] (alias --profile)
  --json PATH              also write the report as JSON (schema: docs/audit.md)
  --html PATH              also write one self-contained HTML page with a picture of the paths
  --seed N                 seed every check (default: a new seed, shown in the report)
  --invariants NAMES       comma-separated invariants to run (default: all applicable)
  --devices DEVICES        devices device_agreement compares, e.g. cpu,cuda
  --database DB            Hypothesis example database: a directory, github:owner/repo,
                           redis://host:port/db or none
  --no-progress            no progress lines while the checks run
  --no-cost                do not time the paths

Exit code: 0 clean (known bugs declared with xfail do not count), 1 findings, 4 usage error.

examples:
  dyncheck audit mypkg.models:Router --html audit.html
  dyncheck audit mypkg.models --time-budget 60 --json audit.json
"""

_OPTIONS_TAIL = """\
Every other option is pytest's (-k, -x, --co, -n 2 with pytest-xdist, ...) and is passed
to pytest unchanged: python -m pytest --help lists them all. The exit code is pytest's
(4 for a usage error).
"""


class _UsageError(DyncheckError):
    """One line for stderr; ``main`` returns pytest's usage-error code."""


# --------------------------------------------------------------------------- arguments


def _split(argv: list[str]) -> tuple[list[tuple[int, str]], list[str], bool]:
    """``(targets, passed, wants_help)``: the target arguments with their positions in
    ``argv``, everything else (options and their values, numbers, pytest node ids, all
    after ``--``) in order, and whether ``-h``/``--help`` was given as an option."""
    targets: list[tuple[int, str]] = []
    passed: list[str] = []
    wants_help = False
    takes_value = False
    rest = False
    for index, argument in enumerate(argv):
        if rest or takes_value:
            passed.append(argument)
            takes_value = False
        elif argument == "--":
            passed.append(argument)
            rest = True
        elif argument.startswith("-") and argument != "-":
            passed.append(argument)
            wants_help = wants_help or argument in ("-h", "--help")
            takes_value = argument in VALUE_OPTIONS
        elif _NUMBER.fullmatch(argument) or "::" in argument or argument == "-":
            # A number is an option's value (``--durations 5``); ``path::test`` is a node id.
            passed.append(argument)
        else:
            targets.append((index, argument))
    return targets, passed, wants_help


def _as_module_path(argument: str) -> str:
    """``convnet.py:Model`` -> ``convnet:Model``, ``pkg/models.py`` -> ``pkg.models``,
    ``pkg/`` -> ``pkg``; anything that is not written as a path is returned as it is."""
    location, colon, name = argument.partition(":")
    separators = [s for s in (os.sep, os.altsep) if s]
    if not (location.endswith(".py") or any(s in location for s in separators)):
        return argument
    path = location[: -len(".py")] if location.endswith(".py") else location
    relative = os.path.normpath(os.path.relpath(path)) if path else ""
    parts = [p for p in re.split("|".join(map(re.escape, separators)), relative) if p]
    if parts and parts[-1] == "__init__":
        parts.pop()
    if not parts or parts == ["."] or parts[0] == "..":
        raise _UsageError(
            f"dyncheck: {argument} is not inside the current directory; run python -m dyncheck "
            "from the directory its modules are imported from"
        )
    return ".".join(parts) + colon + name


# --------------------------------------------------------------------------- expansion


def _models_in(module: object) -> list[str]:
    from torch import nn

    from dyncheck.spec import Spec

    found = []
    # A module's __all__, when it has one, says which of its names are its own to export
    # (a layer it builds its models from is not listed).
    public = getattr(module, "__all__", None)
    for name, value in vars(module).items():
        if name.startswith("_") or (isinstance(public, (list, tuple)) and name not in public):
            continue
        if isinstance(value, Spec) or (
            inspect.isclass(value) and issubclass(value, nn.Module) and value.__module__ == module.__name__
        ) or (isinstance(public, (list, tuple)) and _factory(value, module.__name__)):
            found.append(f"{module.__name__}:{name}")
    return found


def _factory(value: object, module_name: str) -> bool:
    """Whether ``value`` is a function of the module callable with no arguments and
    annotated to return a model (``def small_bert() -> BertModel:``): a factory, taken as a
    target where the module's ``__all__`` lists it. Only so: listing a target is not calling
    every function, and a module's ``main()`` may train, write files or exit."""
    import typing

    from torch import nn

    if not inspect.isfunction(value) or value.__module__ != module_name:
        return False
    parameters = inspect.signature(value).parameters.values()
    if not all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return False
    try:
        returned = typing.get_type_hints(value).get("return")
    except Exception:  # an annotation that does not resolve: not read as a model
        return False
    return inspect.isclass(returned) and issubclass(returned, nn.Module)


def _import(name: str, hint: str = "") -> Any:
    """Import ``name``; a failure is one line naming the module, the error and where."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise _UsageError(
            f"dyncheck: {name!r} is not a module name; a TARGET is module.path:Name, "
            f"module.path or path/to/file.py{hint}"
        )
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only the module itself (or a package on its path) missing is "not found"; a
        # missing dependency of the module is an import failure with its location.
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise _UsageError(
                f"dyncheck: cannot import {name!r}: no module named {exc.name!r} (searched the "
                f"current directory and sys.path){hint}"
            ) from None
        raise _import_failed(name, exc) from None
    except (Exception, SystemExit) as exc:  # the module itself raised while importing
        raise _import_failed(name, exc) from None


def _import_failed(name: str, exc: BaseException) -> _UsageError:
    # The plugin's wording for the same failure of a module:Name target, so both read
    # alike (dyncheck.errors imports nothing heavy: a module that fails before it imports
    # torch is answered without importing torch).
    from dyncheck.errors import import_failure

    return _UsageError(f"dyncheck: {import_failure(name, exc)}")


def expand(argument: str, *, hint: str = "") -> list[str]:
    """Every model a bare module or package name stands for (see the module docstring);
    ``module:Name`` is returned as it is. ``hint`` ends the message of a module that is
    not found. A module that cannot be imported or defines no
    model raises a :class:`~dyncheck.errors.DyncheckError` whose message is one line."""
    if ":" in argument:
        return [argument]
    module = _import(argument, hint)
    targets = _models_in(module)
    failed = []  # each of a package's modules that cannot be imported, said at once
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if not info.ispkg and not info.name.startswith("_"):
            try:
                targets += _models_in(_import(f"{argument}.{info.name}"))
            except _UsageError as exc:
                failed.append(str(exc))
    if failed:
        raise _UsageError("\n".join(failed))
    if not targets:
        where = " (nor do its modules)" if hasattr(module, "__path__") else ""
        listed = " listed in its __all__" if isinstance(getattr(module, "__all__", None), (list, tuple)) else ""
        raise _UsageError(
            f"dyncheck: {argument!r} defines no nn.Module subclass or dyncheck.Spec at top "
            f"level{listed}{where}; name a model (or a factory) with {argument}:Name"
        )
    return targets


def _checkable(targets: list[str]) -> list[str]:
    """The expanded targets dyncheck can check with no configuration. One class in a module
    that needs a Spec (a helper block whose forward cannot be inferred) must not stop the
    others from being checked: it is left out, with a note saying why."""
    from dyncheck.target import _handed, resolve

    kept = []
    for text in targets:
        try:
            # Kept for the plugin in this process (dyncheck.target._handed), which would
            # otherwise build and probe the model again.
            _handed[text] = resolve(text)
        except DyncheckError as exc:
            message = str(exc)
            prefix = f"--dyncheck {text}: "
            reason = message[len(prefix):] if message.startswith(prefix) else message
            print(f"dyncheck: skipping {text} — {reason}", file=sys.stderr)
        else:
            kept.append(text)
    return kept


# --------------------------------------------------------------------------- usage


def _dyncheck_options() -> str:
    """dyncheck's own options, read from the plugin's ``pytest_addoption`` so this list
    cannot drift from it (``--dyncheck`` and ``--dyncheck-only`` are what this command
    does, so they are left out)."""
    from dyncheck import plugin

    found: list[tuple[str, str]] = []

    class Recorder:
        def getgroup(self, *args: Any, **kwargs: Any) -> Recorder:
            return self

        def addoption(self, *names: str, **kwargs: Any) -> None:
            if kwargs.get("dest") in ("dyncheck_targets", "dyncheck_only"):
                return
            flag = ", ".join(names)
            if kwargs.get("action") not in ("store_true", "store_false", "count"):
                flag += f" {kwargs.get('metavar') or 'VALUE'}"
            found.append((flag, str(kwargs.get("help", ""))))

        def __getattr__(self, name: str) -> Any:  # addini and anything added later
            return lambda *args, **kwargs: None

    try:
        plugin.pytest_addoption(Recorder())  # type: ignore[arg-type]
    except Exception:  # the list is a courtesy: never let it break --help
        return ""
    if not found:
        return ""
    width = max(len(flag) for flag, _ in found) + 2
    lines = ["dyncheck's options:"]
    lines += [f"  {flag:<{width}}{help}" for flag, help in found]
    return "\n".join(lines) + "\n"


def usage(*, options: bool = True) -> str:
    """The command's usage; ``options`` adds dyncheck's options and the pointer to pytest's."""
    if not options:
        return _USAGE + "\nEvery other option is pytest's or dyncheck's: python -m dyncheck --help\n"
    dyncheck_options = _dyncheck_options()
    return _USAGE + "\n" + (dyncheck_options + "\n" if dyncheck_options else "") + _OPTIONS_TAIL


# --------------------------------------------------------------------------- main


def _named_with_option(passed: list[str]) -> set[str]:
    """The targets ``--dyncheck X`` and ``--dyncheck=X`` name among pytest's arguments."""
    named = set()
    for index, argument in enumerate(passed):
        if argument == "--dyncheck" and index + 1 < len(passed):
            named.add(passed[index + 1])
        elif argument.startswith("--dyncheck="):
            named.add(argument.partition("=")[2])
    return named


def _arguments(argv: list[str]) -> list[str] | int:
    """pytest's arguments for ``argv``, or an exit code when pytest is not to run."""
    if not argv:
        sys.stderr.write(usage(options=False))
        return USAGE_ERROR
    targets, passed, wants_help = _split(argv)
    if wants_help:
        sys.stdout.write(usage())
        return 0
    given: dict[int, str] = {}
    for index, argument in targets:
        converted = _as_module_path(argument)
        if converted != argument:
            print(f"dyncheck: reading {argument} as {converted}", file=sys.stderr)
        given[index] = converted

    expanded: dict[int, list[str]] = {}
    bare: list[str] = []
    failed: list[str] = []  # every argument's error, said at once: the first hides no other
    for index, text in given.items():
        previous = argv[index - 1] if index else ""
        hint = (
            f"; if it is the value of {previous}, write {previous}={argv[index]}"
            if previous.startswith("--") and "=" not in previous
            else ""
        )
        try:
            expanded[index] = expand(text, hint=hint)
        except _UsageError as exc:
            failed.append(str(exc))
            continue
        if ":" not in text:
            bare += expanded[index]
    if failed:
        raise _UsageError("\n".join(dict.fromkeys(failed)))
    if bare:
        # A model also named on its own is never left out with a note: it is checked, or its
        # error is the run's (one line), whichever argument comes first.
        with_option = _named_with_option(passed)
        named_targets = {text for text in given.values() if ":" in text} | with_option
        kept = set(_checkable([t for t in dict.fromkeys(bare) if t not in named_targets]))
        # ("--dyncheck" with no value: pytest's own usage error follows)
        if not kept and not named_targets and "--dyncheck" not in passed:
            raise _UsageError(NOTHING_LEFT)
        for index, text in given.items():
            if ":" not in text:
                expanded[index] = [
                    t for t in expanded[index] if t in kept or (t in named_targets and t not in with_option)
                ]

    # "-W": runpy imported dyncheck before pytest could mark it for assertion rewriting.
    args = ["--dyncheck-only", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    # dyncheck imported from a checkout (PYTHONPATH), not installed: pytest finds no entry
    # point for the plugin, and would not know --dyncheck-only
    args[:0] = plugin_argument(argv)
    seen: set[str] = set()
    for index, argument in enumerate(argv):
        if index not in expanded:
            args.append(argument)
            continue
        for target in expanded[index]:
            if target not in seen:  # the same model named twice is checked once
                seen.add(target)
                args.append(f"--dyncheck={target}")
    return args


# --------------------------------------------------------------------------- audit


class _AuditParser(argparse.ArgumentParser):
    """argparse with dyncheck's usage errors: one line, exit code 4, no usage dump."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message += "; dyncheck audit --help lists the options"
        else:  # "argument --examples: --examples=0 must be ...": the flag once is enough
            message = re.sub(r"^argument [^:]+: (?=--)", "", message)
        raise _UsageError(f"dyncheck audit: {message}")


def _count(flag: str, example: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={text!r} must be a whole number, e.g. {flag}={example}") from None
        if value < (0 if flag == "--seed" else 1):
            raise argparse.ArgumentTypeError(f"{flag}={value} must be at least {0 if flag == '--seed' else 1}")
        return value

    return parse


def _seconds(text: str) -> float:
    from dyncheck.budget import parse_seconds

    try:
        return parse_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--time-budget={text} must be a positive duration in seconds (90, 90s, 1.5m or 2h), e.g. --time-budget=60"
        ) from None


def _audit_parser() -> _AuditParser:
    parser = _AuditParser(prog="dyncheck audit", add_help=False)
    parser.add_argument("targets", nargs="*")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--examples", type=_count("--examples", "500"))
    parser.add_argument("--time-budget", type=_seconds)
    parser.add_argument("--dyncheck-profile", "--profile", dest="profile")
    parser.add_argument("--json", dest="json_path", metavar="PATH")
    parser.add_argument("--html", dest="html_path", metavar="PATH")
    parser.add_argument("--seed", "--dyncheck-seed", dest="seed", type=_count("--seed", "1"))
    parser.add_argument("--invariants", "--dyncheck-invariants", dest="invariants")
    parser.add_argument("--devices", "--dyncheck-devices", dest="devices")
    parser.add_argument("--database", "--dyncheck-database", dest="database")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-cost", action="store_true")
    return parser


def _audit(argv: list[str]) -> int:
    """``dyncheck audit ...``: arguments checked and targets expanded here; the audit itself
    is :func:`dyncheck.audit.run`."""
    import shlex

    options = _audit_parser().parse_args(argv)
    if options.help:
        sys.stdout.write(_AUDIT_USAGE)
        return 0
    for flag, path in (("--json", options.json_path), ("--html", options.html_path)):
        if path is not None:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise _UsageError(f"dyncheck audit: {flag} {path}: no directory {folder}; create it or write elsewhere")
    targets: list[str] = []
    for argument in options.targets:
        converted = _as_module_path(argument)
        expanded = expand(converted)
        if ":" not in converted:
            expanded = _checkable(expanded)
        targets += [t for t in expanded if t not in targets]
    if options.targets and not targets:
        raise _UsageError(NOTHING_LEFT)
    if options.time_budget is not None and not targets:
        from dyncheck.invariants import registry
        from dyncheck.project import read

        try:
            targets = [entry.target for entry in read(Path.cwd() / "pyproject.toml", lambda: list(registry())).targets]
        except Exception as exc:  # pytest.UsageError: the file's own one-line message
            raise _UsageError(str(exc)) from None

    from dyncheck.audit import AuditOptions, run

    return run(AuditOptions(
        targets=targets,
        examples=options.examples,
        time_budget=options.time_budget,
        profile=options.profile,
        seed=options.seed,
        invariants=options.invariants,
        devices=options.devices,
        database=options.database,
        json_path=options.json_path,
        html_path=options.html_path,
        progress=False if options.no_progress else None,
        cost=not options.no_cost,
        command=" ".join(["dyncheck audit", *map(shlex.quote, argv)]),
    ))


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        # What _checkable resolved and the run did not take: a later run resolves afresh.
        # (Looked up, not imported: usage and --help do not import torch.)
        target = sys.modules.get("dyncheck.target")
        if target is not None:
            target._handed.clear()


def _main(argv: list[str]) -> int:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if argv[:1] == ["audit"]:
        try:
            return _audit(argv[1:])
        except DyncheckError as exc:  # _UsageError, or a target that cannot be resolved
            print(exc, file=sys.stderr)
            return USAGE_ERROR
    try:
        args = _arguments(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return USAGE_ERROR
    if isinstance(args, int):
        return args

    import pytest

    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main())
