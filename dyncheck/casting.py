"""Why a model's copy cannot run in another floating dtype.

``model.to(torch.float64)`` casts the parameters and buffers, and nothing else. When the
cast copy then raises, one of two things happened:

* **a kernel refuses the dtype** (``"addmm_impl_cpu_" not implemented for 'Double'``; a
  fused or grouped kernel that takes float16, bfloat16 or float32 only; a quantised op): the
  failing op's floating inputs all have the new dtype. The model is not wrong, the
  comparison cannot be made;
* **the cast did not reach part of the model**: a tensor in a plain attribute (not a
  parameter or buffer), in a closure, in a module-level global, or a tensor made in
  forward that ignores the input's dtype (``torch.zeros(n)``,
  ``torch.tensor(..., dtype=torch.float32)``, ``x.float()``); the failing op meets the new
  dtype and the old one. That is a bug: the model cannot be cast (nor moved to another
  device) as a whole.

:func:`diagnose` runs the failing call again under a ``TorchFunctionMode`` that follows
every tensor of another floating dtype back to where it came from (the attributes and
closures :func:`unreached_state` finds, or the line of forward that made it) and notes
the op that raised and its inputs; the error's own words decide only when the op is out
of sight (raised in Python code, or in an extension torch does not dispatch).
"""

from __future__ import annotations

import functools
import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dyncheck.errors import ModelError
from dyncheck.tracing import flat_items

__all__ = ["CastFailure", "KeptFloat64", "cast", "diagnose", "dtype_name", "unreached_state", "widened"]

#: The complex dtype of each floating precision.
_COMPLEX = {
    torch.float64: torch.complex128, torch.float32: torch.complex64, torch.float16: torch.complex32,
}


