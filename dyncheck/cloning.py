"""``copy.deepcopy`` of a model, without its cost per module.

Checks copy the model as built for nearly every example. ``copy.deepcopy`` takes each
``nn.Module`` through ``__reduce_ex__`` and copies its two dozen bookkeeping attributes (hook
dictionaries, most of them empty) one by one through the generic protocol: for a small
transformer that is about 10 ms per copy, more than the check's own forward and backward
passes. :func:`clone` makes the same copy the same way (``cls.__new__``, the state
``__getstate__`` gives, ``__setstate__``, one memo for the whole model, so shared parameters
and modules stay shared), taking the common cases directly: a module whose class is copied the
default way, a dict of parameters or submodules, an empty hook dictionary, a string, an
``nn.Parameter`` (made as its ``__deepcopy__`` makes it). Everything else (a tensor, a
parameter subclass, a config object, a closure, a module class with its own
``__deepcopy__``/``__reduce_ex__``) goes to ``copy.deepcopy`` with the shared memo, so the
result is the one ``copy.deepcopy`` gives. One thing ``copy.deepcopy`` refuses is copied: a
tensor computed from parameters and kept on a module (the legacy ``weight_norm``'s
``weight``, recomputed before every forward), detached.
"""

from __future__ import annotations

import copy
import copyreg
import types
from collections import OrderedDict
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer

__all__ = ["clone", "uncopyable"]

M = TypeVar("M")

#: Values ``copy.deepcopy`` returns as they are (its atomic types), met on every module.
_ATOMIC = frozenset({type(None), int, float, bool, complex, str, bytes, type, range})

#: Whether a module class is copied the default way (decided once per class).
_PLAIN: dict[type, bool] = {}


def clone(model: M) -> M:
    """``copy.deepcopy(model)``, faster for ``nn.Module`` trees (see the module docstring)."""
    if not isinstance(model, nn.Module):
        return copy.deepcopy(model)
    return _module(model, {})


def _plain(cls: type) -> bool:
    """True when ``copy.deepcopy`` copies ``cls`` the default way: ``cls.__new__(cls)``, then
    ``__setstate__`` with a deep copy of what ``__getstate__`` returns (whatever those two
    methods are), with nothing the class or copyreg adds."""
    known = _PLAIN.get(cls)
    if known is None:
        known = _PLAIN[cls] = (
            getattr(cls, "__deepcopy__", None) is None
            and cls.__reduce_ex__ is object.__reduce_ex__
            and cls.__reduce__ is object.__reduce__
            and not hasattr(cls, "__getnewargs_ex__")
            and not hasattr(cls, "__getnewargs__")
            and not issubclass(cls, (list, dict))
            and cls not in copyreg.dispatch_table
        )
    return known


def _module(module: nn.Module, memo: dict[int, Any]) -> Any:
    found = memo.get(id(module))
    if found is not None:
        return found
    cls = type(module)
    state = module.__getstate__() if _plain(cls) else None
    if type(state) is not dict:
        return copy.deepcopy(module, memo)
    new = cls.__new__(cls)
    memo[id(module)] = new
    # Everything copied below is reachable from ``state`` (which may be a new dict, with new
    # values, that ``__getstate__`` made): keeping it alive keeps their ids from being reused
    # during the copy, as ``copy.deepcopy`` does for each object it copies, with one entry
    # per module instead of one per dict. The module itself is held by its parent's state,
    # or by the caller.
    _keep_alive(state, memo)
    # The atomic values (flags, sizes, names), about half of a module's, and the empty hook
    # dictionaries, most of the rest, without a call each.
    copied = {}
    for key, value in state.items():
        kind = type(value)
        if kind in _ATOMIC:
            copied[key] = value
        elif (kind is OrderedDict or kind is dict) and not value and id(value) not in memo:
            copied[key] = memo[id(value)] = kind()
        else:
            copied[key] = _value(value, memo)
    new.__setstate__(copied)
    return new


