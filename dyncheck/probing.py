"""The model calls target resolution makes (its probes), and what each one did, so that a
process resolving the same target again reuses them instead of calling the model.

With ``-n N``, xdist's controller resolves every target (it reports a mistake in a target
or its Spec in one line before any worker starts), then each worker resolves them again:
it builds each model and probes its sizes, a few hundred model calls for the bundled
reference models, about a second of every worker's start. The controller keeps what each
call was made on and what it raised (:func:`recorded`); the workers get that in their
``workerinput`` (:func:`replay`). A worker's resolution is the same code: each call whose
inputs are the recorded call's at the same place takes the recorded outcome instead of
running the model; the first call that differs ends the reuse for that target, and from
there the model is called as without a record. Only the calls are saved, never a
decision: what resolution concludes from them is worked out in every process.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from dyncheck.cloning import clone
from dyncheck.compare import all_finite
from dyncheck.seeding import seeded
from dyncheck.tracing import leaves

__all__ = ["NonFiniteOutput", "call", "probing", "recorded", "replay"]

#: Integer tensors up to this many elements are recorded by value (lengths, masks, ids),
#: larger ones by their sum.
_BY_VALUE = 64

#: target text -> [(what a call was made on, what it raised)], this process's resolutions.
_RECORDS: dict[str, list[tuple[Any, Any]]] = {}
#: target text -> the same, handed from another process for this one's resolutions.
_REPLAY: dict[str, Sequence[Sequence[Any]]] = {}
_CURRENT: contextvars.ContextVar[_Log | None] = contextvars.ContextVar("dyncheck_probing", default=None)


class _Log:
    """One resolution's calls, and the record it may take them from."""

    def __init__(self, replayed: Sequence[Sequence[Any]] | None) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.replayed = list(replayed) if replayed else None

    def recorded_outcome(self, signature: Any) -> tuple[bool, Any]:
        """(True, outcome) when the record's next call was made on ``signature``."""
        if self.replayed is None:
            return False, None
        index = len(self.calls)
        if index < len(self.replayed) and _same(self.replayed[index][0], signature):
            return True, self.replayed[index][1]
        self.replayed = None  # diverged: every later call runs the model
        return False, None


@contextlib.contextmanager
def probing(text: str) -> Iterator[None]:
    """Record the calls of ``text``'s resolution (and take them from a record handed by
    :func:`replay`, if any)."""
    log = _Log(_REPLAY.get(text))
    token = _CURRENT.set(log)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        _RECORDS[text] = log.calls


def recorded() -> dict[str, list[tuple[Any, Any]]]:
    """What this process's resolutions called their models on and what each call raised,
    by target text: plain tuples, strings and numbers, which xdist's workerinput carries."""
    return dict(_RECORDS)


def replay(records: Mapping[str, Sequence[Sequence[Any]]]) -> None:
    """Take the model calls of later resolutions of these targets from ``records`` (what
    :func:`recorded` gave in another process)."""
    _REPLAY.update(records)


class NonFiniteOutput(FloatingPointError):
    """What a probe asked for finite outputs (``call(..., finite=True)``) takes a call that
    gave NaN or inf for."""


def call(
    instance: nn.Module, args: dict[str, Any], *, seed: int, training: bool | None = None, finite: bool = False,
) -> Exception | None:
    """What calling a copy of ``instance`` (in ``training`` mode, or its own) on ``args``
    raised, under ``seed`` and without autograd; None when it ran. The instance itself
    is never called: a forward may change its model (Swin shrinks its windows to an input
    smaller than them, for good), and each probe sees the model as built. With ``finite``,
    an output with NaN or inf is a :class:`NonFiniteOutput`."""
    signature = (instance.training if training is None else training, _fingerprint(args))
    if finite:
        signature = (*signature, "finite")
    log = _CURRENT.get()
    if log is not None:
        found, outcome = log.recorded_outcome(signature)
        if found:
            log.calls.append((signature, outcome))
            return None if outcome is None else _stand_in(outcome)
    model = clone(instance)
    if training is not None:
        model.train(training)
    error: Exception | None = None
    try:
        with seeded(seed), torch.no_grad():
            output = model(**args)
        if finite and not all_finite(value for _, value in leaves(output)):
            error = NonFiniteOutput("the output holds NaN or inf")
    except Exception as exc:
        error = exc
    if log is not None:
        log.calls.append((signature, None if error is None else _outcome(error)))
    return error


def _fingerprint(value: Any) -> Any:
    """What a call was made on, as plain data: a tensor's shape and dtype (and an integer
    tensor's values, or their sum when large); containers entry by entry."""
    if isinstance(value, torch.Tensor):
        exact = not (value.is_floating_point() or value.is_complex())
        values: Any = None
        if exact and value.numel() <= _BY_VALUE:
            values = tuple(int(v) for v in value.reshape(-1).tolist())
        elif exact:
            values = int(value.sum())
        return ("tensor", tuple(value.shape), str(value.dtype), str(value.device), values)
    if isinstance(value, Mapping):
        return ("dict", tuple((str(k), _fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_fingerprint(v) for v in value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return ("object", type(value).__qualname__)


def _same(recorded_signature: Any, signature: Any) -> bool:
    """Whether two fingerprints are equal (a record that travelled through execnet holds
    lists where this process's has tuples)."""
    return _plain(recorded_signature) == _plain(signature)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _outcome(error: Exception) -> tuple[str, str, str]:
    """An error as the probes read it: its type's name, the first line of its message
    (``errors.one_line``) with a second line when the message had more, and the nearest
    built-in exception class it derives from (a model's ``ShapeError(TypeError)`` is still
    a TypeError to what reads it)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = "\n".join(lines[:1] + (["…"] if len(lines) > 1 else []))
    base = next(
        (c.__name__ for c in type(error).__mro__ if getattr(builtins, c.__name__, None) is c and issubclass(c, Exception)),
        "Exception",
    )
    return type(error).__name__, text, base


_STAND_INS: dict[tuple[str, type[Exception]], type[Exception]] = {}


def _recorded_message(self: BaseException) -> str:
    return str(self.args[0]) if self.args else ""


def _stand_in(outcome: Sequence[str]) -> Exception:
    """An exception whose type's name and message are the recorded ones: of the built-in
    class of that name (``RuntimeError``, ``TypeError``) where there is one that holds the
    message as given, else of a class made with that name (torch's own, a model's) on the
    recorded built-in base."""
    name, text = outcome[0], outcome[1]
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            error = builtin(text)
        except Exception:  # a built-in with other arguments (UnicodeDecodeError)
            error = None
        if error is not None and str(error) == text:  # KeyError quotes its message
            return error
    base = getattr(builtins, outcome[2], None) if len(outcome) > 2 else None
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    try:
        return _stand_in_class(name, base)(text)
    except Exception:  # a base that takes other arguments (UnicodeDecodeError)
        return _stand_in_class(name, Exception)(text)


def _stand_in_class(name: str, base: type[Exception]) -> type[Exception]:
    """A class named ``name`` on ``base`` whose message is the recorded text as given."""
    cls = _STAND_INS.get((name, base))
    if cls is None:
        cls = _STAND_INS[name, base] = type(name, (base,), {"__module__": __name__, "__str__": _recorded_message})
    return cls
