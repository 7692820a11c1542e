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
    #: An opt-in invariant runs only when --dyncheck-invariants names it (it is slow).
    opt_in: ClassVar[bool] = False

    def applies_to(self, target: Target) -> str | None:
        """None when the invariant applies to ``target``, else why it is skipped."""
        return None

    def unavailable(self, settings: Any) -> str | None:
        """None when this run's options let the invariant run, else why it is skipped
        (e.g. only one device to compare)."""
        return None

    def configured(self, target: Target, settings: Any) -> str | None:
        """For an invariant that needs configuring (an old model to compare with, a
        baseline file): None when this run configures it for ``target``, else how to (the
        reason it is skipped). An opt-in invariant that is configured is collected without
        being named in --dyncheck-invariants."""
        return "" if self.opt_in else None

    def replay(self, context: Context) -> Any:
        """The examples to check, when they are not generated: an iterable of
        :class:`Example` checked in order without Hypothesis (recorded examples). None (the
        default): examples are generated from the spec."""
        return None

    def check(self, context: Context, example: Example) -> None:
        raise NotImplementedError

    def finish(self, context: Context) -> None:
        """Called once after every example passed; invariants over the whole run (the
        path census) raise their violations here."""


class Context:
    """What a check works with: fresh copies of the model, a seeded runner that turns the
    model's own exceptions into :class:`ModelError`, and the paths seen so far."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._prototype: nn.Module | None = None
        self.paths: Counter[tuple[str, ...]] = Counter()
        self.examples = 0
        self.last_path: tuple[str, ...] | None = None
        #: module name -> the first example on which it ran (for two-step checks)
        self.witnesses: dict[str, Example] = {}
        #: results an invariant wants in the summary (JSON-able: it travels from xdist workers)
        self.report: dict[str, Any] = {}
        #: an invariant's own state between examples
        self.memo: dict[str, Any] = {}
        #: the run's options (dyncheck.settings.Settings), set by the item
        self.settings: Any = None

    def fresh_model(self) -> nn.Module:
        """A deep copy of the model as built (the built prototype itself is never run)."""
        if self._prototype is None:
            try:
                self._prototype = self.target.build()
            except Exception as exc:
                raise ModelError("building the model", exc) from exc
        return copy.deepcopy(self._prototype)

    def build_model(self) -> nn.Module:
        """A new instance built from the spec (not a copy of the prototype): checks that
        compare with "a freshly built model" use it, since a deep copy shares what the
        prototype's closures and globals captured."""
        try:
            return self.target.build()
        except Exception as exc:
            raise ModelError("building the model", exc) from exc

    def run(
        self,
        model: nn.Module,
        example: Example,
        *,
        backward: bool = False,
        record: bool = True,
        grad: bool = True,
    ) -> Trace:
        """One call of ``model`` on ``example`` under its seed; optionally a backward pass
        of the spec's loss. With ``record`` the path counts in the census (probe runs,
        such as perturbed re-runs, pass ``record=False``); ``grad=False`` runs without
        autograd (nothing is reached then)."""
        stage = "forward"
        try:
            with seeded(example.seed), torch.set_grad_enabled(grad):
                with record_modules(model) as calls:
                    output = self.target.call(model, example.fresh_args())
                stage = "the spec's loss" if self.target.spec.loss is not None else "the loss"
                loss = check_loss((self.target.spec.loss or default_loss)(output))
                reached = reached_parameters(loss, model)
                if backward and loss is not None and loss.requires_grad:
                    stage = "backward"
                    loss.backward()
        except Exception as exc:
            raise ModelError(stage, exc, hints=tuple(diagnose(model))) from exc
        path = tuple(calls)
        if record:
            self.record(path, example)
        return Trace(output=output, modules=path, reached=reached, loss=loss)

    def record(self, path: tuple[str, ...], example: Example) -> None:
        """Count one call on ``path`` in the census (checks that run the model their own
        way, such as the agreement pairs, record their reference call here)."""
        self.paths[path] += 1
        self.last_path = path
        for name in path:
            self.witnesses.setdefault(name, example)

    def describe_path(self, path: tuple[str, ...]) -> str:
        return describe_path(path, self._prototype)


def parameter_owners(model: nn.Module) -> list[tuple[nn.Parameter, tuple[str, ...], tuple[str, ...]]]:
    """Each distinct parameter with all its names and the modules that hold it directly
    (``""`` is the model itself). A tied parameter has several names and owners."""
    found: dict[int, tuple[nn.Parameter, list[str], list[str]]] = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for attribute, parameter in module.named_parameters(recurse=False):
            entry = found.setdefault(id(parameter), (parameter, [], []))
            full = f"{module_name}.{attribute}" if module_name else attribute
            if full not in entry[1]:
                entry[1].append(full)
            if module_name not in entry[2]:
                entry[2].append(module_name)
    return [(p, tuple(names), tuple(owners)) for p, names, owners in found.values()]


def module_name_map(model: nn.Module) -> dict[str, str]:
    """Every name a module has -> the name the call recorder uses (the first one)."""
    first: dict[int, str] = {}
    out: dict[str, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        out[name] = first.setdefault(id(module), name)
    return out

