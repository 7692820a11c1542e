"""The Invariant protocol, and the context a check runs in."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.cloning import clone
from dyncheck.copies import verdict
from dyncheck.diagnose import diagnose
from dyncheck.errors import ModelError, NotApplicable
from dyncheck.examples import Example
from dyncheck.paths import Layout, PathSet
from dyncheck.seeding import seeded
from dyncheck.target import BUILD_SEED, Target
from dyncheck.tracing import (
    Trace,
    check_loss,
    densify_grads,
    deferred_modules,
    loss_of,
    observing,
    record_modules,
    unused_by_output,
)

__all__ = ["Context", "Invariant"]

#: On how many examples an output must hold layers the call did not use (their parameters
#: changed, the outputs stayed the same) before a check takes it for a lazy object: on one
#: (all zeros) a linear map of its input does not move either.
_HELD_EXAMPLES = 3


class Invariant:
    """One property every applicable model must have on every example.

    Subclasses set ``name`` (also the test id) and ``summary`` (one line for the README
    table and ``--help``), and implement :meth:`check`, raising
    :class:`~dyncheck.errors.InvariantViolation` with the broken property in plain words.

    A pass must mean the property was checked: :meth:`check` calls
    ``context.compared()`` on an example where it compared something, and otherwise
    returns ``context.nothing_to_compare(why)``, saying what the example lacked and the
    Spec that supplies it. The summary shows on how many examples a check compared
    something (``checked on 37 of 100 examples``), and a check that compared nothing
    over the whole run is a skip whose reason is the commonest ``why``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    #: An opt-in invariant runs only when --dyncheck-invariants names it (it is slow).
    opt_in: ClassVar[bool] = False
    #: The invariant that reports copies wired to the original (dyncheck.copies); every
    #: other one is skipped when such a model cannot be built anew.
    reports_copies: ClassVar[bool] = False

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

    def collected_by_default(self, target: Target, settings: Any) -> bool:
        """Whether a run collects this check for ``target`` without --dyncheck-invariants
        naming it: every one that is not opt-in, and an opt-in one ``target`` configures."""
        return not self.opt_in or self.configured(target, settings) is None

    def dims(self, target: Target) -> dict[str, Any]:
        """Named sizes this invariant draws in ranges of its own, over the spec's (a size
        at which it can compare nothing left out): none by default."""
        return {}

    def replay(self, context: Context) -> Any:
        """The examples to check, when they are not generated: an iterable of
        :class:`Example` checked in order without Hypothesis (recorded examples). None (the
        default): examples are generated from the spec."""
        return None

    def check(self, context: Context, example: Example) -> None:
        """Check one example: raise InvariantViolation, or mark it compared (or not)."""
        raise NotImplementedError

    def finish(self, context: Context) -> None:
        """Called once after every example passed; invariants over the whole run (the
        path census) raise their violations here."""


def needs_autograd(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's refusal to differentiate a tensor made without autograd:
    a forward that calls ``torch.autograd.grad`` itself, run under ``torch.no_grad()``."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "does not require grad and does not have a grad_fn" in text
        or "One of the differentiated Tensors does not require grad" in text
    )


def _has_lazy(model: nn.Module) -> bool:
    """Whether ``model`` holds a lazy parameter or buffer not yet materialised (a
    ``LazyBatchNorm1d(affine=False)`` has buffers only)."""
    return any(is_lazy(t) for t in (*model.parameters(), *model.buffers()))


