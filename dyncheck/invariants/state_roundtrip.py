"""state_roundtrip: the state_dict is the whole state of the model.

After the original has run forward (on a few examples the run saw earlier, then twice on
this one: lazily created layers and mutated state show up only then), a fresh instance
built from the spec (a new build, not a copy, so nothing the original's closures captured is
shared; under another seed than the original's, so that a random value drawn when building
and kept outside the state_dict, ``self.B = torch.randn(...)``, differs as it would in
another process), loaded with ``load_state_dict(original.state_dict())``, must be the same
model. A model whose parameters themselves depend on the seed it is built under (a randomly
wired net) gets a fresh instance under the original's seed instead: the same architecture
is what a checkpoint is loaded into.

1. the state_dict loads (strictly): forward did not create parameters or buffers that a
   freshly built model lacks (a layer grown in forward), nor change their shapes;
2. the two share parameters alike: forward did not tie (or untie) parameters, which a
   state_dict cannot carry;
3. called on this example with the same seed, the two take the same path and give bitwise
   the same outputs. They differ when state lives outside the state_dict: a counter or a
   cached tensor kept as a plain attribute, a ``persistent=False`` buffer that forward
   updates. The report names the attributes and such buffers that differ between the two.
   When two copies loaded from the same state_dict disagree with each other too, the model
   is not a function of its state, input and seed (an unseeded generator, a global): that
   is determinism's finding, which no state_dict could fix, and the example counts as not
   compared (a run where no example could be compared is a skip that says so).

Lazy modules (``nn.LazyLinear``) pass: torch loads a state_dict into uninitialised lazy
parameters, and their first call then keeps the loaded values.

Both models are in train mode, as in the other invariants. Where the model's own code
reads ``self.training`` (not only torch's layers), the two are then compared in eval mode
too, on the same example: state only eval mode reads (running statistics of a hand-written
norm kept as ``persistent=False`` buffers) differs there alone. The earlier examples are the
first two the run saw and the first seen on each new path, up to four; once they are
chosen the check is a function of the example alone, so Hypothesis's replays of a failing
example fail the same way. The model as the earlier examples left it is kept, and each
example starts from a deep copy of it rather than running them again. Every call runs
without autograd: no backward pass is needed to compare states and outputs.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.cloning import clone
from dyncheck.compare import mismatch, tensor_bytes
from dyncheck.copies import verdict
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants.determinism import note_path_only, reads_training, stateless_detour
from dyncheck.tracing import leaves, missing_output

__all__ = ["StateRoundtrip", "attribute_differences"]

#: The seed the fresh instance is built under: not the build seed of the original, so that a
#: random value drawn when building and kept outside the state_dict differs between the two.
_OTHER_SEED = 1

#: The earlier examples that warm the original up: the first two the run saw, then the
#: first seen on each new path, up to four in all.
_FIRST, _EARLIER = 2, 4

_OUTSIDE = (
    "state lives outside the state_dict (plain attributes, tensors not registered as buffers, "
    "layers created in forward)."
)

_NOT_A_FUNCTION = (
    "two copies loaded from one state_dict disagreed with each other: the model is not a function of "
    "its state, input and seed (determinism reports it), so what the state_dict misses cannot be told"
)

#: The attributes every nn.Module has (parameters, buffers, submodules, hooks, ``training``):
#: not the model's own state.
_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def _own_attributes(module: nn.Module) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(module).items()
        if name not in _MODULE_INTERNALS and "hook" not in name  # lazy modules' hook handles
    }


#: The pairs of functions :func:`_same` is comparing now: one met again inside itself is
#: taken as alike, so far as the rest of it goes.
_COMPARING: set[tuple[int, int]] = set()


def _same(a: Any, b: Any, depth: int = 6) -> bool:
    """Whether two values kept on the original and the fresh copy are alike; ``depth`` bounds
    how far nested containers and closures are followed (a table of functions that refers to
    itself)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if is_lazy(a) or is_lazy(b):
            return is_lazy(a) and is_lazy(b)
        return not mismatch(b, a)
    if isinstance(a, nn.Module) or isinstance(b, nn.Module):
        return type(a) is type(b)  # each model holds its own copy
    if depth <= 0:
        return a is b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y, depth - 1) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], depth - 1) for k in a)
    if isinstance(a, (types.FunctionType, types.MethodType)) and isinstance(b, (types.FunctionType, types.MethodType)):
        pair = (id(a), id(b))
        if pair in _COMPARING:
            return True  # met again inside itself (a table of functions that refers to itself)
        _COMPARING.add(pair)
        try:
            return _same_function(a, b, depth - 1)
        except Exception:  # a closure over something that compares by raising: listed, as before
            return False
        finally:
            _COMPARING.discard(pair)
    try:
        return bool(a == b)
    except Exception:  # e.g. a numpy array: == is elementwise
        return repr(a) == repr(b)


