"""New against old: a refactored model must compute what the old one computed.

The old model (``--dyncheck-against OLD``, ``Spec(against=...)`` or the ``dyncheck_against``
ini value) is built, its ``state_dict`` is mapped into the new model's names
(``Spec(state_map=...)``) and loaded; then on every example both run under the example's
seed in eval mode (:func:`dyncheck.agreement.run_config`) and must give the same outputs,
the same gradients (the new model's mapped back to the old parameters) and the same
branch decisions (paths compared through the module correspondence). When they part ways
the report names the first diverging module (:mod:`dyncheck.guard.localise`).

``OLD`` is a target (``old_module:Model``: a class, a Spec or a factory) or a git revision
of the repository the target lives in (``git:main``, ``git:HEAD~1``, or
``git:REV:module:Name`` when the old model had another name). A class is built with the new
spec's constructor arguments where it takes them. The old model is called with the new
spec's inputs and loss.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from torch import nn

from dyncheck.agreement import Config, Run, numeric_findings, run_config
from dyncheck.cloning import clone
from dyncheck.errors import InvalidArgument, InvariantViolation, ModelError, TargetError, exit_hint
from dyncheck.examples import Example
from dyncheck.guard.gitrev import load_at_revision, split_git
from dyncheck.guard.localise import localise, paths_part, record_calls, summarise
from dyncheck.guard.mapping import Correspondence, StateMapping
from dyncheck.infer import Uninferable, infer_init
from dyncheck.spec import Spec
from dyncheck.target import Target, load
from dyncheck.tracing import describe_path

__all__ = ["Against", "Differential", "resolve_against"]

OLD = Config("the old model", "cpu")
NEW = Config("the new model", "cpu")


@dataclass
class Against:
    """The old model one target is checked against, ready to build and call."""

    #: OLD as given (``git:main``, ``old_module:Model``), for reports
    text: str
    #: where it was given, for errors: ``--dyncheck-against=git:main for mymod:Net``
    label: str
    #: how to build and call the old model (the new spec's inputs and loss)
    target: Target


def given_against(target: Target, settings: Any) -> tuple[Any, str] | None:
    """(OLD, where it was given) for ``target``: the option, else the Spec's field, else the
    ini value; None when none is given."""
    if settings is not None and getattr(settings, "against", ""):
        return settings.against, f"--dyncheck-against={settings.against}"
    if target.spec.against is not None:
        value = target.spec.against
        shown = repr(value) if isinstance(value, str) else _name_of(value)
        return value, f"Spec(against={shown})"
    if settings is not None and getattr(settings, "against_ini", ""):
        return settings.against_ini, f"dyncheck_against={settings.against_ini}"
    return None


def _name_of(value: Any) -> str:
    """How reports name an OLD given as an object: ``module:Name`` of its class or model."""
    if isinstance(value, str):
        return value
    if isinstance(value, Spec):
        return value.name or value.model_name
    owner = value if inspect.isclass(value) or inspect.isfunction(value) else type(value)
    return f"{owner.__module__}:{owner.__qualname__}"


def resolve_against(target: Target, settings: Any) -> Against | None:
    """The old model for ``target``, or None when none is configured; every problem is a
    one-line :class:`TargetError`."""
    given = given_against(target, settings)
    if given is None:
        return None
    value, source = given
    label = f"{source} for {target.text}"
    text = _name_of(value)
    old = _old_value(value, target, label)
    spec = _old_spec(old, target, label)
    instance = _build(spec, label)
    positional = _check_forward(instance, target, label)
    old_target = Target(
        text=text,
        spec=spec,
        positional=positional,
        model_class=type(instance),
    )
    return Against(text=text, label=label, target=old_target)


def _old_value(value: Any, target: Target, label: str) -> Any:
    if not isinstance(value, str):
        return value
    git = split_git(value)
    if git is not None:
        revision, named = git
        named = named or target.text
        if named.count(":") != 1:
            raise TargetError(
                f"{label}: git:{revision} loads the target's module as it was, but {named!r} is not "
                "module.path:Name; write git:REV:module.path:Name"
            )
        module, _, attribute = named.partition(":")
        return load_at_revision(module, attribute, revision, label)
    try:
        return load(value)
    except TargetError as exc:
        raise TargetError(str(exc).replace(f"--dyncheck {value}:", f"{label}:", 1)) from None


def _old_spec(value: Any, target: Target, label: str) -> Spec:
    """A Spec that builds the old model with the new spec's inputs, dims and loss."""
    if isinstance(value, Spec):
        if value.model is None:
            raise TargetError(f"{label}: this Spec has no model; write dyncheck.Spec(OldModel, ...)")
        model, init = value.model, dict(value.init)
    elif inspect.isclass(value) and issubclass(value, nn.Module):
        declared = value.__dict__.get("__dyncheck__")
        init = {}
        if isinstance(declared, dict) and isinstance(declared.get("init"), dict):
            init = dict(declared["init"])
        elif isinstance(declared, Spec):
            init = dict(declared.init)
        model = value
    elif isinstance(value, nn.Module) or callable(value):
        model, init = value, {}
    else:
        raise TargetError(
            f"{label}: {type(value).__name__} {value!r:.60} is not an nn.Module subclass, a dyncheck.Spec or a "
            "factory returning a module"
        )
    if inspect.isclass(model):
        # The same constructor arguments as the new model where the old one takes them.
        try:
            parameters = inspect.signature(model).parameters
        except (TypeError, ValueError):
            parameters = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        inherited = {k: v for k, v in target.spec.init.items() if takes_any or k in parameters}
        init = {**inherited, **init}
        try:
            init.update({k: v.value for k, v in infer_init(model, init).items()})
        except Uninferable as exc:
            raise TargetError(f"{label}: the old model: {exc}") from None
    try:
        return Spec(model=model, init=init, inputs=target.spec.inputs, dims=target.spec.dims, loss=target.spec.loss)
    except InvalidArgument as exc:
        raise TargetError(f"{label}: {exc}") from None


