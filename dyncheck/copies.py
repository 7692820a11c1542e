"""Whether a copy of a model is a model of its own.

``copy.deepcopy`` copies a function as it is: a closure made in ``__init__``
(``self.to_logits = lambda t: t @ self.token_emb.weight.t()``) keeps the instance it was
made on, so a deep copy of such a model computes with, and trains, the *original's*
parameters. dyncheck makes its fresh models by copying (a prototype; an instance; what a
factory returns); on such a model every check would run on a copy wired to a model outside
the check, and ``tied_weights``' own "a deepcopy is independent" check would compare
against the wrong original.

So once per target, before any check runs, :func:`verdict` deep-copies the model as the
user hands it over (the class or the factory built under the build seed, or the user's
instance, which is copied and never run), runs the copy forward on a few deterministic
examples and walks the autograd graph of its outputs: a parameter of the original among the
graph's leaves is one the copy computes with instead of its own. No backward pass runs, so
nothing is written into the original's gradients. Where copies are unsafe, the context builds
every fresh model anew (see ``Context.fresh_model``) when the target can be built anew (a
class, or a factory that builds a new model on every call, giving the same weights under the
same seed); an instance cannot be, and the other checks are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.cloning import clone
from dyncheck.seeding import seeded
from dyncheck.tracing import floating_leaves, same_floats

if TYPE_CHECKING:
    from dyncheck.examples import Example
    from dyncheck.target import Target

__all__ = ["Copies", "finding", "original_model", "reached_by_copy", "skip_reason", "verdict"]

#: Examples the probe runs a copy on, at most (it stops at the first that shows a reach).
PROBE_EXAMPLES = 3

_REMEDY = "give the class, or a factory that builds a new model on each call, as the target"


@dataclass(frozen=True)
class Copies:
    """What a deep copy of one target's model computes with."""

    #: names, in the original, of the parameters a deep copy computes with instead of its own
    reached: tuple[str, ...] = ()
    #: the copy's hooks whose closures hold a part of the original, described
    hooks: tuple[str, ...] = ()
    #: class-level registries (``Leaky.instances``) that hold the original's modules and not
    #: the copy's, where two calls on a copy differ and two on a new build agree
    registries: tuple[str, ...] = ()
    #: why no new model can be built in place of a copy (None: one can, or copies are safe)
    unbuildable: str | None = None

    @property
    def safe(self) -> bool:
        return not self.reached and not self.hooks and not self.registries


def verdict(target: Target) -> Copies:
    """Whether copies of ``target``'s model are its own, found once per target (kept on it)."""
    if target.copies is None:
        try:
            target.copies = _probe(target)
        except Exception:
            # The model cannot be built, copied or run here: the checks report that
            # themselves, with their context; copies stay as they were.
            target.copies = Copies()
    return target.copies


def reached_by_copy(target: Target, example: Example, original: nn.Module | None = None) -> tuple[str, ...]:
    """The original's parameters that a deep copy of ``target``'s model computes with on
    ``example`` (the original as the user hands it over; never run, never changed). A
    caller that asks on every example passes the original it keeps (:func:`original_model`)."""
    try:
        if original is None:
            original = _original(target)
        copied = clone(original)
    except Exception:
        return ()  # a model that cannot be built or copied: the checks report it with its context
    return _reached(target, original, copied, example)