def _same_function(a: Any, b: Any, depth: int) -> bool:
    """Whether two functions kept on a module compute alike: a method bound to each model's
    own copy of one module (``self.state_function = self._sub``: its class, and a module whose
    state_dict is equal), or a closure made anew for each copy (snntorch's ``spike_grad``)
    from the same code over equal values (a module in it with an equal state_dict, not only
    of the same class). Each copy holds its own, so they are never the same object."""
    if isinstance(a, types.MethodType) or isinstance(b, types.MethodType):
        return (
            isinstance(a, types.MethodType) and isinstance(b, types.MethodType) and a.__func__ is b.__func__
            and _same_owner(a.__self__, b.__self__)
        )
    if a is b:
        return True
    if a.__code__ is not b.__code__:
        return False
    if not _same(a.__defaults__ or (), b.__defaults__ or (), depth) or not _same(
        a.__kwdefaults__ or {}, b.__kwdefaults__ or {}, depth
    ):
        return False
    cells, others = a.__closure__ or (), b.__closure__ or ()
    if len(cells) != len(others):
        return False
    for cell, other in zip(cells, others):
        try:
            mine, theirs = cell.cell_contents, other.cell_contents
        except ValueError:  # an empty cell
            return False
        if isinstance(mine, nn.Module) or isinstance(theirs, nn.Module):
            if not _same_owner(mine, theirs):
                return False
        elif not _same(mine, theirs, depth):
            return False
    return True


#: While :func:`attribute_differences` compares two models: each module of the original (by
#: id) -> the module at its name in the fresh copy.
_COUNTERPARTS: dict[int, nn.Module] = {}


def _same_owner(a: Any, b: Any) -> bool:
    """Two objects a function is bound to or closes over: the module at one name in each
    model, or modules of one class with equal state_dicts (an unregistered layer built
    under another seed is not), or anything else of one type."""
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        return type(a) is type(b) and (_COUNTERPARTS.get(id(a)) is b or _same_state(a, b))
    return type(a) is type(b) and not isinstance(a, nn.Module) and not isinstance(b, nn.Module)