def _build(spec: Spec, label: str) -> nn.Module:
    try:
        instance = Target(text=label, spec=spec).build()
    except (Exception, SystemExit) as exc:  # SystemExit: a constructor that parses the command line
        shown = ", ".join(f"{k}={v!r}" for k, v in spec.init.items())
        name = getattr(spec.model, "__qualname__", type(spec.model).__qualname__)
        fix = exit_hint(exc, building=True) or "; give OLD as a dyncheck.Spec with its init"
        raise TargetError(
            f"{label}: building the old model {name}({shown}) raised {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}{fix}"
        ) from None
    if not isinstance(instance, nn.Module):
        raise TargetError(f"{label}: the old factory returned {type(instance).__name__}, not an nn.Module")
    return instance


def _check_forward(instance: nn.Module, target: Target, label: str) -> tuple[str, ...]:
    """The old forward must take every argument the new one is called with."""
    try:
        parameters = dict(inspect.signature(instance.forward).parameters)
    except (TypeError, ValueError):
        return ()
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        missing = [name for name in target.spec.inputs if name not in parameters]
        if missing:
            raise TargetError(
                f"{label}: the old {type(instance).__qualname__}.forward does not take "
                f"{', '.join(map(repr, missing))}, "
                f"which the new model is called with (the old one takes {', '.join(parameters) or 'nothing'}); "
                "give OLD as a factory returning a module that adapts the call"
            )
    return tuple(name for name, p in parameters.items() if p.kind is p.POSITIONAL_ONLY)


