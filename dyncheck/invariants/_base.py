"""The Invariant protocol, and the context a check runs in."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any, ClassVar

import torch
from torch import nn

from dyncheck.diagnose import diagnose
from dyncheck.errors import ModelError
from dyncheck.examples import Example
from dyncheck.seeding import seeded
from dyncheck.target import Target
from dyncheck.tracing import (
    Trace,
    check_loss,
    default_loss,
    describe_path,
    reached_parameters,
    record_modules,
)

__all__ = ["Context", "Invariant"]


class Invariant:
    """One property every applicable model must have on every example.

    Subclasses set ``name`` (also the test id) and ``summary`` (one line for the README
    table and ``--help``), and implement :meth:`check`, raising
    :class:`~dyncheck.errors.InvariantViolation` with the broken property in plain words.
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    def applies_to(self, target: Target) -> str | None:
        """None when the invariant applies to ``target``, else why it is skipped."""
        return None

    def check(self, context: Context, example: Example) -> None:
        raise NotImplementedError


class Context:
    """What a check works with: fresh copies of the model, a seeded runner that turns the
    model's own exceptions into :class:`ModelError`, and the paths seen so far."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._prototype: nn.Module | None = None
        self.paths: Counter[tuple[str, ...]] = Counter()
        self.examples = 0
        self.last_path: tuple[str, ...] | None = None

    def fresh_model(self) -> nn.Module:
        """A deep copy of the model as built (the built prototype itself is never run)."""
        if self._prototype is None:
            try:
                self._prototype = self.target.build()
            except Exception as exc:
                raise ModelError("building the model", exc) from exc
        return copy.deepcopy(self._prototype)

    def run(self, model: nn.Module, example: Example, *, backward: bool = False) -> Trace:
        """One call of ``model`` on ``example`` under its seed; optionally a backward pass
        of the spec's loss. Records the path for the census."""
        stage = "forward"
        try:
            with seeded(example.seed):
                with record_modules(model) as calls:
                    output = self.target.call(model, example.fresh_args())
                stage = "the loss"
                loss = check_loss((self.target.spec.loss or default_loss)(output))
                reached = reached_parameters(loss, model)
                if backward and loss is not None and loss.requires_grad:
                    stage = "backward"
                    loss.backward()
        except Exception as exc:
            raise ModelError(stage, exc, hints=tuple(diagnose(model))) from exc
        path = tuple(calls)
        self.paths[path] += 1
        self.last_path = path
        return Trace(output=output, modules=path, reached=reached, loss=loss)

    def describe_path(self, path: tuple[str, ...]) -> str:
        return describe_path(path, self._prototype)