def _show(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if is_lazy(value):
            return "an uninitialized lazy tensor"
        if value.numel() == 1:
            return f"tensor({value.detach().reshape(()).item():.3g})"
        dtype = str(value.dtype).removeprefix("torch.")
        return f"a {dtype}[{', '.join(map(str, value.shape))}] tensor"
    if isinstance(value, nn.Module):
        return f"a {type(value).__name__}"
    text = " ".join(repr(value).split())  # one line: a bound method's repr holds its module's
    return text if len(text) <= 60 else text[:57] + "..."


def _difference(name: str, original: Any, fresh: Any) -> str:
    if (
        isinstance(original, torch.Tensor)
        and isinstance(fresh, torch.Tensor)
        and original.numel() > 1
        and not (is_lazy(original) or is_lazy(fresh))
    ):
        lines = mismatch(fresh, original)
        return f"{name} ({_show(original)}), the fresh copy against the original: {'; '.join(lines[:2])}"
    return f"{name}: {_show(original)} on the original, {_show(fresh)} on the fresh copy"


def attribute_differences(original: nn.Module, fresh: nn.Module) -> list[str]:
    """What differs between two instances of one model outside their state_dicts: each
    submodule's plain attributes, its ``persistent=False`` buffers, and submodules only
    one of them has. One line each, named from the root (``encoder.calls``)."""
    fresh_modules = dict(fresh.named_modules())
    _COUNTERPARTS.update(
        (id(module), fresh_modules[name]) for name, module in original.named_modules() if name in fresh_modules
    )
    try:
        return _attribute_differences(original, fresh, fresh_modules)
    finally:
        _COUNTERPARTS.clear()


def _attribute_differences(original: nn.Module, fresh: nn.Module, fresh_modules: dict[str, nn.Module]) -> list[str]:
    found: list[str] = []
    registered = {id(m) for m in original.modules()}
    for module_name, module in original.named_modules():
        prefix = f"{module_name}." if module_name else ""
        other = fresh_modules.get(module_name)
        if other is None:
            found.append(f"{module_name}: {_show(module)} on the original, missing on the fresh copy")
            continue
        mine, theirs = _own_attributes(module), _own_attributes(other)
        for name in dict.fromkeys([*mine, *theirs]):
            if name not in theirs:
                found.append(f"{prefix}{name}: {_show(mine[name])} on the original, missing on the fresh copy")
            elif name not in mine:
                found.append(f"{prefix}{name}: missing on the original, {_show(theirs[name])} on the fresh copy")
            elif not _same(mine[name], theirs[name]):
                found.append(_difference(f"{prefix}{name}", mine[name], theirs[name]))
        for name in sorted(module._non_persistent_buffers_set):
            a, b = module._buffers.get(name), other._buffers.get(name)
            if not _same(a, b):
                found.append(_difference(f"{prefix}{name} (a persistent=False buffer)", a, b))
        for name in mine.keys() & theirs.keys():
            line = _unregistered(f"{prefix}{name}", mine[name], theirs[name], registered)
            if line:
                found.append(line)
    original_modules = dict(original.named_modules())
    for module_name, module in fresh_modules.items():
        if module_name not in original_modules:
            found.append(f"{module_name}: missing on the original, {_show(module)} on the fresh copy")
    return found


def _unregistered(name: str, mine: Any, theirs: Any, registered: set[int]) -> str | None:
    """A line for modules kept in a plain list, tuple or dict (``self.blocks = [nn.Linear(...)]``):
    no submodules, so their parameters are outside the state_dict; when theirs differ
    between the original and the fresh copy."""
    items, others = _flattened(mine), _flattened(theirs)
    modules = [(a, b) for a, b in zip(items, others) if isinstance(a, nn.Module) and id(a) not in registered]
    if not modules or all(not isinstance(b, nn.Module) or _same_state(a, b) for a, b in modules):
        return None
    kinds = ", ".join(dict.fromkeys(type(a).__name__ for a, _ in modules))
    return (
        f"{name}: {len(modules)} module{'s' if len(modules) != 1 else ''} ({kinds}) in a plain {type(mine).__name__}, "
        "not registered as submodules: their parameters are outside the state_dict and differ. Hold them in "
        "nn.ModuleList or nn.ModuleDict."
    )


def _flattened(value: Any, depth: int = 3) -> list[Any]:
    """The items of a (nested) list, tuple or dict, a few levels down; [] for anything else."""
    if depth == 0 or not isinstance(value, (list, tuple, dict)):
        return []
    found = []
    for item in value.values() if isinstance(value, dict) else value:
        found += _flattened(item, depth - 1) if isinstance(item, (list, tuple, dict)) else [item]
    return found


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    mine, theirs = a.state_dict(), b.state_dict()
    return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)


def _alias_groups(model: nn.Module) -> set[frozenset[str]]:
    """Names that refer to one Parameter (or buffer) object, for each with several names."""
    names: dict[int, set[str]] = {}
    for name, tensor in [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]:
        names.setdefault(id(tensor), set()).add(name)
    return {frozenset(group) for group in names.values() if len(group) > 1}


def _tie_differences(original: nn.Module, fresh: nn.Module) -> list[str]:
    mine, theirs = _alias_groups(original), _alias_groups(fresh)
    parameters = {name for name, _ in original.named_parameters(remove_duplicate=False)}

    def kind(group: frozenset[str]) -> str:
        return "Parameter" if group <= parameters else "tensor"

    found = [
        f"{' and '.join(sorted(group))} are one {kind(group)} on the original, separate ones on the fresh copy"
        for group in sorted(mine - theirs, key=sorted)
    ]
    found += [
        f"{' and '.join(sorted(group))} are separate {kind(group)}s on the original, one on the fresh copy"
        for group in sorted(theirs - mine, key=sorted)
    ]
    return found