class Differential:
    """Both models prepared once: the old prototype, the mapped state, the correspondence."""

    def __init__(self, target: Target, against: Against, tolerance: tuple[float, float] | None = None) -> None:
        self.target = target
        self.against = against
        self.tolerance = tolerance
        try:
            self.old = against.target.build()
        except Exception as exc:
            raise ModelError("building the old model", exc) from exc
        try:
            self.new = new = target.build()
        except Exception as exc:
            raise ModelError("building the model", exc) from exc
        self.mapping = StateMapping(
            target.spec.state_map,
            self.old.state_dict(),
            new.state_dict(),
            against.label,
            [name for name, _ in new.named_parameters(remove_duplicate=False)],
        )
        self.corr = Correspondence(
            self.mapping.provenance,
            [name for name, _ in self.old.named_modules()],
            [name for name, _ in new.named_modules()],
            self.mapping.unused,
        )
        self.shown = self._display_names()
        old_state = self.old.state_dict()
        self.orders = {
            gid: order
            for gid in range(len(self.corr.groups))
            if (order := self.corr.fused_order(gid, self.mapping, old_state)) is not None
        }

    def _display_names(self) -> dict[str, str]:
        """Old parameter name -> the name gradients are reported under: the new name for a
        parameter that was only renamed, the old name for one restructured."""
        shown = {}
        for old in self.mapping.old_keys:
            news = self.mapping.news_of(old)
            renamed = len(news) == 1 and self.mapping.provenance[news[0]] == (old,)
            shown[old] = news[0] if renamed else old
        return shown

    def load(self, model: nn.Module) -> nn.Module:
        model.load_state_dict(self.mapping.values(), strict=True)
        return model

    def runs(self, new: nn.Module, example: Example) -> tuple[Run, Run]:
        old_run = run_config(clone(self.old), self.against.target, example, OLD)
        new_run = run_config(self.load(new), self.target, example, NEW)
        return old_run, new_run

    def check(self, new: nn.Module, example: Example, record: Any = None) -> None:
        """Raise :class:`InvariantViolation` when the new model parts from the old one on
        ``example``; ``record(path)`` is told the new model's path."""
        old_run, new_run = self.runs(new, example)
        if record is not None:
            record(new_run.path)
        old_path = self.corr.canonical(old_run.path, "old")
        new_path = self.corr.canonical(new_run.path, "new")
        first = Run(OLD, old_run.outputs, self._shown(old_run.grads), (), old_run.model)
        second = Run(NEW, new_run.outputs, self._shown(self.mapping.grads_back(new_run.grads)), (), new_run.model)
        # A gradient on one side only counts as zero on the other: a restructured parameter
        # (experts stacked into one) has zero rows where the old experts had none.
        findings = numeric_findings(first, second, tolerance=self.tolerance, diverged=True)
        if not findings:
            return
        notes = self._notes(findings)
        if old_path != new_path:
            module, where = paths_part(old_run.path, new_run.path, self.corr)
            raise InvariantViolation(
                f"path divergence: the old model ({self.against.text}) took "
                f"{describe_path(old_run.path, old_run.model)}, the new model "
                f"{describe_path(new_run.path, new_run.model)} — a branch decision changed in the refactor, "
                "and the outputs differ",
                [f"first diverging module: {module} — {where}", *summarise(findings), *notes],
                path=new_run.path,
            )
        located = self.localise(example)
        old_steps = describe_path(old_run.path, old_run.model)
        same = [] if old_steps == describe_path(new_run.path, new_run.model) else [
            f"the old model took {old_steps}: the same steps as the new model's path below"
        ]
        raise InvariantViolation(
            f"The new model computes something else than the old model ({self.against.text}) on this example:",
            [*summarise(findings), *located, *notes, *same],
            path=new_run.path,
        )

    def _shown(self, grads: dict[str, Any]) -> dict[str, Any]:
        return {self.shown.get(name, name): grad for name, grad in grads.items()}

    def _notes(self, findings: list[str]) -> list[str]:
        notes = []
        if self.mapping.unused:
            notes.append(
                f"note: the state_map computes no parameter of the new model from the old "
                f"{', '.join(self.mapping.unused)} (a mis-mapped or dropped weight?)"
            )
        differing = {f.split(".grad ")[0] for f in findings if ".grad " in f.split(":")[0]}
        restructured = [
            old for old, shown in self.shown.items()
            if old in differing and shown == old and self.mapping.news_of(old) != [old]
        ]
        if restructured:
            notes.append(
                "gradients of restructured parameters are the new model's mapped back to the old ones "
                f"({', '.join(restructured)})"
            )
        return notes

    def localise(self, example: Example) -> list[str]:
        """Both runs again, every module's inputs and outputs kept: where they part."""
        old = clone(self.old)
        new = self.load(clone(self.new))
        with record_calls(old) as old_calls:
            run_config(old, self.against.target, example, OLD)
        with record_calls(new) as new_calls:
            run_config(new, self.target, example, NEW)
        return localise(old_calls, new_calls, self.corr, self.tolerance, orders=self.orders).describe()