class Context:
    """What a check works with: fresh copies of the model, a seeded runner that turns the
    model's own exceptions into :class:`ModelError`, and the paths seen so far."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._prototype: nn.Module | None = None
        self._materialised = False
        #: forward differentiates inside itself (torch.autograd.grad in forward): calls that
        #: need no gradients run with autograd all the same
        self.needs_grad = False
        self._dry_run_on: Example | None = None
        self._layout: Layout | None = None
        self.paths: Counter[tuple[str, ...]] = Counter()
        self.examples = 0
        #: the example (counted from 1) that first failed; the examples after it shrank it
        self.failed_at: int | None = None
        #: what that first failure said (its headline), before shrinking made it smaller
        self.first_finding: str | None = None
        self.last_path: tuple[str, ...] | None = None
        #: module name -> the first example on which it ran (for two-step checks)
        self.witnesses: dict[str, Example] = {}
        #: path -> the first example that took it (the audit times each path on it)
        self.path_examples: dict[tuple[str, ...], Example] = {}
        #: results an invariant wants in the summary (JSON-able: it travels from xdist workers)
        self.report: dict[str, Any] = {}
        #: an invariant's own state between examples
        self.memo: dict[str, Any] = {}
        #: the run's options (dyncheck.settings.Settings), set by the item
        self.settings: Any = None
        #: the check's time budget (dyncheck.budget.Budget), set by the item; searches an
        #: invariant runs beyond the examples (coverage's) ask it too
        self.budget: Any = None
        #: examples on which the check compared something (see Invariant)
        self.checked = 0
        #: why the other examples compared nothing: reason -> examples
        self.uncompared: Counter[str] = Counter()
        #: the reasons that are about what an example happened to draw (a batch of 1)
        self.drawn: set[str] = set()
        self._compared = False
        self._reason: str | None = None
        #: why forward's output leaves the checks nothing to see ("" when it does not), found
        #: on the check's first call
        self._held: str | None = None
        #: the examples on which it held such layers and did not use them
        self._held_examples: set[int] = set()

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Around one example's check: count it, and whether it compared something."""
        self.examples += 1
        self._compared, self._reason = False, None
        with observing(self._check_held):
            yield
        if self._compared:
            self.checked += 1
        else:
            self.uncompared[self._reason or _SILENT] += 1

    def tolerance(self, invariant: str) -> tuple[float, float] | None:
        """``(rtol, atol)`` an agreement check compares with: the Spec's own for this model
        (``Spec(tolerances=...)``), else the run's (``[tool.dyncheck.<invariant>]``), else
        None (the dtype's defaults, with the rounding margins)."""
        own = self.target.spec.tolerances.get(invariant)
        if own is not None:
            return tuple(own)
        return self.settings.tolerances.get(invariant) if self.settings else None

    def compared(self) -> None:
        """This example compared something: the check's pass covers it."""
        self._compared = True

    def note(self, key: str, text: Callable[[int], str]) -> None:
        """Count one more example under ``key`` and make ``text(count)`` its line in the
        summary's notes (the latest text per key; the lines of other keys stay)."""
        counts: Counter[str] = self.memo.setdefault("note_counts", Counter())
        counts[key] += 1
        lines: dict[str, str] = self.memo.setdefault("note_lines", {})
        lines[key] = text(counts[key])
        self.report["notes"] = list(lines.values())

    def nothing_to_compare(self, reason: str, *, drawn: bool = False) -> None:
        """This example gave the check nothing to compare, and why: what was missing and
        the Spec that supplies it (``return context.nothing_to_compare(...)``). ``drawn``
        marks a reason that is about what this example happened to draw (a batch of 1),
        not about the model or the spec: a skip gives a reason of the other kind first."""
        self._reason = reason
        if drawn:
            self.drawn.add(reason)

    def vacuous(self) -> str | None:
        """None when some example compared something; else the skip reason, ``in 20
        examples: <why>`` with the commonest reason the examples gave, one about the model
        or spec before one about a draw (the summary lists the others with -v)."""
        if self.checked or not self.examples:
            return None
        reasons = [reason for reason, _ in self.uncompared.most_common()]
        reason = next((r for r in reasons if r not in self.drawn), reasons[0])
        return f"in {self.examples} example{'s' if self.examples != 1 else ''}: {reason}"

    def fresh_model(self) -> nn.Module:
        """A deep copy of the model as built (the built prototype itself is never run); a
        new build instead when copies of this model compute with the original's parameters
        (dyncheck.copies), so that no check runs on a model wired to another."""
        prototype = self.prototype()
        if not verdict(self.target).safe:
            return self.build_model()
        return clone(prototype)

    def copy_of(self, model: nn.Module) -> nn.Module:
        """A copy of ``model``, one of this context's fresh models that has not been trained:
        ``copy.deepcopy(model)``, or a new build where a copy would compute with ``model``'s
        parameters."""
        if not verdict(self.target).safe:
            return self.build_model()
        return clone(model)

    def build_model(self, seed: int | None = None) -> nn.Module:
        """A new instance built from the spec (not a copy of the prototype): checks that
        compare with "a freshly built model" use it, since a deep copy shares what the
        prototype's closures and globals captured. ``seed``: built under that seed instead
        of the build seed every other model of the run is built under."""
        try:
            model = self.target.build() if seed is None else self.target.build(seed)
        except Exception as exc:
            raise ModelError("building the model", exc) from exc
        self._dry_run(model)
        return model

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
        grad = grad or self.needs_grad
        try:
            with seeded(example.seed), torch.set_grad_enabled(grad):
                with record_modules(model) as calls:
                    output = self.target.call(model, example.fresh_args())
                stage = "the spec's loss" if self.target.spec.loss is not None else "the loss"
                loss = check_loss(loss_of(self.target.spec, output, example.seed))
                if backward and loss is not None and loss.requires_grad:
                    stage = "backward"
                    loss.backward()
                    densify_grads(model)
        except Exception as exc:
            if not grad and needs_autograd(exc):
                # forward differentiates inside itself (a Hamiltonian network's dH/dx, a PINN's
                # residual, MAML's inner step): every call of this check runs with autograd
                self.needs_grad = True
                return self.run(model, example, backward=backward, record=record, grad=True)
            raise ModelError(stage, exc, hints=tuple(diagnose(model))) from exc
        path = tuple(calls)
        self._check_held(output, model, path, self._rerun(example.seed, example.fresh_args))
        if record:
            self.record(path, example)
        return Trace(output=output, modules=path, loss=loss, model=model)

    def _rerun(self, seed: int, args: Callable[[], dict[str, Any]]) -> Callable[[nn.Module], Any]:
        """A call of another model as one call was made: under its seed, on ``args()``."""

        def rerun(other: nn.Module) -> Any:
            with seeded(seed):
                return self.target.call(other, args())

        return rerun

    def _check_held(
        self, output: Any, model: nn.Module, path: tuple[str, ...], rerun: Callable[[nn.Module], Any]
    ) -> None:
        """A forward that returns an object holding layers it did not run (a lazy distribution,
        a flow's transform) leaves every check nothing of the model's to see, unless the spec's
        loss uses the object: :class:`NotApplicable`, once the first call of
        :data:`_HELD_EXAMPLES` examples showed it (one call an example is looked at)."""
        if self._held is None and self.examples not in self._held_examples:
            held = [] if self.target.spec.loss is not None else deferred_modules(output, model, path)
            # a module used without being called (its weight in F.linear, .forward()): the output
            # moves with it; on an example where it does not (all zeros), no verdict yet
            if any(not unused_by_output(model, name, rerun) for _, name, _ in held):
                held = []
            if not held:
                self._held = ""
            else:
                self._held_examples.add(self.examples)
                if len(self._held_examples) >= _HELD_EXAMPLES:
                    modules = " and ".join(f"{name} ({count:,} parameters)" for _, name, count in held)
                    self._held = (
                        f"forward returned a {type(output).__name__} holding {modules} without running them: they "
                        "run when it is used, so no check would see them. Check a module whose forward uses it (for a "
                        "distribution, `return self.model(c).log_prob(x)`), or give Spec(loss=...) that uses it"
                    )
        if self._held:  # raised on every call, should a check's own handler have taken one
            raise NotApplicable(self._held)

    def call(
        self, model: nn.Module, args: dict[str, Any], seed: int, *, hooked: bool = True, stage: str = "forward",
    ) -> Any:
        """What ``model`` returns on ``args`` under ``seed``, without autograd unless forward
        differentiates inside itself (then every later call has it too); the model's
        exception as a :class:`ModelError` of ``stage``. ``hooked``: with the module hooks
        :meth:`run` follows the path with (which turn torch's fused inference paths off),
        so that the call runs the code a :meth:`run` ran; without, as the model is served."""
        try:
            with seeded(seed), torch.set_grad_enabled(self.needs_grad):
                if not hooked:
                    return self.target.call(model, args)
                with record_modules(model) as calls:
                    output = self.target.call(model, args)
        except Exception as exc:
            if not self.needs_grad and needs_autograd(exc):
                self.needs_grad = True  # forward differentiates inside itself
                return self.call(model, args, seed, hooked=hooked, stage=stage)
            raise ModelError(stage, exc) from exc
        self._check_held(output, model, tuple(calls), self._rerun(seed, lambda: args))
        return output

    def record(self, path: tuple[str, ...], example: Example) -> None:
        """Count one call on ``path`` in the census (checks that run the model their own
        way, such as the agreement pairs, record their reference call here)."""
        self.paths[path] += 1
        self.last_path = path
        self.path_examples.setdefault(path, example)
        for name in path:
            self.witnesses.setdefault(name, example)

    def release(self) -> None:
        """Let go of the models the check held (the prototype, what an invariant kept in
        its memo) once it is over; the census, the counts, the report and the layout stay
        for the summary. Items live until the session ends: without this every check of a
        run would keep its model alive."""
        _ = self.layout  # from the prototype, while it is here
        self._prototype = None
        self.memo.clear()

    def materialise(self, example: Example) -> None:
        """Lazy layers (``nn.LazyLinear``) have no weights until their first call. For a
        model with such parameters, the model as built is the one a dry run materialised,
        as PyTorch asks before an optimizer is made: called once on the first example of
        the check, in eval mode, without autograd, under the build seed (its initial
        weights the same whatever the example's seed); the prototype is a copy so called,
        and so is every new build (:meth:`build_model`). A lazy layer on a branch that call
        did not take stays lazy; a dry run that raises changes nothing (the checks report
        what the model raises). Once per check."""
        if self._materialised:
            return
        self._materialised = True
        try:
            if not _has_lazy(self.prototype()):
                return
        except ModelError:
            return  # the check reports what building raises, as it would without lazy layers
        self._dry_run_on = example
        model = clone(self.prototype())
        if self._dry_run(model):
            self._prototype = model

    def lazy_on(self, path: tuple[str, ...]) -> str | None:
        """Why an example on ``path`` cannot be compared between two copies that each run it
        (two dtypes, two devices), or None: a lazy layer the dry run did not reach (on a
        branch) is on it, so each copy draws that layer's weights in its own call."""
        lazy = [
            name for name, module in self.prototype().named_modules()
            if name in path and any(is_lazy(t) for t in (*module.parameters(recurse=False), *module.buffers(recurse=False)))
        ]
        if not lazy:
            return None
        return (
            f"lazy layer {', '.join(lazy)} gets its weights on its first call, which this example makes (the dry "
            "run on the check's first example did not reach it): each compared copy draws its own"
        )

    def _dry_run(self, model: nn.Module) -> bool:
        """Call ``model`` once as :meth:`materialise` says, when it has lazy parameters;
        whether it did (and did not raise)."""
        example = self._dry_run_on
        if example is None or not _has_lazy(model):
            return False
        modes = {name: module.training for name, module in model.named_modules()}
        try:
            with seeded(BUILD_SEED), torch.no_grad():
                self.target.call(model.eval(), example.fresh_args())
        except Exception:
            self._dry_run_on = None  # not again for every build
            return False
        finally:
            for name, module in model.named_modules():
                module.training = modes.get(name, module.training)
        return True

    def prototype(self) -> nn.Module:
        """The model as built (built on first use), which no check ever runs: for what
        needs only its names or its original parameters, without a copy of its own."""
        if self._prototype is None:
            try:
                self._prototype = self.target.build()
            except Exception as exc:
                raise ModelError("building the model", exc) from exc
        return self._prototype

    @property
    def layout(self) -> Layout | None:
        """The model's module names (None until the model is built)."""
        if self._layout is None:
            self._layout = Layout.of(self._prototype)
        return self._layout

    def leaf_paths(self) -> Counter[tuple[str, ...]]:
        """The paths recorded so far, without containers."""
        layout = self.layout
        if layout is None:
            return Counter(self.paths)
        found: Counter[tuple[str, ...]] = Counter()
        for path, count in self.paths.items():
            found[layout.leaf_path(path)] += count
        return found

    def describe_path(self, path: tuple[str, ...], *, outline: bool = False) -> str:
        """``path`` on one line, told by what varies between it and the other paths this
        check has seen (see :mod:`dyncheck.paths`); with ``outline``, followed by the modules
        all paths go through when that still fits on a line."""
        layout = self.layout
        leaf = layout.leaf_path(path) if layout is not None else tuple(path)
        reference = PathSet([*self.leaf_paths(), leaf], layout)
        text = reference.describe(leaf)
        if outline and not reference.full and len(reference.paths) > 1:
            extended = f"{text} (of {reference.outline()})"
            if len(extended) <= reference.width + 28:
                return extended
        return text


#: The reason of an example whose check neither compared nor said why not.
_SILENT = "the check did not report comparing anything (its check must call context.compared())"


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