def _value(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    if kind is dict or kind is OrderedDict:
        new = kind()
        memo[id(value)] = new
        for key, item in value.items():
            new[key if type(key) in _ATOMIC else copy.deepcopy(key, memo)] = _value(item, memo)
        return new
    if kind is set and all(type(item) in _ATOMIC for item in value):
        new = set(value)
        memo[id(value)] = new
        return new
    if kind is nn.Parameter:
        # What Parameter.__deepcopy__ makes, without copy.deepcopy's dispatch around it.
        new = nn.Parameter(value.data.clone(memory_format=torch.preserve_format), value.requires_grad)
        memo[id(value)] = new
        return new
    if kind is torch.Tensor:
        new = _buffer(value, memo)
        if new is not None:
            return new
        if value.grad_fn is not None:
            # A tensor computed from parameters and kept on the module: the legacy
            # torch.nn.utils.weight_norm's ``weight``, recomputed from ``weight_g`` and
            # ``weight_v`` before every forward. copy.deepcopy refuses a tensor that is not
            # a graph leaf; the copy holds its values, detached.
            new = value.detach().clone(memory_format=torch.preserve_format).requires_grad_(value.requires_grad)
            memo[id(value)] = new
            return new
    if kind is UninitializedBuffer:
        # A lazy layer's buffer before its first call (LazyBatchNorm1d's running_mean), which
        # copy.deepcopy refuses: a new one, as uninitialised.
        new = UninitializedBuffer(
            requires_grad=value.requires_grad, device=value.device, dtype=value.dtype,
            persistent=getattr(value, "persistent", True),
        )
        memo[id(value)] = new
        return new
    if (kind is staticmethod or kind is classmethod) and isinstance(value.__func__, types.FunctionType):
        # A function kept on the instance wrapped (rotary-embedding-torch's
        # ``self.apply_rotary_emb = staticmethod(apply_rotary_emb)``), which copy.deepcopy
        # refuses to pickle: shared, as the function it wraps would be.
        return value
    if kind is tuple and all(type(item) in _ATOMIC for item in value):
        return value  # copy.deepcopy gives the tuple itself (kernel sizes, strides)
    if isinstance(value, nn.Module):
        return _module(value, memo)
    return copy.deepcopy(value, memo)


def _buffer(value: torch.Tensor, memo: dict[int, Any]) -> torch.Tensor | None:
    """What ``Tensor.__deepcopy__`` makes of a plain tensor that alone holds all of its
    storage (a buffer: BatchNorm's running statistics), without the dispatch around it: a
    copy of its storage, registered in the memo under the storage as ``__deepcopy__``
    registers it, so a tensor met later that shares it shares the copy. None for anything
    else (a view, a tensor with attributes, gradients, another layout), which
    ``copy.deepcopy`` takes."""
    if (
        value.requires_grad
        or value.grad is not None
        or value.layout != torch.strided
        or value.is_quantized
        or value.is_conj()
        or value.is_neg()
        or value.device.type not in ("cpu", "cuda")
        or value._base is not None
        or value.__dict__
        or value.storage_offset() != 0
        or not value.is_contiguous()
    ):
        return None
    storage = value.untyped_storage()
    # Where UntypedStorage.__deepcopy__ keeps the storages it copied: by their C pointer.
    storages = memo.setdefault("torch", {})
    if storage._cdata in storages or storage.nbytes() != value.numel() * value.element_size():
        return None
    new = value.clone(memory_format=torch.contiguous_format)
    storages[storage._cdata] = new.untyped_storage()
    memo[id(value)] = new
    return new


def _keep_alive(value: Any, memo: dict[int, Any]) -> None:
    """As ``copy.deepcopy`` does: keep what was copied alive while the memo is, so that no
    id in the memo is reused by another object during the copy."""
    try:
        memo[id(memo)].append(value)
    except KeyError:
        memo[id(memo)] = [value]


def uncopyable(model: nn.Module, error: Exception) -> str:
    """Why :func:`clone` cannot copy ``model``, which raised ``error``: the first attribute of a
    submodule that ``copy.deepcopy`` refuses on its own, named as ``model.<name>``."""
    for module_name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if attribute in ("_parameters", "_buffers", "_modules"):
                continue
            try:
                clone(value)
            except Exception as exc:  # noqa: BLE001 - the attribute that cannot be copied
                where = ".".join(part for part in (module_name, attribute) if part)
                return f"{where} ({type(value).__name__}) cannot be copied: {type(exc).__name__}: {exc}"
    return f"copying it raised {type(error).__name__}: {error}"