def finding(target: Target, copies: Copies) -> str:
    """The ``tied_weights`` finding for copies that compute with the original."""
    if copies.reached:
        names = _names(copies.reached)
        them = "it" if len(copies.reached) == 1 else "them"
        text = (
            f"a copy of the model computes with the original's {names}, not its own: the model reaches "
            f"{them} through a closure or a reference to another object (a function made in __init__ that "
            "holds self or a submodule), which copy.deepcopy leaves pointing at the original, so every copy "
            f"(copy.deepcopy, an EMA model, an nn.DataParallel replica) trains the original's {names}. Reach "
            "parameters through self in forward (a method, not a closure made in __init__)."
        )
    elif copies.registries:
        them = "it" if len(copies.registries) == 1 else "them"
        text = (
            f"a copy of the model is missing from the class-level {_names(copies.registries)}, which "
            f"{'holds' if len(copies.registries) == 1 else 'hold'} the original's modules: whatever works through "
            f"{them} (a reset of every instance, snntorch's utils.reset) misses the copy. Two calls on a copy "
            "with the same input and seed differ where two on a new build agree, so every copy (copy.deepcopy, an "
            "EMA model, a best-model snapshot, an nn.DataParallel replica) keeps its state from call to call. "
            "Reset the model's own modules (for m in self.modules(), or reset methods each module has), not "
            "the instances a class keeps."
        )
    else:
        text = (
            f"a copy of the model runs hooks that work on the original, not on the copy: {_names(copies.hooks)}. "
            "copy.deepcopy copies a hook function as it is, so its closure still holds what it held in "
            "__init__, and every copy (copy.deepcopy, an nn.DataParallel replica) calls into the original. "
            "Register a method of the module (self.register_full_backward_hook(self._hook)), or a function "
            "that uses the module it is called with (its first argument), not one that closes over self."
        )
    if copies.unbuildable:
        name = target.model_class.__qualname__ if target.model_class is not None else "Model"
        text += (
            f" dyncheck checks copies of the model, and {copies.unbuildable}, so the other checks are "
            f"skipped: {_REMEDY} (e.g. dyncheck.Spec({name}, init={{...}}))."
        )
    return text


def skip_reason(target: Target) -> str | None:
    """Why a check cannot run on ``target`` at all (its copies are wired to the original and
    it cannot be built anew); None when it can."""
    copies = verdict(target)
    if copies.safe or copies.unbuildable is None:
        return None
    return (
        f"copies of the model {_what_copies_share(copies)} (see tied_weights), "
        f"and {copies.unbuildable}: {_REMEDY}"
    )


def _what_copies_share(copies: Copies) -> str:
    if copies.reached:
        return f"compute with the original's {_names(copies.reached)}"
    if copies.registries:
        return f"are missing from {_names(copies.registries)}, which resets the original's state"
    return f"run hooks that work on the original ({_names(copies.hooks)})"


def _names(reached: tuple[str, ...]) -> str:
    return reached[0] if len(reached) == 1 else ", ".join(reached[:-1]) + " and " + reached[-1]


def _probe(target: Target) -> Copies:
    from hypothesis.errors import NoSuchExample

    from dyncheck.examples import quiet, search

    # The two models live in a list the search's callback reads, emptied afterwards:
    # Hypothesis keeps the callback in reference cycles that only the cyclic collector
    # frees, and two model copies must not wait for it (on a big model, gigabytes).
    models = [_original(target)]
    models.append(clone(models[0]))
    hooks = _hooks_on_original(models[0], models[1])
    if hooks:
        original = models.pop(0)
        models.clear()
        return Copies(hooks=hooks, unbuildable=_unbuildable(target, original))
    registries = _registries(models[0], models[1])
    if registries and not isinstance(target.spec.model, nn.Module) and _unbuildable(target, models[0]) is None:
        # Called on builds and copies of their own, never on the original kept here nor on
        # a user's instance (two builds under the build seed agree, so the factory hands
        # out a new model on each call).
        # (the registries are class-level: the same lists hold this build's modules too)
        if _copies_drift(target, _original(target).eval(), registries):
            models.clear()
            return Copies(registries=tuple(registries))
    reached: tuple[str, ...] = ()

    def reaches(example: Example) -> bool:
        nonlocal reached
        reached = _reached(target, models[0], models[1], example)
        return bool(reached)

    # Deterministic examples (derandomize, no database): the verdict is the same in every
    # run, on every xdist worker, whichever check asks first.
    try:
        search(target, reaches, quiet(PROBE_EXAMPLES))
    except NoSuchExample:
        return Copies()
    finally:
        original = models[0]
        models.clear()
    return Copies(reached=reached, unbuildable=_unbuildable(target, original))


def _registries(original: nn.Module, copied: nn.Module) -> dict[str, Any]:
    """Lists, sets, weak sets and dicts (their values) kept on the classes of ``original``'s
    modules (not torch's own) that hold some of its modules and none of ``copied``'s, by
    name: snntorch's ``SpikingNeuron.instances``, filled by ``__init__``, which
    ``copy.deepcopy`` never calls."""
    import weakref

    owned = {id(m) for m in original.modules()}
    copies = {id(m) for m in copied.modules()}
    found: dict[str, Any] = {}
    seen: set[type] = set()
    for module in original.modules():
        for cls in type(module).__mro__:
            if cls in seen or cls is object or cls.__module__.split(".")[0] == "torch":
                continue
            seen.add(cls)
            for attribute, value in list(vars(cls).items()):
                if isinstance(value, (dict, weakref.WeakValueDictionary)):
                    items = list(value.values())
                elif isinstance(value, (list, set, weakref.WeakSet)):
                    items = list(value)
                else:
                    continue
                ids = {id(item) for item in items}
                if ids & owned and not ids & copies:
                    found[f"{cls.__qualname__}.{attribute}"] = value
    return found