def _load_problems(state: dict[str, Any], fresh: nn.Module) -> list[str]:
    """Why ``state`` would not load strictly into ``fresh``, in plain words."""
    expected = fresh.state_dict()
    unexpected = [key for key in state if key not in expected]
    missing = [key for key in expected if key not in state]
    found = []
    if unexpected:
        found.append(
            f"unexpected keys (in the original's state_dict, not in a fresh copy's): {', '.join(unexpected)}"
        )
    if missing:
        found.append(f"missing keys (in a fresh copy's state_dict, not in the original's): {', '.join(missing)}")
    for key, value in state.items():
        target = expected.get(key)
        if (
            isinstance(value, torch.Tensor)
            and isinstance(target, torch.Tensor)
            and not is_lazy(target)
            and value.shape != target.shape
        ):
            found.append(
                f"size mismatch for {key}: [{', '.join(map(str, value.shape))}] in the original, "
                f"[{', '.join(map(str, target.shape))}] in a fresh copy"
            )
    return found


def _output_differences(fresh_output: Any, original_output: Any) -> list[str]:
    original_leaves = list(leaves(original_output))
    fresh_leaves = dict(leaves(fresh_output))
    if [n for n, _ in original_leaves] != list(fresh_leaves):
        return [
            f"the outputs have different structure: {[n for n, _ in original_leaves]} on the original, "
            f"{list(fresh_leaves)} on the fresh copy"
        ]
    details: list[str] = []
    for name, value in original_leaves:
        lines = mismatch(fresh_leaves[name], value)
        if len(lines) == 1 and not isinstance(value, torch.Tensor):
            details.append(f"{name}: {lines[0]} (fresh copy, then original)")
        elif lines:
            details.append(f"{name}:")
            details.extend(f"  {line}" for line in lines)
    return details


