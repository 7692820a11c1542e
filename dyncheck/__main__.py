"""``python -m dyncheck [TARGET ...] [pytest options]``: check models without a test suite.

A TARGET is ``module.path:Name`` as for ``--dyncheck``, or a bare module or package name,
which stands for every model it defines: each ``nn.Module`` subclass and ``dyncheck.Spec``
defined at the top level of the module (for a package: of each of its modules, not of its
sub-packages). Everything else is passed to pytest, e.g. ``-n 2`` or ``--dyncheck-seed=1``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys

__all__ = ["expand", "main"]


def _models_in(module: object) -> list[str]:
    from torch import nn

    from dyncheck.spec import Spec

    found = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Spec) or (
            inspect.isclass(value) and issubclass(value, nn.Module) and value.__module__ == module.__name__
        ):
            found.append(f"{module.__name__}:{name}")
    return found


def expand(argument: str) -> list[str]:
    """Targets for one command-line argument (see the module docstring)."""
    if ":" in argument:
        return [argument]
    try:
        module = importlib.import_module(argument)
    except ImportError as exc:
        raise SystemExit(f"dyncheck: cannot import {argument!r}: {exc}") from None
    targets = _models_in(module)
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if not info.ispkg and not info.name.startswith("_"):
            targets += _models_in(importlib.import_module(f"{argument}.{info.name}"))
    if not targets:
        raise SystemExit(f"dyncheck: {argument!r} defines no nn.Module subclass or dyncheck.Spec")
    return targets


def main(argv: list[str] | None = None) -> int:
    import pytest

    argv = list(sys.argv[1:] if argv is None else argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # "-W": runpy imported dyncheck before pytest could mark it for assertion rewriting.
    args = ["--dyncheck-only", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    for argument in argv:
        if argument.startswith("-") or "/" in argument:
            args.append(argument)
        else:
            args += [f"--dyncheck={target}" for target in expand(argument)]
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main())