#: Calls on one example that :func:`_copies_drift` compares (a state shows only once a
#: membrane crosses its threshold, which may take a few calls).
_DRIFT_CALLS = 4


def _copies_drift(target: Target, prototype: nn.Module, registries: dict[str, Any]) -> bool:
    """Whether, on one of a few deterministic examples, calls on a copy of ``prototype`` (a
    build never run) with the same input and seed differ, calls on a new build agree, and
    calls on another copy whose modules are put in ``registries`` beside the prototype's
    agree too: the registries are what a copy misses. All in eval mode, each model made for
    the example (so that the answer is the same when asked again); a new build only where
    a copy drifts."""
    from hypothesis.errors import NoSuchExample

    from dyncheck.examples import quiet, search

    def drift(model: nn.Module, example: Example) -> bool:
        first = None
        for call in range(_DRIFT_CALLS):
            with seeded(example.seed), torch.no_grad():
                output = target.call(model, example.fresh_args())
            if call == 0:
                first = output
            elif not same_floats(first, output):
                return True
        return False

    def drifts(example: Example) -> bool:
        try:
            if not drift(clone(prototype), example) or drift(_original(target).eval(), example):
                return False
            registered = clone(prototype)
            with _registered(prototype, registered, registries):
                return not drift(registered, example)
        except Exception:
            return False  # the checks report the model's own exceptions

    try:
        search(target, drifts, quiet(PROBE_EXAMPLES + 2))
    except NoSuchExample:
        return False
    return True


@contextlib.contextmanager
def _registered(original: nn.Module, copied: nn.Module, registries: dict[str, Any]) -> Iterator[None]:
    """``copied``'s modules put in each of ``registries`` beside their counterparts in
    ``original`` (the module at the same name), taken out again afterwards."""
    names = {id(module): name for name, module in original.named_modules()}
    counterparts = dict(copied.named_modules())
    added: list[tuple[Any, nn.Module]] = []
    try:
        for container in registries.values():
            for item in list(container.values() if hasattr(container, "values") else container):
                name = names.get(id(item))
                twin = counterparts.get(name) if name is not None else None
                if twin is None:
                    continue
                if isinstance(container, list):
                    container.append(twin)
                    added.append((container, twin))
                elif hasattr(container, "values"):  # a dict: under a key of its own, which nothing else uses
                    keys = list(container)
                    ints = keys and all(isinstance(k, int) and not isinstance(k, bool) for k in keys)
                    key = max(keys) + 1 if ints else object()  # kept sortable beside whole-number keys
                    container[key] = twin
                    added.append((container, key))
                else:
                    container.add(twin)
                    added.append((container, twin))
        yield
    finally:
        for container, twin in added:
            if hasattr(container, "values"):
                container.pop(twin, None)
            elif isinstance(container, list):
                for index in range(len(container) - 1, -1, -1):
                    if container[index] is twin:
                        del container[index]
                        break
            else:
                container.discard(twin)


def original_model(target: Target, built: nn.Module) -> nn.Module:
    """The model as the user hands it over, for :func:`reached_by_copy`: ``built`` itself
    when the target is a class (built under the build seed, never run, its closures hold it,
    as they would the user's), else the user's instance or the factory's own result."""
    return built if inspect.isclass(target.spec.model) else _original(target)


def _original(target: Target) -> nn.Module:
    """The model as the user hands it over: the user's instance itself, or a class or
    factory called under the build seed (what ``Target.build`` starts from)."""
    from dyncheck.target import BUILD_SEED

    model = target.spec.model
    if isinstance(model, nn.Module):
        return model
    with seeded(BUILD_SEED):
        return model(**target.spec.init)