def cast(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``model.to(dtype)`` for a floating ``dtype``, with complex parameters and buffers
    cast to the complex dtype of that precision: ``Module.to(torch.float64)`` casts them to
    float64 and drops their imaginary part (torch warns), so a model with complex weights (a
    Fourier layer's) would be compared as another model. An ``nn.RMSNorm`` left at its
    default ``eps=None`` adds ``torch.finfo`` of its input's dtype, another constant in
    float64 (2.2e-16 against float32's 1.2e-7): it keeps the dtype's it had, so that the
    cast model computes the same function (on rows of a small mean square the two eps
    differ by far more than float32's rounding). In place, as ``Module.to``."""
    source = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    if source != dtype:
        for module in model.modules():
            if isinstance(module, _RMS_NORMS) and module.eps is None:
                weight = getattr(module, "weight", None)
                module.eps = torch.finfo(weight.dtype if isinstance(weight, torch.Tensor) else source).eps
    return model._apply(lambda tensor: _converted(tensor, dtype))


#: Norms whose ``eps=None`` means the input dtype's machine epsilon (torch 2.4 has nn.RMSNorm).
_RMS_NORMS = tuple(cls for cls in (getattr(nn, "RMSNorm", None),) if cls is not None)


def _converted(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in the floating ``dtype``, or in its complex dtype when complex; as it is
    otherwise (integer and boolean tensors, a complex one where ``dtype`` has none)."""
    if tensor.is_floating_point():
        return tensor.to(dtype)
    complex_dtype = _COMPLEX.get(dtype)
    if tensor.is_complex() and complex_dtype is not None:
        return tensor.to(complex_dtype)
    return tensor


def widened(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """:func:`cast`, and the floating tensors ``model``'s modules keep in plain attributes
    (and in lists, tuples and dicts there) cast too: the reference copy of a check that
    measures rounding against float64 (batch_invariance's margin, padding_invariance's and
    causality's float64 runs, grad_isolation's float64 answers). That ``.to()`` misses such a
    tensor is dtype_agreement's finding; without its float64 reference another check lost
    its margin and called float32's rounding a finding of its own (pytorch-tabnet's group
    matrices, kept in plain attributes: a batch dependence of 1.5e-5 on outputs near 600).
    The attributes are replaced, never written into: ``model`` must be dyncheck's own copy."""
    model = cast(model, dtype)
    for module in model.modules():
        for attribute, value in list(vars(module).items()):
            if attribute.startswith("__") or attribute in _MODULE_INTERNALS:
                continue
            converted = _widened_value(value, dtype, depth=2)
            if converted is not value:
                module.__dict__[attribute] = converted
    return model


def _widened_value(value: Any, dtype: torch.dtype, depth: int) -> Any:
    """``value`` with its floating tensors in ``dtype`` (complex ones in its complex dtype),
    lists, plain tuples and dicts rebuilt where an item changed; ``value`` itself otherwise."""
    if isinstance(value, torch.Tensor):
        return _converted(value, dtype)  # the same tensor where it has the dtype already
    if depth == 0:
        return value
    if type(value) in (list, tuple):
        items = [_widened_value(item, dtype, depth - 1) for item in value]
        return type(value)(items) if any(a is not b for a, b in zip(items, value)) else value
    if type(value) is dict:
        items = {key: _widened_value(item, dtype, depth - 1) for key, item in value.items()}
        return items if any(items[key] is not value[key] for key in value) else value
    return value


_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__))
_DYNCHECK_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = os.path.abspath(sysconfig.get_paths()["stdlib"])

#: How torch and kernel authors say that a kernel does not take float64 (or complex128).
_REFUSED = re.compile(
    r"not implemented for '(Double|ComplexDouble)'"
    r"|expected scalar type (Float|Half|BFloat16) but found Double"
    r"|\b(only|Only)\b.*\b(works?|supports?|implemented|accepts?)\b"
    r"|[Uu]nsupported (data ?type|dtype|scalar type)"
    r"|(not|isn't|is not) supported"
    r"|does not support"
    r"|[Ee]xpected .*\bto be\b.*\b(Float|Float32|Half|Float16|BFloat16|float|float32|half|float16|bfloat16)\b"
)
#: A kernel's name in torch's dispatch message: ``"addmm_impl_cpu_" not implemented for 'Double'``.
_NAMED_OP = re.compile(r'"([\w:.]+)" not implemented for')
#: The words a message needs for the refusal to be about float64 (or complex128).
_FLOAT64_WORDS = re.compile(r"\bDouble\b|\bdouble\b|float64|\bfp64\b|ComplexDouble|complex128")
#: How torch says that two operands have different floating dtypes.
_MISMATCH = re.compile(
    r"same dtype|same datatype|dtypes? (must |to )?match|does not match|should be the same"
    r"|mixed dtype|expected scalar type Double but found|[Ee]xpected both|must have the same|same scalar type"
)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class Holder:
    """Where a tensor that ``.to()`` does not reach is held."""

    #: ``scale``, ``blocks.0.table[1]``, ``output_weight`` (the function holding a closure), a global's name
    name: str
    #: "attribute", "closure", "outside module", "unregistered module" or "global"
    kind: str
    #: for a closure: the captured variable (and, for a module outside the model, the tensor in it)
    variable: str = ""

    def describe(self, dtype: torch.dtype) -> str:
        held = dtype_name(dtype)
        if self.kind == "attribute":
            return f"{self.name}, a {held} tensor kept in a plain attribute (not a parameter or buffer)"
        if self.kind == "closure":
            return f"{self.variable}, a {held} tensor held in the closure of {self.name}"
        if self.kind == "unregistered module":
            return (
                f"{self.name}.{self.variable}, a {held} tensor of {self.name}, a module kept in a plain "
                "list, tuple or dict: not a submodule, so .to(), state_dict() and parameters() do not reach it"
            )
        if self.kind == "outside module":
            return (
                f"{self.variable}, a {held} tensor of a module outside the model, reached through the "
                f"closure of {self.name}"
            )
        return f"{self.name}, a module-level {held} tensor used in forward"

    def fix(self) -> str:
        if self.kind == "attribute":
            leaf = self.name.rpartition(".")[2].partition("[")[0]
            return (
                f"Register it as a buffer (self.register_buffer({leaf!r}, tensor)) so that .to() casts and "
                "moves it with the model."
            )
        if self.kind == "global":
            return "Keep it on the model as a buffer (self.register_buffer(...)) and use it through self."
        if self.kind == "unregistered module":
            return "Hold such modules in nn.ModuleList or nn.ModuleDict, which register them as submodules."
        return (
            "Keep it on the model (a parameter, buffer or submodule) and reach it through self in forward, "
            "not through a closure made in __init__."
        )


def unreached_state(model: nn.Module) -> dict[int, tuple[torch.Tensor, Holder]]:
    """Floating tensors that ``model.to(...)`` cannot reach, by id: in plain attributes of
    its modules (and in lists, tuples and dicts there), in the closures of functions kept as
    attributes (and the parameters and buffers of modules such a closure holds that are not
    part of ``model``), and in module-level globals the modules' ``forward`` names."""
    own = {id(m) for m in model.modules()}
    found: dict[int, tuple[torch.Tensor, Holder]] = {}

    def add(value: Any, holder: Holder) -> None:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and id(value) not in found:
            found[id(value)] = (value, holder)

    for prefix, module in model.named_modules():
        for attribute, value in vars(module).items():
            if attribute.startswith("__") or attribute in _MODULE_INTERNALS:
                continue
            name = f"{prefix}.{attribute}" if prefix else attribute
            for shown, item in _items(name, value):
                add(item, Holder(shown, "attribute"))
                if shown != name and isinstance(item, nn.Module) and id(item) not in own:
                    # self.blocks = [nn.Linear(...), ...]: a module in a plain list is no submodule
                    for tensor_name, tensor in _tensors_of(item):
                        add(tensor, Holder(shown, "unregistered module", tensor_name))
                for variable, cell in _closure(item):
                    add(cell, Holder(shown, "closure", variable))
                    if isinstance(cell, nn.Module) and id(cell) not in own:
                        for tensor_name, tensor in _tensors_of(cell):
                            add(tensor, Holder(shown, "outside module", f"{variable}.{tensor_name}"))
        forward = getattr(type(module), "forward", None)
        code = getattr(forward, "__code__", None)
        if code is not None:
            for global_name in code.co_names:
                add(forward.__globals__.get(global_name), Holder(global_name, "global"))
    return found


_MODULE_INTERNALS = frozenset({
    "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "_backward_pre_hooks",
    "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
    "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
})


def _items(name: str, value: Any, depth: int = 3) -> Iterator[tuple[str, Any]]:
    """``value`` and, a few levels down, the items of lists, tuples and dicts (a list of
    lists of blocks), with their names."""
    yield name, value
    if depth == 0:
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _items(f"{name}[{index}]", item, depth - 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _items(f"{name}[{key!r}]", item, depth - 1)


def _closure(value: Any) -> Iterator[tuple[str, Any]]:
    """The captured variables of a function, a bound method's function or a partial."""
    if isinstance(value, functools.partial):
        for index, item in enumerate(value.args):
            yield f"partial argument {index}", item
        yield from value.keywords.items()
        value = value.func
    function = getattr(value, "__func__", value)
    cells = getattr(function, "__closure__", None)
    code = getattr(function, "__code__", None)
    if not cells or code is None:
        return
    for variable, cell in zip(code.co_freevars, cells):
        try:
            yield variable, cell.cell_contents
        except ValueError:  # an empty cell
            continue


def _tensors_of(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from module.named_parameters()
    yield from module.named_buffers()


def _library(filename: str) -> bool:
    """Whether ``filename`` is torch's or the standard library's code (not the model's)."""
    if filename.startswith("<"):
        return True
    path = os.path.abspath(filename)
    if path.startswith(_TORCH_DIR):
        return True
    return path.startswith(_STDLIB_DIR) and "site-packages" not in path and "dist-packages" not in path


def _ours(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_DYNCHECK_DIR)


def _user_frame(frame: Any) -> Any:
    """The innermost frame, from ``frame`` outwards, in the model's code (not torch's nor
    the standard library's); None when the call reaches dyncheck's own code first."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if _ours(filename):
            return None
        if not _library(filename):
            return frame
        frame = frame.f_back
    return None


def _where(frame: Any) -> str:
    """``path/to/model.py:31: `h = torch.zeros(n)``` for a frame, or "" without one."""
    if frame is None:
        return ""
    filename, line = frame.f_code.co_filename, frame.f_lineno
    relative = os.path.relpath(filename)
    shown = filename if relative.startswith("..") else relative
    code = linecache.getline(filename, line).strip()
    return f"{shown}:{line}: `{code}`" if code else f"{shown}:{line}"


def _traceback_where(exc: BaseException) -> str:
    """The model's innermost line in ``exc``'s traceback."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (_library(filename) or _ours(filename)):
            last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    filename = last.tb_frame.f_code.co_filename
    relative = os.path.relpath(filename)
    shown = filename if relative.startswith("..") else relative
    code = linecache.getline(filename, last.tb_lineno).strip()
    return f"{shown}:{last.tb_lineno}: `{code}`" if code else f"{shown}:{last.tb_lineno}"


def _op_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or repr(func)
    owner = getattr(func, "__objclass__", None)
    return f"Tensor.{name}" if owner is torch.Tensor or owner is torch._C.TensorBase else name


@dataclass
class _Raised:
    op: str
    error: BaseException
    where: str
    #: the floating inputs whose dtype is not the cast's: (their dtype, where each came from or None)
    others: list[tuple[torch.dtype, Any]]
    floating: bool


class _Origins(TorchFunctionMode):
    """Follows every floating tensor of another dtype than ``dtype`` to its origin (a
    :class:`Holder`, or the line that made it from tensors of ``dtype`` or from nothing),
    and notes each op that raised with its inputs."""

    def __init__(self, dtype: torch.dtype, state: dict[int, tuple[torch.Tensor, Holder]]) -> None:
        super().__init__()
        self.dtype = dtype
        self.origins: dict[int, Any] = {key: holder for key, (_, holder) in state.items()}
        self.keep: list[Any] = [tensor for tensor, _ in state.values()]  # ids stay unique
        self.raised: list[_Raised] = []

    def _other(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != self.dtype

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        inputs = [v for v in flat_items((args, kwargs)) if isinstance(v, torch.Tensor)]
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            self.raised.append(_Raised(
                op=_op_name(func),
                error=exc,
                where=_where(_user_frame(sys._getframe(1))),
                others=[(t.dtype, self.origins.get(id(t))) for t in inputs if self._other(t)],
                floating=any(t.is_floating_point() for t in inputs),
            ))
            raise
        made = [t for t in flat_items(result) if self._other(t)]
        if made:
            origin = next((self.origins[id(t)] for t in inputs if id(t) in self.origins), None)
            if origin is None and not any(self._other(t) for t in inputs):
                origin = _where(_user_frame(sys._getframe(1))) or None
            if origin is not None:
                for tensor in made:
                    self.origins.setdefault(id(tensor), origin)
                    self.keep.append(tensor)
        return result


@dataclass(frozen=True)
class CastFailure:
    """Why the cast copy raised: ``refused`` (a kernel refuses the dtype: not the model's
    fault) or ``unreached`` (``.to()`` did not reach a tensor: a bug)."""

    kind: str
    #: the op that raised (or "" when it is out of sight)
    op: str
    #: the error's first line, with its type
    error: str
    #: the model's line where it raised
    where: str
    #: for ``unreached``: what stayed in the old dtype and where it is held or was made, as a
    #: clause ("model.to(torch.float64) did not reach scale, ...")
    culprit: str = ""
    #: for ``unreached``: how to fix it
    fix: str = ""
    #: tensors .to() does not reach, whether or not they took part (for the report)
    suspects: tuple[str, ...] = field(default_factory=tuple)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.original if isinstance(exc, ModelError) else exc.__cause__


def diagnose(run: Callable[[nn.Module], Any], model: nn.Module, dtype: torch.dtype) -> CastFailure | None:
    """Call ``run(model)`` (``model`` a fresh copy, cast here to ``dtype``) under
    :class:`_Origins` and say why it raises; None when it does not raise, or raises for
    another reason than the dtype (the model's own crash)."""
    model = cast(model, dtype)
    state = unreached_state(model)
    mode = _Origins(dtype, state)
    try:
        with mode:
            run(model)
    except Exception as exc:
        chain = list(_chain(exc))
        final = chain[-1]
        raised = next((r for r in reversed(mode.raised) if any(r.error is e for e in chain)), None)
    else:
        return None
    suspects = tuple(dict.fromkeys(holder.describe(tensor.dtype) for tensor, holder in state.values()))
    error = _first_line(final)
    message = str(final)
    if raised is not None and raised.others:
        other_dtype, origin = raised.others[0]
        where = raised.where or _traceback_where(final)
        held = dtype_name(other_dtype)
        if isinstance(origin, Holder):
            culprit, fix = f"model.to({dtype}) did not reach {origin.describe(other_dtype)}", origin.fix()
        elif isinstance(origin, str):
            culprit, fix = f"forward makes a {held} tensor whatever the input's dtype, at {origin}", _MADE_FIX
        else:
            culprit, fix = f"a {held} tensor stays {held} (made where dyncheck cannot see)", _MADE_FIX
        return CastFailure("unreached", raised.op, error, where, culprit, fix, suspects)
    float64_words = bool(_FLOAT64_WORDS.search(message))
    if raised is not None and raised.floating and float64_words and not _MISMATCH.search(message):
        # The op saw its floating inputs in the cast dtype only, and refused them.
        return CastFailure("refused", raised.op, error, raised.where or _traceback_where(final), suspects=suspects)
    if raised is None and float64_words and _REFUSED.search(message) and not _MISMATCH.search(message):
        named = _NAMED_OP.search(message)
        return CastFailure("refused", named.group(1) if named else "", error, _traceback_where(final), suspects=suspects)
    if _MISMATCH.search(message):
        where = (raised.where if raised is not None else "") or _traceback_where(final)
        culprit = (
            f"model.to({dtype}) did not reach {'; or '.join(suspects)}" if suspects
            else "a tensor stays in another dtype (made in forward with a fixed dtype, or held where .to() "
            "does not reach)"
        )
        return CastFailure("unreached", raised.op if raised else "", error, where, culprit, _MADE_FIX, suspects)
    return None


class KeptFloat64(TorchFunctionMode):
    """Keeps float64 where a float64 copy of the model casts a float64 or integer tensor to
    float32 (``x.to(torch.float32)``, ``x.float()``, ``softmax(x, dim,
    dtype=torch.float32)``, ``mask.float()``): a step the model pins to float32 for
    half-precision training. In the float32 model such a cast gives the model's own dtype;
    in the float64 copy it gives float32 midway, next to values that stayed float64 (an
    additive mask of ``torch.finfo(torch.float64).min``), so the copy computes what neither
    dtype computes alone. Under this mode the copy follows the float32 model's program in
    float64. Factories without a tensor input (``torch.zeros(n, dtype=torch.float32)``)
    are left as they are: that is state the cast does not reach (:func:`diagnose`), and a
    float16 or bfloat16 tensor cast up stays a cast. ``sites`` lists where casts were kept."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        kept = _kept(func, args, kwargs)
        if kept is None:
            return func(*args, **kwargs)
        where = _where(_user_frame(sys._getframe(1))) or _op_name(func)
        if where not in self.sites:
            self.sites.append(where)
        func, args, kwargs = kept
        return func(*args, **kwargs)


def _float64(value: Any) -> bool:
    """Whether ``value`` is a tensor whose cast to float32 gives the model's dtype in the
    float32 model: a float64 one (the copy's dtype) or an integer or boolean one."""
    return isinstance(value, torch.Tensor) and (
        value.dtype == torch.float64 or not (value.is_floating_point() or value.is_complex())
    )


def _kept(func: Any, args: tuple, kwargs: dict) -> tuple[Any, tuple, dict] | None:
    """``(func, args, kwargs)`` with a cast of a float64 or integer tensor to float32 made a
    float64 one, or None when the call casts nothing of the kind."""
    if func in (torch.Tensor.float, torch.Tensor.type_as):
        if args and _float64(args[0]) and (func is torch.Tensor.float or _dtype_of(args[1:2]) == torch.float32):
            return torch.Tensor.double, args[:1], {k: v for k, v in kwargs.items() if k == "memory_format"}
        return None
    if func in (torch.Tensor.to, torch.Tensor.type):
        if not (args and _float64(args[0])):
            return None
        rest: list[Any] = []
        said = kept = False
        for value in args[1:]:
            if value is torch.float32:
                value, said = torch.float64, True
            elif isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                value, kept = value.device, True  # .to(other): other's device, in float64
            rest.append(value)
        if kwargs.get("dtype") is torch.float32:
            kwargs, said = dict(kwargs, dtype=torch.float64), True
        if kept and not said:
            rest.append(torch.float64)
        return (func, (args[0], *rest), kwargs) if said or kept else None
    if kwargs.get("dtype") is torch.float32 and any(_float64(v) for v in flat_items(args)):
        return func, args, dict(kwargs, dtype=torch.float64)
    return None


def _dtype_of(values: tuple) -> torch.dtype | None:
    return values[0].dtype if values and isinstance(values[0], torch.Tensor) else None


_MADE_FIX = (
    "Make tensors in forward in the input's dtype and device (torch.zeros(n, dtype=x.dtype, "
    "device=x.device), torch.zeros_like(x), x.new_zeros(n), torch.tensor(v, dtype=x.dtype)), and keep "
    "state in parameters and buffers."
)