class StateRoundtrip(Invariant):
    name = "state_roundtrip"
    summary = (
        "a fresh instance loaded with the state_dict of a model that has run gives bitwise the "
        "same outputs and path (no state outside the state_dict, no layers created in forward)"
    )

    def _warmed(self, context: Context, runs: list[Example], *, keep: bool) -> nn.Module:
        """A fresh model that has run ``runs`` (the earlier examples). The model as those runs
        left it is kept, and later examples start from a deep copy of it, which carries every
        attribute the runs set: the same model, without running them again. A model whose
        copies are not its own (dyncheck.copies), or that cannot be copied once it has run (a
        tensor attribute inside an autograd graph), runs them on every example. ``keep``: these
        are all the earlier examples (not a replay of one of them), worth keeping."""
        key = tuple(map(id, runs))
        kept = context.memo.get("warmed")
        if runs and kept is not None and kept[0] == key:
            return clone(kept[1])
        original = context.fresh_model()
        for seen in runs:
            context.run(original, seen, record=False, grad=False)
        if keep and runs and verdict(context.target).safe and context.memo.get("copyable", True):
            try:
                context.memo["warmed"] = (key, clone(original))
            except Exception:  # deepcopy refuses a non-leaf tensor attribute
                context.memo["copyable"] = False
        return original

    def check(self, context: Context, example: Example) -> None:
        earlier: list[tuple[tuple[str, ...], Example]] = context.memo.setdefault(self.name, [])
        runs = [seen for _, seen in earlier if seen is not example]
        # An example that failed is run again (Hypothesis replays and shrinks it) after the
        # same earlier examples, not after those the run has gathered since: state outside
        # the state_dict that depends on how many calls came before (a path sampled every
        # other call) fails again, and the failure is not taken for a flaky one.
        failed = context.memo.setdefault("state_roundtrip failed", {})
        key = _example_key(example)
        if key is not None and key in failed:
            runs = failed[key]
        original = self._warmed(context, runs, keep=len(runs) == len(earlier))
        # The calls before the compared one under another seed: a random value drawn on one
        # call and kept outside the state_dict for the next (a supernet's path sampled every
        # other call) then differs from the one the fresh copy draws under the example's.
        reseeded = Example(example.args, example.seed + 1, example.dims)
        context.run(original, reseeded, record=False, grad=False)
        warm = context.run(original, reseeded, record=False, grad=False)
        try:
            state = original.state_dict()
        except Exception as exc:
            raise ModelError("state_dict", exc) from exc

        seed: int | None = _OTHER_SEED
        fresh = context.build_model(seed)
        problems = _load_problems(state, fresh)
        if problems or _tie_differences(original, fresh):
            # What the model's parameters are depends on the seed it is built under (a
            # randomly wired net): a checkpoint is loaded into the same architecture.
            seed = None
            fresh = context.build_model()
            problems = _load_problems(state, fresh)
        if problems:
            raise InvariantViolation(
                "The original's state_dict does not load into a fresh copy: forward created (or "
                "resized) parameters or buffers that a freshly built model does not have. Create "
                "every layer in __init__ (a Lazy* module, such as nn.LazyLinear, loads into a fresh "
                "instance).",
                problems,
                path=warm.path,
            )
        try:
            fresh.load_state_dict(state)
        except Exception as exc:  # a load hook of the model's own
            raise ModelError("load_state_dict", exc) from exc
        ties = _tie_differences(original, fresh)
        if ties:
            raise InvariantViolation(
                "A fresh copy loaded from the state_dict shares parameters differently from the "
                "original: forward tied or untied them, and a state_dict does not carry ties. Tie "
                "in __init__.",
                ties,
                path=warm.path,
            )
        # Before the compared calls move the state on: what differs at the moment of loading.
        attributes = attribute_differences(original, fresh)

        loaded = {
            key: value.clone() if isinstance(value, torch.Tensor) and not is_lazy(value) else value
            for key, value in state.items()
        }
        expected = context.run(original, example, grad=False)
        actual = context.run(fresh, example, record=False, grad=False)
        if len(earlier) < _FIRST or (
            len(earlier) < _EARLIER and expected.path not in {path for path, _ in earlier}
        ):
            earlier.append((expected.path, example))
        mode = ""

        def agree(actual: Any, expected: Any) -> bool:
            """The same outputs, bitwise, and the same path; or another path only through
            modules with no weights or buffers (see
            :func:`~dyncheck.invariants.determinism.stateless_detour`), noted."""
            if _output_differences(actual.output, expected.output):
                return False
            if actual.path == expected.path:
                return True
            if not stateless_detour(fresh, expected.path, actual.path):
                return False
            note_path_only(context, expected, actual, "a fresh copy loaded from the state_dict and the original",
                           ("original", "fresh copy"))
            return True

        if agree(actual, expected):
            if missing := missing_output(expected.output):
                return context.nothing_to_compare(missing)
            if not (original.training and reads_training(original)):
                return context.compared()
            # The model's own code reads self.training: state that only eval mode reads (a
            # running statistic kept as a persistent=False buffer) differs only there.
            expected = context.run(original.eval(), example, record=False, grad=False)
            actual = context.run(fresh.eval(), example, record=False, grad=False)
            if agree(actual, expected):
                return context.compared()
            mode = " in eval mode"
        # Two loaded copies in the same state that disagree with each other: the model is not
        # a function of its state, input and seed (an unseeded generator, a global). That is
        # determinism's finding; no state_dict could carry it.
        control = context.build_model(seed)
        control.load_state_dict(loaded)
        again = context.run(control, example, record=False, grad=False)
        if mode:
            again = context.run(control.eval(), example, record=False, grad=False)
        if again.path != actual.path or _output_differences(again.output, actual.output):
            # in eval mode, the train-mode calls were compared
            return context.compared() if mode else context.nothing_to_compare(_NOT_A_FUNCTION)
        if key is not None:
            failed[key] = runs
        describe = context.describe_path
        if attributes:
            where = ["attributes that differ between the original and the fresh copy (outside the state_dict):"]
            where += [f"  {line}" for line in attributes]
        else:
            where = [
                "no plain attribute or persistent=False buffer differs between the original and the "
                "fresh copy: the state is kept deeper (inside an object the model holds)"
            ]
        if actual.path != expected.path:
            headline = f"A fresh copy loaded from the state_dict takes a different path{mode}: {_OUTSIDE}"
            details = [f"original:    {describe(expected.path)}", f"fresh copy:  {describe(actual.path)}"]
        else:
            headline = f"A fresh copy loaded from the state_dict gives different outputs{mode}: {_OUTSIDE}"
            details = _output_differences(actual.output, expected.output)
        if mode:
            details.append("(in train mode the two agreed: the state is one that only eval mode reads)")
        # One raise for both: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, [*details, *where], path=expected.path)


def _example_key(example: Example) -> Any:
    """``example``'s seed and values as plain data (tensors as their shape, dtype and
    bytes), equal for equal examples; None for an input of another kind."""

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return ("tensor", tuple(value.shape), str(value.dtype), tensor_bytes(value))
        if isinstance(value, dict):
            return ("dict", tuple((k, plain(v)) for k, v in value.items()))
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(plain(v) for v in value))
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(type(value).__name__)

    try:
        return example.seed, plain(dict(example.args))
    except (TypeError, RuntimeError):
        return None
