"""dyncheck: property-based testing and verification of dynamic PyTorch models.

Importing this package imports neither torch nor hypothesis; the names below are loaded
on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DyncheckError",
    "DyncheckWarning",
    "InvalidArgument",
    "InvariantViolation",
    "ModelError",
    "Spec",
    "TargetError",
    "Trace",
    "strategies",
    "trace",
]

__version__ = "0.1.0"

_LAZY = {
    "Spec": ("dyncheck.spec", "Spec"),
    "trace": ("dyncheck.tracing", "trace"),
    "Trace": ("dyncheck.tracing", "Trace"),
    "DyncheckError": ("dyncheck.errors", "DyncheckError"),
    "DyncheckWarning": ("dyncheck.errors", "DyncheckWarning"),
    "InvalidArgument": ("dyncheck.errors", "InvalidArgument"),
    "InvariantViolation": ("dyncheck.errors", "InvariantViolation"),
    "ModelError": ("dyncheck.errors", "ModelError"),
    "TargetError": ("dyncheck.errors", "TargetError"),
}


def __getattr__(name: str) -> Any:
    if name == "strategies":
        import importlib

        return importlib.import_module("dyncheck.strategies")
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dyncheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