def _reached(target: Target, original: nn.Module, copied: nn.Module, example: Example) -> tuple[str, ...]:
    """Run ``copied`` forward on ``example``; the names in ``original`` of its parameters that
    the outputs' autograd graph reaches (a copy's own parameters are other objects)."""
    names: dict[int, str] = {}
    for name, parameter in original.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), name)
    own = {id(p) for p in copied.parameters()}
    # A closure that runs one of the original's modules in train mode updates its running
    # statistics: put them back, the original may be the user's own instance.
    saved = [(b, b.detach().clone()) for b in original.buffers() if not is_lazy(b)]  # a lazy one holds nothing yet
    try:
        with seeded(example.seed), torch.enable_grad():
            output = target.call(copied, example.fresh_args())
    except Exception:
        return ()  # the checks report the model's own exceptions
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                if buffer.shape == value.shape:
                    buffer.copy_(value)
    found = {names[key] for key in _graph_leaves(output) if key in names and key not in own}
    return tuple(sorted(found))


#: A module's hooks a forward or backward pass calls, and what to call them.
_HOOK_KINDS = (
    ("_forward_pre_hooks", "forward pre-hook"),
    ("_forward_hooks", "forward hook"),
    ("_backward_pre_hooks", "backward pre-hook"),
    ("_backward_hooks", "backward hook"),
)


def _hooks_on_original(original: nn.Module, copied: nn.Module) -> tuple[str, ...]:
    """The hooks of ``copied`` (a deep copy of ``original``) whose function closes over a
    module, parameter or buffer of ``original``, described: ``copy.deepcopy`` copies a
    function as it is, so a hook made in ``__init__`` as a closure over ``self``
    (routing-transformer's k-means update, run by a backward hook) runs on the original
    whichever copy calls it. A bound method or a ``functools.partial`` is copied with its
    module and is not one."""
    owned: dict[int, str] = {}
    for name, module in original.named_modules(remove_duplicate=False):
        owned.setdefault(id(module), f"the original's {name}" if name else "the original model")
    for name, tensor in (*original.named_parameters(remove_duplicate=False), *original.named_buffers(remove_duplicate=False)):
        owned.setdefault(id(tensor), f"the original's {name}")
    found: list[str] = []
    for where, module in copied.named_modules():
        for attribute, kind in _HOOK_KINDS:
            for hook in (getattr(module, attribute, None) or {}).values():
                held = next((owned[id(obj)] for obj in _closed_over(hook) if id(obj) in owned), None)
                if held is not None:
                    label = getattr(hook, "__qualname__", type(hook).__name__)
                    found.append(f"the {kind} {label} of {where or 'the model'} holds {held}")
    return tuple(dict.fromkeys(found))


def _closed_over(hook: Any) -> Iterator[Any]:
    """What a plain function's closure holds, and the items of a list, tuple, set or dict
    it holds (``self.kmean_modules``)."""
    for cell in getattr(hook, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        yield value
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, (list, tuple, set, frozenset)):
            yield from value


def _graph_leaves(output: Any) -> Iterator[int]:
    """``id()`` of every leaf tensor the autograd graph of ``output``'s tensors reaches."""
    stack = []
    for _, tensor in floating_leaves(output):
        if not tensor.requires_grad:
            continue
        if tensor.grad_fn is None:
            yield id(tensor)  # the output is a leaf itself (a parameter returned as it is)
        else:
            stack.append(tensor.grad_fn)
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            yield id(variable)
        stack.extend(next_node for next_node, _ in node.next_functions)


def _unbuildable(target: Target, original: nn.Module) -> str | None:
    """Why a new model cannot stand in for a copy: the target is an instance, the factory
    hands out one model, or two builds under the build seed differ."""
    from dyncheck.target import BUILD_SEED

    model = target.spec.model
    if isinstance(model, nn.Module):
        return "an instance cannot be built anew"
    try:
        with seeded(BUILD_SEED):
            again = model(**target.spec.init)
    except Exception as exc:
        return f"building it a second time raised {type(exc).__name__}"
    if not isinstance(again, nn.Module):
        return f"building it a second time gave {type(again).__name__}, not a module"
    if again is original or {id(p) for p in again.parameters()} & {id(p) for p in original.parameters()}:
        return "the factory returns the same model on every call"
    first, second = original.state_dict(), again.state_dict()
    if first.keys() != second.keys() or not all(_equal(first[k], second[k]) for k in first):
        return "two builds under the same seed differ (construction draws from a generator dyncheck does not seed)"
    return None


def _equal(a: Any, b: Any) -> bool:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        return bool(a == b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(torch.equal(a.isnan(), b.isnan())) and torch.equal(a.nan_to_num(), b.nan_to_num())
    return torch.equal(a, b)
