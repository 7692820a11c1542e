"""The exceptions dyncheck raises.

* :class:`DyncheckError` is the root of everything dyncheck raises on purpose.
* :class:`InvalidArgument` is a user error in a call or a Spec (also a ``TypeError``,
  as Hypothesis does): one line that names the argument, its value and the fix.
* :class:`TargetError` is a ``--dyncheck`` target that cannot be used.
* :class:`InvariantViolation` is a model breaking an invariant on one example.
* :class:`ModelError` is an exception raised inside the user's model on one example.
"""

from __future__ import annotations

import os

__all__ = [
    "NOTHING_LEFT",
    "DyncheckError",
    "DyncheckWarning",
    "InvalidArgument",
    "InvariantViolation",
    "ModelError",
    "TargetError",
    "import_failure",
    "one_line",
]


#: python -m dyncheck's usage error when every model a bare module or package stands for was
#: left out for want of a Spec and none was named.
NOTHING_LEFT = (
    "dyncheck: nothing left to check: every model found was skipped (see above); "
    "check one with module:Name and a dyncheck.Spec"
)


class DyncheckError(Exception):
    """Base class of every error dyncheck raises on purpose."""


class InvalidArgument(DyncheckError, TypeError):
    """A strategy argument or a Spec field is invalid; the message says which and why."""


class TargetError(DyncheckError):
    """A ``--dyncheck`` target cannot be imported, resolved, built or inferred."""


class InvariantViolation(DyncheckError):
    """One example broke an invariant.

    ``headline`` is the broken property in plain words, ``details`` are extra lines
    (numbers, names); the example and the reproduce line are added by the reporter.
    """

    def __init__(
        self,
        headline: str,
        details: list[str] | tuple[str, ...] = (),
        *,
        path: tuple[str, ...] | None = None,
    ) -> None:
        self.headline = headline
        self.details = tuple(details)
        self.path = path
        super().__init__("\n".join([headline, *self.details]))


class ModelError(DyncheckError):
    """The model raised on one example; the original exception is ``__cause__``."""

    def __init__(self, stage: str, original: BaseException, hints: tuple[str, ...] = ()) -> None:
        self.stage = stage
        self.original = original
        self.hints = tuple(hints)
        super().__init__(f"{stage} raised {type(original).__name__}: {original}")


class NotApplicable(DyncheckError):
    """What a check found on a call that makes it inapplicable to the model (forward returns
    an object that runs the model's layers only when used): the check is a skip with the
    message as its reason."""


class DyncheckWarning(UserWarning):
    """Something a model does that is not a failure but needs a decision (pytest lists it
    in its warnings summary)."""


def import_failure(module_name: str, exc: BaseException) -> str:
    """``importing 'mymod' failed at mymod.py:9: ZeroDivisionError: ...``: the traceback
    is not shown, so name the module-level line that raised (the deepest ``<module>``
    frame: the statement in the innermost module being imported)."""
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>" and not code.co_filename.startswith("<"):
            path = code.co_filename
            try:
                relative = os.path.relpath(path)
                path = path if relative.startswith("..") else relative
            except ValueError:  # another drive on Windows
                pass
            where = f" at {path}:{tb.tb_lineno}"
        tb = tb.tb_next
    return f"importing {module_name!r} failed{where}: {type(exc).__name__}: {one_line(exc)}{exit_hint(exc)}"


def exit_hint(exc: BaseException, *, building: bool = False) -> str:
    """For a ``SystemExit`` raised by argparse (a module, or with ``building`` a
    constructor, that parses the command line, which under pytest is pytest's), what to
    change; else nothing. A factory is an answer only for a constructor: a module that
    exits while importing has none to offer."""
    if not isinstance(exc, SystemExit):
        return ""
    tb = exc.__traceback__
    while tb is not None:
        if os.path.basename(tb.tb_frame.f_code.co_filename) == "argparse.py":
            factory = ", or name a factory that builds the model without it" if building else ""
            return (
                "; argparse read pytest's command line: parse it only under if __name__ == \"__main__\": "
                f"(or with parse_known_args()){factory}"
            )
        tb = tb.tb_next
    return ""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line: a usage error is one line, never a dump."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[0] + (" …" if len(lines) > 1 else "")
