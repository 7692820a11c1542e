"""Observing one forward (and optional backward) pass of a model.

:func:`trace` records which submodules ran, in call order (forward pre-hooks), and which
parameters the loss reaches through the autograd graph. ``Trace.path`` is the hashable
key of the path the call took; invariants and the path census group examples by it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import types
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.errors import InvalidArgument
from dyncheck.paths import Layout, describe

__all__ = [
    "Trace", "default_loss", "dense", "densify_grads", "flat_items", "floating_leaves", "leaves",
    "missing_output", "project", "projection", "trace",
]


@dataclass(frozen=True)
class Trace:
    """What one call of a model did."""

    output: Any
    #: names of the submodules that ran, in the order they were called (repeats kept)
    modules: tuple[str, ...]
    #: the loss the backward pass started from (None when there was nothing to differentiate)
    loss: torch.Tensor | None = None
    #: the model that ran (:attr:`reached` names its parameters)
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    _reached: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def reached(self) -> frozenset[str]:
        """Names of the parameters the loss reaches through autograd (every alias of a shared
        one). Walking the graph costs, and most calls never ask: it is walked on first use
        (its structure outlives the backward pass)."""
        if self._reached is None:
            found = reached_parameters(self.loss, self.model) if self.model is not None else frozenset()
            object.__setattr__(self, "_reached", found)
        return self._reached  # type: ignore[return-value]

    @property
    def path(self) -> tuple[str, ...]:
        """The hashable key of the path: the ordered modules that ran."""
        return self.modules

    def describe_path(self, model: nn.Module | None = None) -> str:
        return describe_path(self.modules, model)


def dense(grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Gradients as dense tensors: ``nn.Embedding(sparse=True)`` gives its weight a sparse
    one, which most tensor operations (comparisons, ``isfinite``) do not take."""
    return [g.to_dense() if g is not None and g.is_sparse else g for g in grads]


@contextlib.contextmanager
def grads_put_back(parameters: Iterable[torch.Tensor]) -> Iterator[None]:
    """Inside the block each of ``parameters`` starts with no ``.grad``; after it, each gets
    back the ``.grad`` it had. For a ``loss.backward()`` whose gradients are read and left:
    ``autograd.grad()`` computes them without touching ``.grad``, but a reentrant checkpoint
    (``checkpoint(block, h, use_reentrant=True)``, Hugging Face's gradient checkpointing)
    refuses it."""
    saved = [(parameter, parameter.grad) for parameter in parameters]
    for parameter, _ in saved:
        parameter.grad = None
    try:
        yield
    finally:
        for parameter, grad in saved:
            parameter.grad = grad


def densify_grads(model: nn.Module) -> None:
    """Each parameter's sparse ``.grad`` made dense, in place on ``model`` (dyncheck's own
    copy): the checks read and compare gradients, and their optimizers step on them."""
    for parameter in model.parameters():
        if parameter.grad is not None and parameter.grad.is_sparse:
            parameter.grad = parameter.grad.to_dense()


def describe_path(modules: tuple[str, ...], model: nn.Module | None = None) -> str:
    """``fc1 → fc2 → fc3``: the leaf modules in call order, runs of one module folded
    (``hidden_layer ×3``); on a large model, shortened by its structure (``all 39 modules
    (embed → layers.0-3 → norm → head)``, see :mod:`dyncheck.paths`). Containers are left
    out when ``model`` says which they are."""
    return describe(modules, Layout.of(model))


def leaves(value: Any, prefix: str = "output") -> Iterator[tuple[str, Any]]:
    """Every leaf of a (nested) model output with its name (``output[0]['logits']``):
    tensors, and plain values such as numbers and strings. Tuples, lists, dicts,
    dataclasses and PackedSequence are walked; so are other objects that compare by
    identity, by their attributes (a cache's ``layers[0].keys``): two calls can never
    give the same such object, only the same contents.

    A mapping that is also a dataclass (Hugging Face's ``ModelOutput``: an OrderedDict
    whose ``None`` fields are left out of the mapping) is walked as a mapping, with its
    fields named as attributes: ``output.logits``, ``output.past_key_values[0][1]``."""
    yield from _leaves(value, prefix, ())


#: How deep in an output objects are still walked by their attributes (a cache's tensors
#: are five levels down: output.cache.self_attention_cache.layers[0].keys).
_OBJECT_DEPTH = 8


def _leaves(value: Any, prefix: str, path: tuple[int, ...]) -> Iterator[tuple[str, Any]]:
    if id(value) in path:  # an object that refers back to one holding it
        return
    inner = (*path, id(value))
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, nn.utils.rnn.PackedSequence):
        yield f"{prefix}.data", value.data
    elif isinstance(value, Mapping):
        fields = dataclasses.is_dataclass(value) and not isinstance(value, type)
        for key, item in value.items():
            named = fields and isinstance(key, str) and key.isidentifier()
            yield from _leaves(item, f"{prefix}.{key}" if named else f"{prefix}[{key!r}]", inner)
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]", inner)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _leaves(getattr(value, f.name), f"{prefix}.{f.name}", inner)
    elif isinstance(value, functools.partial) and len(path) < _OBJECT_DEPTH:
        # a function with its arguments bound, made on each call (a flow's transform holds
        # partial(self.meta, c)): the same function, and arguments of the same contents
        yield from _leaves(value.func, f"{prefix}.func", inner)
        yield from _leaves(value.args, f"{prefix}.args", inner)
        yield from _leaves(value.keywords, f"{prefix}.keywords", inner)
    elif _by_identity(value) and len(path) < _OBJECT_DEPTH:
        for attribute, item in vars(value).items():
            yield from _leaves(item, f"{prefix}.{attribute}", inner)
    else:
        yield prefix, value


#: ``__eq__`` methods that compare by identity: object's, and torch.distributions'
#: ``Transform``'s (``self is other``), which a normalizing flow's composed transform keeps.
_IDENTITY_EQ = (object.__eq__, torch.distributions.transforms.Transform.__eq__)


def _by_identity(value: Any) -> bool:
    """An object with attributes that equals only itself (``object.__eq__``), a callable one
    too (a flow's transform, made on each call): not a module, class, function or method,
    which are the same object in two calls."""
    if isinstance(value, (nn.Module, type, types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                          types.ModuleType)):
        return False
    return type(value).__eq__ in _IDENTITY_EQ and isinstance(getattr(value, "__dict__", None), dict)


#: What a check's calls report their output to (:func:`observe_output`): the running
#: check's context, for calls made outside it (the agreement checks' runs).
_OBSERVER: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar(
    "dyncheck_output_observer", default=None
)


@contextlib.contextmanager
def observing(observer: Callable[..., None]) -> Iterator[None]:
    """Calls :func:`observe_output` reports go to ``observer`` inside the block."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def observe_output(output: Any, model: nn.Module, path: tuple[str, ...], rerun: Callable[[nn.Module], Any]) -> None:
    """Hand one call's output, model and path to the running check (see :func:`observing`),
    with ``rerun``, which calls another model as that call was made."""
    observer = _OBSERVER.get()
    if observer is not None:
        observer(output, model, path, rerun)


def deferred_modules(output: Any, model: nn.Module, ran: Iterable[str]) -> list[tuple[str, str, int]]:
    """The submodules of ``model`` with parameters that ``output`` holds (as an attribute of
    an object it returns, a bound method or a ``functools.partial`` of one) and that the call
    ran none of the parameters of: (where the output holds it, its name, its parameter count).
    A lazy distribution or a flow's transform that runs them when it is used (``log_prob``).
    Only candidates: a module used without being called (``F.linear(h, self.proj.weight)``,
    ``self.enc.forward(x)``) is in it too; :func:`unused_by_output` tells them apart."""
    names = {id(module): name for name, module in model.named_modules() if name}
    ran_ids = {id(model.get_submodule(name)) for name in set(ran) if name}
    found: list[tuple[str, str, int]] = []
    seen: set[int] = set()
    for where, leaf in leaves(output):
        module = leaf if isinstance(leaf, nn.Module) else getattr(leaf, "__self__", None)
        if not isinstance(module, nn.Module) or id(module) not in names or id(module) in seen:
            continue
        seen.add(id(module))
        owners = [m for m in module.modules() if next(m.parameters(recurse=False), None) is not None]
        if owners and not any(id(m) in ran_ids for m in owners):
            count = sum(p.numel() for p in module.parameters() if not is_lazy(p))
            found.append((where, names[id(module)], count))
    return found


def unused_by_output(model: nn.Module, name: str, rerun: Callable[[nn.Module], Any]) -> bool:
    """Whether the floating outputs of ``rerun`` stay the same with the floating parameters
    of the submodule ``name`` changed (on copies of ``model``): the call did not use them,
    and what holds them uses them later."""
    from dyncheck.cloning import clone

    changed = clone(model)
    with torch.no_grad():
        for parameter in changed.get_submodule(name).parameters():
            if parameter.is_floating_point() and not is_lazy(parameter):
                change_in_place(parameter)
        return same_floats(rerun(clone(model)), rerun(changed))


def change_in_place(parameter: torch.Tensor) -> None:
    """``parameter`` changed in place, to tell whether an output moves with it: scaled and
    shifted, or for an integer table (a permutation, indices) each entry moved by one, for a
    bool one flipped."""
    if parameter.dtype == torch.bool:
        parameter.logical_not_()
    elif parameter.is_floating_point() or parameter.is_complex():
        parameter.mul_(2.0).add_(0.5)
    else:
        parameter.add_(1)


def same_floats(output: Any, other: Any) -> bool:
    """Whether two outputs hold floating tensors of the same shapes and values, in order."""
    mine = [t for _, t in floating_leaves(output) if t.is_floating_point()]
    theirs = [t for _, t in floating_leaves(other) if t.is_floating_point()]
    return [t.shape for t in mine] == [t.shape for t in theirs] and all(
        torch.equal(a, b) for a, b in zip(mine, theirs)
    )


def inputs_tuple(value: Any) -> bool:
    """Whether ``value`` is a tuple of inputs or outputs: a plain tuple or a NamedTuple
    (sb3-contrib's ``RNNStates``), not another tuple subclass (``torch.Size``)."""
    return type(value) is tuple or (isinstance(value, tuple) and hasattr(value, "_fields"))


def tuple_like(value: tuple, items: Any) -> tuple:
    """``items`` as a tuple of ``value``'s kind: a NamedTuple of its type, else a plain tuple."""
    return type(value)(*items) if hasattr(value, "_fields") else tuple(items)


def unpacked(value: Any) -> Any:
    """``value`` with every ``PackedSequence`` in it (walked through tuples, lists and
    dicts) replaced by the list of its sequences in the batch's order, each ``[length,
    ...]``, as ``unpack_sequence`` gives them: a packed output compared sample by sample.
    ``value`` itself when it holds none."""
    if isinstance(value, nn.utils.rnn.PackedSequence):
        return nn.utils.rnn.unpack_sequence(value)
    if isinstance(value, (list, tuple)):
        items = [unpacked(item) for item in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        if isinstance(value, list):
            return items
        return tuple_like(value, items)
    if type(value) is dict:
        items = {key: unpacked(item) for key, item in value.items()}
        return value if all(items[key] is value[key] for key in value) else items
    return value


def flat_items(value: Any) -> Iterator[Any]:
    """Every item inside nested lists, tuples and dicts (a call's ``(args, kwargs)``), in
    order; anything else is one item."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from flat_items(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from flat_items(item)
    else:
        yield value


def floating_leaves(value: Any, prefix: str = "output") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a (nested) model output, with its name (see :func:`leaves`);
    non-floating tensors are included (callers filter by dtype where it matters)."""
    for name, leaf in leaves(value, prefix):
        if isinstance(leaf, torch.Tensor):
            yield name, leaf


def missing_output(output: Any) -> str | None:
    """Why ``output`` gives a check nothing to look at (it is None, or holds nothing but
    None and empty containers), else None. The same words for every check, so a forward
    that forgot its ``return`` reads the same way in each."""
    if any(leaf is not None for _, leaf in leaves(output)):
        return None
    shown = repr(output)
    return f"forward returned {shown if len(shown) <= 40 else type(output).__name__}: no output to check"


def projection(shape: Sequence[int], *, seed: int, key: str = "") -> torch.Tensor:
    """A fixed random tensor of ``shape`` (standard normal entries), drawn on the CPU in
    float64 by a private generator seeded from ``seed`` and ``key``: the same numbers on
    every call, whatever the global RNG state, the device or the dtype the caller casts
    them to (float32 gets float64's values, rounded). ``key`` (an output's name) gives
    each tensor its own weights, so they do not shift when another tensor is missing."""
    mixed = (int(seed) * 1_000_003 + zlib.crc32(key.encode())) % 2**63
    generator = torch.Generator().manual_seed(mixed)
    # Out of sight of the TorchFunctionModes dyncheck runs models under (which record the
    # model's own random draws and tensors): these weights are dyncheck's, not the model's.
    with torch._C.DisableTorchFunction():
        return torch.randn(tuple(shape), generator=generator, dtype=torch.float64)


@functools.lru_cache(maxsize=4)
def _shared_projection(shape: tuple[int, ...], seed: int, key: str) -> torch.Tensor:
    """:func:`projection`, kept for the next calls: a check calls the model many times on
    one example (perturbed re-runs), each time with the same weights. Never written to."""
    return projection(shape, seed=seed, key=key)


def project(tensor: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(weights * tensor).sum()`` with ``weights`` (float64, on the CPU) cast to the
    tensor's dtype and device; a complex tensor is projected as its real and imaginary
    parts (``weights`` then has a trailing axis of 2)."""
    values = torch.view_as_real(tensor.resolve_conj()) if tensor.is_complex() else tensor
    return (values * weights.to(device=values.device, dtype=values.dtype)).sum()


def default_loss(output: Any, *, seed: int = 0) -> torch.Tensor | None:
    """A fixed random projection of every floating output: each output tensor times
    weights of its shape drawn from ``seed`` and its name (:func:`projection`), summed.
    None when the output has no floating tensor.

    Not the plain sum: a model that ends in a LayerNorm (whose output sums to the sum of
    its bias whatever the input) or a softmax (which sums to 1) makes the sum a constant,
    and every parameter before it would get a gradient of rounding noise. Under random
    weights every output element matters. The weights depend only on the seed, the
    output's name and its shape, so two runs of one example (float32 and float64, two
    devices, eager and compiled) differentiate the same loss."""
    total = None
    for name, tensor in floating_leaves(output):
        if tensor.is_floating_point() or tensor.is_complex():
            shape = (*tensor.shape, 2) if tensor.is_complex() else tensor.shape
            part = project(tensor, _shared_projection(tuple(shape), int(seed), name))
            total = part if total is None else total + part
    return total


def loss_of(spec: Any, output: Any, seed: int) -> Any:
    """The spec's loss of ``output`` when it gives one (used as given), else
    :func:`default_loss` with the example's ``seed``."""
    if spec.loss is not None:
        return spec.loss(output)
    return default_loss(output, seed=seed)


def check_loss(value: Any) -> torch.Tensor | None:
    """``value`` if it is a usable loss (a scalar tensor or None), else a clear TypeError."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise InvalidArgument(f"the loss must return a tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise InvalidArgument(
            f"the loss must return a scalar tensor, got shape {list(value.shape)}; "
            "reduce it, e.g. loss=lambda out: out.sum()"
        )
    return value


@contextlib.contextmanager
def submodule_hooks(
    model: nn.Module, hook_for: Callable[[str], Callable[..., Any]], *, pre: bool = False, with_kwargs: bool = False
) -> Iterator[None]:
    """``hook_for(name)`` as a forward hook (with ``pre``, a forward pre-hook) of every
    submodule of ``model`` (not the model itself) inside the block, removed on exit."""
    handles = []
    for name, module in model.named_modules():
        if name:
            hook = hook_for(name)
            handles.append(
                module.register_forward_pre_hook(hook, with_kwargs=with_kwargs) if pre
                else module.register_forward_hook(hook, with_kwargs=with_kwargs)
            )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def record_modules(model: nn.Module) -> Iterator[list[str]]:
    """Names of the submodules of ``model`` called inside the block, in call order."""
    calls: list[str] = []

    def hook_for(name: str) -> Callable[..., None]:
        return lambda _module, _args: calls.append(name)

    with submodule_hooks(model, hook_for, pre=True):
        yield calls


def parameter_names(model: nn.Module) -> dict[int, tuple[str, ...]]:
    """id(parameter) -> every name it has in ``model`` (a shared one has several)."""
    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    return {key: tuple(value) for key, value in names.items()}


def reached_parameters(loss: torch.Tensor | None, model: nn.Module) -> frozenset[str]:
    """Names of the parameters of ``model`` that ``loss`` depends on through autograd."""
    if loss is None or loss.grad_fn is None:
        if loss is not None and loss.requires_grad:  # the loss is itself a parameter
            return frozenset(parameter_names(model).get(id(loss), ()))
        return frozenset()
    by_id = parameter_names(model)
    reached: set[str] = set()
    seen: set[int] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            reached.update(by_id.get(id(variable), ()))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return frozenset(reached)


def trace(
    model: nn.Module,
    *args: Any,
    loss: Callable[[Any], torch.Tensor] | None = None,
    backward: bool = False,
    **kwargs: Any,
) -> Trace:
    """Call ``model(*args, **kwargs)`` once and record what it did.

    With ``backward=True`` the loss (``loss(output)``, default: :func:`default_loss`, a
    fixed random projection of every floating output, drawn from seed 0) is
    back-propagated, leaving gradients in ``model``'s parameters.

    >>> t = trace(model, x, control)            # doctest: +SKIP
    >>> t.path, t.describe_path(model), sorted(t.reached)   # doctest: +SKIP
    """
    with record_modules(model) as calls:
        output = model(*args, **kwargs)
    value = check_loss((loss or default_loss)(output))
    if backward and value is not None and value.requires_grad:
        value.backward()
    return Trace(output=output, modules=tuple(calls), loss=value, model=model)
