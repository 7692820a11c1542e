"""Hypothesis strategies for the inputs of dynamic models.

Named dimensions
    A shape may name a dimension instead of giving its size: ``tensors(shape=("batch", 4))``.
    Within one example (one draw of :func:`dyncheck.examples.from_spec`, or one draw of a
    single strategy used on its own) every use of a name gets the same size, so ``x`` of shape
    ``("batch", "time", 4)`` and ``sequence_lengths(batch_size="batch", max_length="time")``
    always agree. Sizes are drawn before contents, so Hypothesis shrinks them first.

Every strategy validates its arguments when it is called and raises
:class:`dyncheck.InvalidArgument` naming the argument and its value.
"""

from __future__ import annotations

import contextlib
import inspect
import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

import torch
from hypothesis import assume, strategies as st

from dyncheck.errors import InvalidArgument

__all__ = [
    "DEFAULT_DIMS",
    "attention_masks",
    "batch_sizes",
    "controls",
    "dims",
    "packed_sequences",
    "padded_batches",
    "seeds",
    "sequence_lengths",
    "sequence_lists",
    "tensors",
]

Dim = Union[int, str]
DimRange = Union[int, "tuple[int, int]", st.SearchStrategy]

#: Sizes drawn for a named dimension that no Spec bounds: (min, max), inclusive.
DEFAULT_DIMS: Mapping[str, tuple[int, int]] = {
    "batch": (1, 4),
    "time": (1, 8),
}
_OTHER_DIM = (1, 6)

#: Default magnitude bound of floating tensors: large enough to reach overflow-prone code
#: (exp of a few hundred), small enough that plain affine layers stay finite in float32.
DEFAULT_MAX_MAGNITUDE = 1e3

# Small tensors are drawn element by element (they shrink to readable values); larger
# ones from a seeded generator plus drawn edge cases, which keeps examples small.
_ELEMENTWISE_MAX_NUMEL = 32


def _composite(name: str) -> Any:
    """``st.composite`` under the public name, so a strategy's repr is the call a user
    writes (``tensors(shape=('batch', 4))``): ``--dyncheck-explain`` prints it as Python."""

    def decorate(function: Any) -> Any:
        function.__name__ = function.__qualname__ = name
        return st.composite(function)

    return decorate


def _given(public: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a call to ``public`` that differ from its defaults."""
    out = {}
    for name, parameter in inspect.signature(public).parameters.items():
        value, default = args[name], parameter.default
        if value is default or (type(value) is type(default) and value == default):
            continue
        out[name] = value
    return out


_PLANS: dict[Any, Any] = {}
_MAX_PLANS = 1024


def _planned(plan: Any, kwargs: Mapping[str, Any]) -> Any:
    """``plan(**kwargs)``, worked out once per distinct arguments: a strategy validates its
    arguments and builds its inner strategies when it is made, and each draw asks for them
    again (a draw must not keep state of its own, so they cannot live on the strategy).

    Arguments that cannot be a key (a list of choices holding unhashable values) are
    planned anew on each draw. A float argument keys with its type and sign, so ``1``,
    ``1.0`` and ``True`` and the bounds ``0.0`` and ``-0.0`` stay apart."""
    try:
        key = (plan, *(
            (
                name,
                type(value),
                tuple(value) if type(value) is list else value,
                math.copysign(1.0, value) if isinstance(value, float) else None,
            )
            for name, value in sorted(kwargs.items())
        ))
        hash(key)
    except TypeError:
        return plan(**kwargs)
    found = _PLANS.get(key)
    if found is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        found = _PLANS[key] = plan(**kwargs)
    return found


# --------------------------------------------------------------------------- dimensions


@dataclass
class _DimScope:
    ranges: dict[str, st.SearchStrategy] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)


_SCOPE: contextvars.ContextVar[_DimScope | None] = contextvars.ContextVar(
    "dyncheck_dim_scope", default=None
)


def _dim_strategy(value: DimRange, *, argument: str) -> st.SearchStrategy:
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, bool):
        raise InvalidArgument(
            f"{argument}={value!r} must be an int, a (min, max) pair of ints or a strategy"
        )
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgument(f"Cannot have {argument}={value} < 0")
        return st.just(value)
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        lo, hi = value
        if lo < 0:
            raise InvalidArgument(f"Cannot have {argument}={value!r} with min {lo} < 0")
        if hi < lo:
            raise InvalidArgument(f"Cannot have {argument}={value!r} with max {hi} < min {lo}")
        return st.integers(lo, hi)
    raise InvalidArgument(
        f"{argument}={value!r} must be an int, a (min, max) pair of ints or a strategy"
    )


@contextlib.contextmanager
def dim_scope(ranges: Mapping[str, DimRange] | None = None) -> Iterator[_DimScope]:
    """Share named dimensions between all draws inside the block.

    Nested use joins the outer scope, so a strategy drawn inside an example sees the
    example's sizes. ``ranges`` bound the names the outer scope does not know yet.
    """
    outer = _SCOPE.get()
    if outer is not None:
        for name, value in (ranges or {}).items():
            outer.ranges.setdefault(name, _dim_strategy(value, argument=f"dims[{name!r}]"))
        yield outer
        return
    scope = _DimScope(
        {name: _dim_strategy(v, argument=f"dims[{name!r}]") for name, v in (ranges or {}).items()}
    )
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


def _draw_dim(draw: Any, dim: Dim) -> int:
    if isinstance(dim, int):
        return dim
    scope = _SCOPE.get()
    assert scope is not None, "named dimensions are drawn inside dim_scope()"
    if dim not in scope.values:
        strategy = scope.ranges.get(dim)
        if strategy is None:
            strategy = st.integers(*DEFAULT_DIMS.get(dim, _OTHER_DIM))
        scope.values[dim] = draw(strategy)
    return scope.values[dim]


def current_dims() -> dict[str, int]:
    """The named sizes drawn so far in the enclosing scope (empty outside one)."""
    scope = _SCOPE.get()
    return dict(scope.values) if scope is not None else {}


def _check_dim(value: Any, *, argument: str) -> Dim:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        if value is Ellipsis:  # the placeholder in a hint dyncheck gave: the size is the user's to give
            raise InvalidArgument(f"{argument}=... is a placeholder: give the size there (an int or a dimension name)")
        raise InvalidArgument(f"{argument}={value!r} must be an int or a dimension name")
    if isinstance(value, int) and value < 0:
        raise InvalidArgument(f"Cannot have {argument}={value} < 0")
    if isinstance(value, str) and not value.isidentifier():
        raise InvalidArgument(f"{argument}={value!r} is not a valid dimension name")
    return value


def dims(**ranges: DimRange) -> st.SearchStrategy[dict[str, int]]:
    """Draw sizes for named dimensions: ``dims(batch=(1, 8), time=(1, 16))``."""
    for name, value in ranges.items():
        _dim_strategy(value, argument=name)
    return _draw_dims(**ranges)


@_composite("dims")
def _draw_dims(draw: Any, **ranges: DimRange) -> dict[str, int]:
    with dim_scope(ranges):
        return {name: _draw_dim(draw, name) for name in ranges}


# --------------------------------------------------------------------------- scalars


def seeds() -> st.SearchStrategy[int]:
    """Seeds for python ``random``, numpy and torch; shrink towards 0."""
    return st.integers(0, 2**32 - 1)


def batch_sizes(*, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[int]:
    """Batch sizes, 1 included by default (it shrinks there)."""
    _check_int("min_size", min_size, lower=0)
    _check_int("max_size", max_size, lower=0)
    if max_size < min_size:
        raise InvalidArgument(f"Cannot have max_size={max_size} < min_size={min_size}")
    return st.integers(min_size, max_size)


def controls(
    *,
    min_value: float = 0.0,
    max_value: float = 1.0,
    thresholds: Sequence[float] = (),
    dtype: type = float,
    choices: Sequence[Any] | type[Enum] | None = None,
    as_tensor: bool = False,
) -> st.SearchStrategy[Any]:
    """Control values that select a model's path.

    Floats (the default) and ints lie in ``[min_value, max_value]``; each threshold, its
    neighbours one float step away and both bounds are tried often, so ``control > 0.5``
    written as ``>=`` is caught at exactly 0.5. ``dtype=bool`` gives booleans; ``choices``
    (a sequence or an Enum class) samples from those values. With ``as_tensor=True`` each
    value is a one-element tensor, the form ``torch.rand(1)`` has.

    A check whose spec has such an input starts with one example in each piece of it (see
    :func:`control_corners`), then draws at random.
    """
    args = dict(locals())
    _control_plan(**args)
    strategy = _draw_controls(**_given(controls, args))
    # --dyncheck-explain prints `choices=Mode`: it needs to know what to import.
    strategy._dyncheck_choices = choices
    # A check tries one example in each of its pieces first (see control_corners).
    strategy._dyncheck_strategy = "controls"
    return strategy


@_composite("controls")
def _draw_controls(draw: Any, **kwargs: Any) -> Any:
    return draw(_planned(_control_plan, kwargs))


def _control_plan(
    *,
    min_value: float = 0.0,
    max_value: float = 1.0,
    thresholds: Sequence[float] = (),
    dtype: type = float,
    choices: Sequence[Any] | type[Enum] | None = None,
    as_tensor: bool = False,
) -> st.SearchStrategy[Any]:
    """The strategy behind :func:`controls`, after validating its arguments."""
    if choices is not None:
        values = list(choices)
        if not values:
            raise InvalidArgument(f"Cannot have choices={choices!r} with no values")
        strategy: st.SearchStrategy = st.sampled_from(values)
    elif dtype is bool:
        strategy = st.booleans()
    elif dtype in (int, float):
        for name, value in (("min_value", min_value), ("max_value", max_value)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidArgument(f"{name}={value!r} must be a finite number")
        if max_value < min_value:
            raise InvalidArgument(f"Cannot have max_value={max_value} < min_value={min_value}")
        if dtype is int and math.ceil(min_value) > math.floor(max_value):
            raise InvalidArgument(
                f"Cannot have dtype=int with min_value={min_value}, max_value={max_value}: "
                "no whole number lies between them"
            )
        if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
            raise InvalidArgument(f"thresholds={thresholds!r} must be a sequence of numbers")
        for t in thresholds:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise InvalidArgument(f"thresholds={thresholds!r} holds {t!r}, not a finite number")
        # One-element tensors hold float32: try the float32 neighbours of each threshold
        # (float64 neighbours would round back onto the threshold itself).
        width = 32 if as_tensor and dtype is float else 64
        strategy = _numeric_controls(dtype, min_value, max_value, tuple(thresholds), width)
    else:
        name = dtype.__name__ if isinstance(dtype, type) else repr(dtype)
        raise InvalidArgument(f"dtype={name} must be float, int or bool")
    if not isinstance(as_tensor, bool):
        raise InvalidArgument(f"as_tensor={as_tensor!r} must be a bool")
    if as_tensor:
        if choices is not None and not all(isinstance(v, (bool, int, float)) for v in values):
            raise InvalidArgument("Cannot have as_tensor=True with non-numeric choices")
        return strategy.map(_one_element_tensor)
    return strategy


def _numeric_controls(
    dtype: type, lo: float, hi: float, thresholds: tuple[float, ...], width: int = 64
) -> st.SearchStrategy:
    if dtype is int:
        # Fractional bounds: int(0.5) would be 0, below min_value=0.5.
        lo, hi = math.ceil(lo), math.floor(hi)
    special: list[float] = []
    for t in thresholds:
        if dtype is int:
            near = [math.floor(t), math.ceil(t), math.floor(t) - 1, math.ceil(t) + 1]
        else:
            near = [t, _next_float(t, -math.inf, width), _next_float(t, math.inf, width)]
        special.extend(v for v in near if lo <= v <= hi)
    special.extend([lo, hi])
    special = [dtype(v) for v in dict.fromkeys(special)]  # ordered, unique
    if dtype is int:
        anywhere = st.integers(math.ceil(lo), math.floor(hi))
    else:
        hi = lo if hi == lo else hi  # 0.0 == -0.0, yet Hypothesis rejects floats(0.0, -0.0)
        if width == 32:
            lo, hi = _float32_inside(lo, hi)
        anywhere = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)
    return st.one_of(st.sampled_from(special), anywhere)


def _pieces(
    dtype: type, lo: float, hi: float, thresholds: tuple[float, ...], width: int
) -> list[tuple[float, float]]:
    """``[lo, hi]`` (a valid range of ``dtype``) cut at the thresholds inside it, as closed
    ranges: each threshold on its own (``control > 0.5`` and ``control >= 0.5`` part there),
    then the ranges between them, each holding a value."""
    if dtype is int:
        # Fractional bounds: int(0.5) would be 0, below min_value=0.5.
        lo, hi = math.ceil(lo), math.floor(hi)
    cuts = sorted({t for t in thresholds if lo < t < hi})
    pieces = [(t, t) for t in cuts if dtype is float or t == int(t)]
    for a, b in zip([lo, *cuts], [*cuts, hi]):
        a = a if a == lo else _past(a, math.inf, dtype, width)
        b = b if b == hi else _past(b, -math.inf, dtype, width)
        if a <= b:
            pieces.append((a, b))
    return pieces


def control_corners(strategy: Any) -> list[tuple[str, Callable[[Any], bool]]]:
    """For a strategy :func:`controls` made, one condition per kind of value it draws:
    each threshold, each range between thresholds and bounds, each boolean or choice (what
    :func:`controls` calls a piece), with a few words saying which. Empty for any other
    strategy. A check runs one example of each before the random ones, so a branch behind a
    threshold is taken in every run, whatever the seed."""
    if getattr(strategy, "_dyncheck_strategy", None) != "controls":
        return []
    from dyncheck.examples import strategy_arguments

    kwargs = {name: p.default for name, p in inspect.signature(controls).parameters.items()}
    kwargs.update(strategy_arguments(strategy))
    choices = kwargs["choices"]
    if choices is not None or kwargs["dtype"] is bool:
        values = [False, True] if choices is None else list(choices)
        return [(repr(v), functools.partial(_is_value, v)) for v in values]
    dtype, width = kwargs["dtype"], 32 if kwargs["as_tensor"] and kwargs["dtype"] is float else 64
    pieces = _pieces(dtype, kwargs["min_value"], kwargs["max_value"], tuple(kwargs["thresholds"]), width)
    return [
        (f"{a!r}" if a == b else f"[{a!r}, {b!r}]", functools.partial(_in_piece, a, b))
        for a, b in pieces
    ]


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def _is_value(wanted: Any, value: Any) -> bool:
    value = _scalar(value)
    if value is wanted:
        return True
    return type(value) is type(wanted) and not isinstance(value, torch.Tensor) and value == wanted


def _in_piece(a: float, b: float, value: Any) -> bool:
    value = _scalar(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and a <= value <= b


def _past(value: float, toward: float, dtype: type, width: int) -> float:
    """The first value of ``dtype`` after ``value`` (not ``value`` itself) toward ``toward``."""
    if dtype is int:
        return math.floor(value) + 1 if toward > value else math.ceil(value) - 1
    return _next_float(value, toward, width)


def _next_float(value: float, toward: float, width: int) -> float:
    """The next float after ``value`` toward ``toward``, in float32 when ``width`` is 32."""
    if width == 64:
        return math.nextafter(value, toward)
    start = torch.tensor(value, dtype=torch.float32)
    return float(torch.nextafter(start, torch.tensor(toward, dtype=torch.float32)))


def _float32_inside(lo: float, hi: float) -> tuple[float, float]:
    """The float32 values nearest to ``[lo, hi]`` from inside it."""
    lo32 = float(torch.tensor(lo, dtype=torch.float32))
    hi32 = float(torch.tensor(hi, dtype=torch.float32))
    if lo32 < lo:
        lo32 = _next_float(lo32, math.inf, 32)
    if hi32 > hi:
        hi32 = _next_float(hi32, -math.inf, 32)
    return lo32, max(lo32, hi32)


def _one_element_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, bool):
        return torch.tensor([value])
    if isinstance(value, int):
        return torch.tensor([value], dtype=torch.long)
    return torch.tensor([value], dtype=torch.float32)


def _check_int(name: str, value: Any, *, lower: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an int")
    if value < lower:
        raise InvalidArgument(f"Cannot have {name}={value} < {lower}")


# --------------------------------------------------------------------------- tensors


def tensors(
    *,
    shape: Sequence[Dim],
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    edge_cases: bool = True,
    device: str | torch.device = "cpu",
) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` (ints and dimension names) and ``dtype``.

    Floating tensors default to values in ``[-1e3, 1e3]``; integer tensors to ``[0, 9]``.
    With ``edge_cases`` (the default) examples also include all-zero rows, rows at the
    largest allowed magnitude and non-contiguous views; each is a drawn choice, so a
    shrunk failing example keeps only the edge cases it needs.
    """
    args = dict(locals())
    _tensor_plan(**args)
    strategy = _draw_tensors(**_given(tensors, args))
    # Resolution reads a tensor's shape from a strategy this function made (see examples.strategy_kind).
    strategy._dyncheck_strategy = "tensors"
    return strategy


def _tensor_plan(
    *,
    shape: Sequence[Dim],
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    edge_cases: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[tuple[Dim, ...], torch.dtype, Any, Any, bool, torch.device]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise InvalidArgument(f"shape={shape!r} must be a sequence of ints and dimension names")
    shape = tuple(_check_dim(d, argument=f"shape[{i}]") for i, d in enumerate(shape))
    if not isinstance(dtype, torch.dtype):
        raise InvalidArgument(f"dtype={dtype!r} must be a torch.dtype")
    if dtype.is_complex:
        raise InvalidArgument(f"dtype={dtype!r}: complex tensors are not supported yet")
    if not isinstance(edge_cases, bool):
        raise InvalidArgument(f"edge_cases={edge_cases!r} must be a bool")
    if dtype == torch.bool:
        if min_value is not None or max_value is not None:
            given = ", ".join(
                f"{name}={value!r}"
                for name, value in (("min_value", min_value), ("max_value", max_value))
                if value is not None
            )
            raise InvalidArgument(f"Cannot have {given} with dtype=torch.bool")
        lo = hi = None
    else:
        floating = dtype.is_floating_point
        default_lo, default_hi = (
            (-DEFAULT_MAX_MAGNITUDE, DEFAULT_MAX_MAGNITUDE) if floating else (0, 9)
        )
        lo = default_lo if min_value is None else min_value
        hi = default_hi if max_value is None else max_value
        for name, value in (("min_value", lo), ("max_value", hi)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidArgument(f"{name}={value!r} must be a finite number")
            if not floating and value != int(value):
                raise InvalidArgument(f"{name}={value!r} must be a whole number for dtype={dtype}")
        if hi < lo:
            raise InvalidArgument(f"Cannot have max_value={hi} < min_value={lo}")
        if floating:
            given = lo, hi
            lo, hi = _representable_bounds(lo, hi, dtype, _signs(lo, hi))
            if hi < lo:
                raise InvalidArgument(
                    f"Cannot have min_value={given[0]}, max_value={given[1]}: "
                    f"no {dtype} value lies between them"
                )
        if not floating:
            info = torch.iinfo(dtype)
            if lo < info.min or hi > info.max:
                raise InvalidArgument(
                    f"Cannot have min_value={lo}, max_value={hi} outside the range of {dtype}"
                )
            lo, hi = int(lo), int(hi)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidArgument(f"device={device!r} is not a torch device: {exc}") from None
    return shape, dtype, lo, hi, edge_cases, device


@functools.lru_cache(maxsize=256)
def _element_lists(dtype: torch.dtype, lo: Any, hi: Any, numel: int, signs: Any = None) -> st.SearchStrategy:
    """Lists of exactly ``numel`` elements of ``dtype`` in ``[lo, hi]`` (built once per
    kind: a draw of a small tensor asks for it every time). ``signs`` only keeps the bounds
    -0.0 and 0.0, equal as keys, apart in the cache."""
    if dtype == torch.bool:
        elements: st.SearchStrategy = st.booleans()
    elif dtype.is_floating_point:
        width = 16 if dtype == torch.float16 else 64 if dtype == torch.float64 else 32
        elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=width)
    else:
        elements = st.integers(lo, hi)
    unwrapped = _choice_level(elements)
    if unwrapped is None:
        return st.lists(elements, min_size=numel, max_size=numel)
    return _FixedElements(*unwrapped, numel)


#: Hypothesis's strategies for one choice: their ``do_draw`` makes exactly one choice
#: (``data.draw_float``, ``draw_integer``, ``draw_boolean``) and draws nothing nested.
_ONE_CHOICE = frozenset({"FloatStrategy", "IntegersStrategy", "BooleansStrategy"})


def _choice_level(elements: st.SearchStrategy) -> tuple[st.SearchStrategy, Any] | None:
    """``elements`` as (a strategy for one choice, the function its value goes through),
    or None where Hypothesis builds it otherwise (another version): then the elements are
    drawn through ``st.lists``."""
    inner = getattr(elements, "wrapped_strategy", elements)  # st.floats(...) is lazy
    pack = getattr(inner, "pack", None)  # width=32 maps each float64 choice to float32
    if pack is not None:
        inner = getattr(inner, "mapped_strategy", None)
    if type(inner).__name__ not in _ONE_CHOICE or not callable(getattr(inner, "do_draw", None)):
        return None
    return inner, pack


class _FixedElements(st.SearchStrategy):
    """``st.lists(elements, min_size=n, max_size=n)``, drawn as its ``n`` choices in a row.

    The same values, one choice of Hypothesis's per element (its simple values, its
    shrinking of each), without the bookkeeping a list and a mapped strategy put around
    every element: the list's decision to go on (a forced choice, as the size is fixed),
    the mapping's own span, its warnings filter and its retries. Those were about half of
    the time to draw a small tensor, and small tensors are drawn on nearly every example of
    every check. Each element is still drawn as a span of its own (``data.draw``):
    Hypothesis's generation copies one element's choices into another's (the repeated
    values that expose some bugs), which it does between spans with the same label."""

    def __init__(self, inner: st.SearchStrategy, pack: Any, numel: int) -> None:
        super().__init__()
        self._inner, self._pack, self._numel = inner, pack, numel

    def do_draw(self, data: Any) -> list[Any]:
        inner, pack = self._inner, self._pack
        if pack is None:
            return [data.draw(inner) for _ in range(self._numel)]
        return [pack(data.draw(inner)) for _ in range(self._numel)]

    def __repr__(self) -> str:
        return f"_FixedElements({self._inner!r}, numel={self._numel})"


def _signs(*values: Any) -> tuple[float, ...]:
    return tuple(math.copysign(1.0, v) if isinstance(v, float) else 1.0 for v in values)


@functools.lru_cache(maxsize=256)
def _representable_bounds(lo: float, hi: float, dtype: torch.dtype, signs: Any = None) -> tuple[float, float]:
    """``[lo, hi]`` narrowed to the closest values ``dtype`` holds: Hypothesis rejects float
    bounds its width cannot represent (``min_value=0.1`` in float32), and a bound rounded
    to nearest could lie outside the range the user asked for. Cached: every draw asks;
    ``signs`` keeps the bounds -0.0 and 0.0, equal as keys, apart."""
    low = torch.tensor(float(lo), dtype=torch.float64).to(dtype)
    if low.item() < lo:
        low = torch.nextafter(low, torch.tensor(math.inf, dtype=dtype))
    high = torch.tensor(float(hi), dtype=torch.float64).to(dtype)
    if high.item() > hi:
        high = torch.nextafter(high, torch.tensor(-math.inf, dtype=dtype))
    low, high = low.item(), high.item()
    return low, low if high == low else high  # 0.0 == -0.0, yet Hypothesis rejects floats(0.0, -0.0)


@_composite("tensors")
def _draw_tensors(draw: Any, **kwargs: Any) -> torch.Tensor:
    shape, dtype, lo, hi, edge_cases, device = _planned(_tensor_plan, kwargs)
    with dim_scope():
        sizes = tuple(_draw_dim(draw, d) for d in shape)
    numel = math.prod(sizes)
    if numel <= _ELEMENTWISE_MAX_NUMEL:
        values = draw(_element_lists(dtype, lo, hi, numel, _signs(lo, hi)))
        out = torch.tensor(values, dtype=dtype).reshape(sizes)
    else:
        generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
        if dtype == torch.bool:
            out = torch.rand(sizes, generator=generator) < 0.5
        elif dtype.is_floating_point:
            bound = max(abs(lo), abs(hi))
            scale = draw(st.sampled_from([1.0, 1e-3, 10.0, bound]))
            out = (torch.randn(sizes, generator=generator, dtype=torch.float64) * scale)
            out = out.clamp(lo, hi).to(dtype)
        else:
            # randint's high is exclusive and an int64: hi + 1 overflows at the top of int64.
            high = min(hi + 1, torch.iinfo(torch.int64).max)
            out = torch.randint(lo, high, sizes, generator=generator).to(dtype)

    if edge_cases and dtype != torch.bool and out.dim() >= 1 and sizes[0] > 0:
        rows = sizes[0]
        zero = 0 if lo <= 0 <= hi else lo
        if draw(st.booleans()):
            for index in draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=rows, unique=True)):
                out[index] = zero
        if dtype.is_floating_point and draw(st.booleans()):
            index = draw(st.integers(0, rows - 1))
            out[index] = draw(st.sampled_from([hi, lo]))
        if draw(st.booleans()):
            out = _non_contiguous(out)
    return out.to(device)


def _non_contiguous(t: torch.Tensor) -> torch.Tensor:
    """The same values, laid out with a stride of 2 in the last dimension."""
    wide = torch.zeros(*t.shape[:-1], t.shape[-1] * 2, dtype=t.dtype)
    view = wide[..., ::2]
    view.copy_(t)
    return view


# --------------------------------------------------------------------------- sequences


def sequence_lengths(
    *,
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    min_length: int = 1,
    pad_to_longest: bool = False,
    descending: bool = False,
    relative: bool = False,
) -> st.SearchStrategy[torch.Tensor]:
    """Valid lengths of a padded batch: an int64 CPU tensor of ``batch_size`` entries.

    Lengths are unsorted; examples include length ``min_length``, all lengths equal, the
    longest equal to the padded length ``max_length`` and padding beyond the longest.
    ``batch_size`` and ``max_length`` are sizes or dimension names. With
    ``pad_to_longest=True`` the longest always equals the padded length, as
    ``torch.nn.utils.rnn.pad_sequence`` pads a batch: for a model that builds its padding
    mask from ``lengths.max()`` (torchaudio's ``Conformer``) and takes no other batch.
    With ``descending=True`` the lengths come longest first, as a collate function sorts a
    batch for ``pack_padded_sequence`` with ``enforce_sorted=True``.
    With ``relative=True`` each length is a fraction of the padded length in a float32
    tensor, as SpeechBrain's ``wav_lens`` are: the same whole numbers of steps, divided by
    the padded length, so a sequence that fills it is 1.0.
    """
    args = dict(locals())
    _length_plan(**args)
    strategy = _draw_sequence_lengths(**_given(sequence_lengths, args))
    # Resolution's size probe gives such lengths the probed length (see examples.strategy_kind).
    strategy._dyncheck_strategy = "sequence_lengths"
    return strategy


def _length_plan(
    *, batch_size: Dim = "batch", max_length: Dim = "time", min_length: int = 1, pad_to_longest: bool = False,
    descending: bool = False, relative: bool = False,
) -> tuple[Dim, Dim, int, bool, bool, bool]:
    batch_size = _check_dim(batch_size, argument="batch_size")
    max_length = _check_dim(max_length, argument="max_length")
    _check_int("min_length", min_length, lower=0)
    if isinstance(max_length, int) and max_length < min_length:
        raise InvalidArgument(f"Cannot have max_length={max_length} < min_length={min_length}")
    if not isinstance(pad_to_longest, bool):
        raise InvalidArgument(f"pad_to_longest={pad_to_longest!r} must be True or False")
    if not isinstance(descending, bool):
        raise InvalidArgument(f"descending={descending!r} must be True or False")
    if not isinstance(relative, bool):
        raise InvalidArgument(f"relative={relative!r} must be True or False")
    return batch_size, max_length, min_length, pad_to_longest, descending, relative


@_composite("sequence_lengths")
def _draw_sequence_lengths(draw: Any, **kwargs: Any) -> torch.Tensor:
    batch_size, max_length, min_length, pad_to_longest, descending, relative = _planned(_length_plan, kwargs)
    with dim_scope():
        n = _draw_dim(draw, batch_size)
        longest = _draw_dim(draw, max_length)
    # A named padded length drawn shorter than min_length (min_length > 1, or a range
    # reaching 0) admits no valid lengths: reject the draw rather than give lengths longer
    # than the padded tensor they describe.
    assume(longest >= min_length)
    one = st.integers(min_length, longest)
    mode = "full" if pad_to_longest else draw(st.sampled_from(["any", "equal", "full"]))
    if mode == "equal":
        lengths = [draw(one)] * n
    else:
        lengths = draw(st.lists(one, min_size=n, max_size=n))
        if mode == "full" and n:
            lengths[draw(st.integers(0, n - 1))] = longest
    if descending:
        lengths.sort(reverse=True)
    if relative:
        return relative_lengths(lengths, longest)
    return torch.tensor(lengths, dtype=torch.long)


def relative_lengths(steps: Sequence[int], padded: int) -> torch.Tensor:
    """``steps`` as fractions of the padded length (``sequence_lengths(relative=True)``):
    each divided in float64, then rounded once to float32, so ``round(value * padded)``
    gives the steps back."""
    return (torch.tensor(list(steps), dtype=torch.float64) / max(padded, 1)).to(torch.float32)


def attention_masks(
    *,
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    padding_side: str = "right",
    dtype: torch.dtype = torch.long,
    marks: str = "tokens",
    min_length: int = 1,
) -> st.SearchStrategy[torch.Tensor]:
    """Attention masks in Hugging Face's convention: ``[batch_size, max_length]``, 1 where
    a token is attended to and 0 at padding, with at least one 1 in every row.

    Each row is one sequence padded on ``padding_side`` (``"right"``, the tokenizers'
    default, or ``"left"``, as for generation); the lengths are drawn as
    :func:`sequence_lengths` draws them, so all-ones rows and a single token are tried.
    Give the token ids the same dimension names, e.g.
    ``tensors(shape=("batch", "time"), dtype=torch.long, max_value=vocab_size - 1)``.
    ``marks="padding"`` draws PyTorch's ``key_padding_mask`` convention instead (as
    ``nn.TransformerEncoder``'s ``src_key_padding_mask`` takes it, with
    ``dtype=torch.bool``): True (1) at padding, False at tokens. ``min_length`` is the
    fewest tokens a row holds (an audio model's convolutions need that many samples).
    """
    args = dict(locals())
    _mask_plan(**args)
    strategy = _draw_attention_masks(**_given(attention_masks, args))
    # padding_invariance reads the padding from a mask this strategy drew (see examples.strategy_kind).
    strategy._dyncheck_strategy = "attention_masks"
    return strategy


def _mask_plan(
    *,
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    padding_side: str = "right",
    dtype: torch.dtype = torch.long,
    marks: str = "tokens",
    min_length: int = 1,
) -> tuple[st.SearchStrategy, Dim, str, torch.dtype, bool]:
    if padding_side not in ("right", "left"):
        raise InvalidArgument(f"padding_side={padding_side!r} must be 'right' or 'left'")
    if marks not in ("tokens", "padding"):
        raise InvalidArgument(
            f"marks={marks!r} must be 'tokens' (True at tokens, Hugging Face's attention_mask) or 'padding' "
            "(True at padding, PyTorch's key_padding_mask)"
        )
    if not isinstance(dtype, torch.dtype) or dtype.is_complex:
        raise InvalidArgument(f"dtype={dtype!r} must be a real torch.dtype, e.g. torch.long or torch.bool")
    _check_int("min_length", min_length, lower=1)
    lengths = sequence_lengths(batch_size=batch_size, max_length=max_length, min_length=min_length)
    return lengths, _check_dim(max_length, argument="max_length"), padding_side, dtype, marks == "padding"


@_composite("attention_masks")
def _draw_attention_masks(draw: Any, **kwargs: Any) -> torch.Tensor:
    lengths, max_length, padding_side, dtype, at_padding = _planned(_mask_plan, kwargs)
    with dim_scope():
        lens = draw(lengths)
        longest = _draw_dim(draw, max_length)
    positions = torch.arange(longest)
    if padding_side == "left":
        positions = positions.flip(0)
    tokens = positions.unsqueeze(0) < lens.unsqueeze(1)
    return (~tokens if at_padding else tokens).to(dtype)


def padded_batches(
    *,
    feature_shape: Sequence[Dim] = (),
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    batch_first: bool = True,
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    padding_value: float | None = 0.0,
) -> st.SearchStrategy[tuple[torch.Tensor, torch.Tensor]]:
    """``(padded, lengths)``: a padded batch of variable-length sequences and its lengths.

    ``padded`` is ``[batch, time, *feature_shape]`` (``[time, batch, ...]`` unless
    ``batch_first``); positions past each length hold ``padding_value``, or arbitrary
    values when it is ``None`` (a model that reads padding then shows it).
    """
    args = dict(locals())
    _padded_plan(**args)
    strategy = _draw_padded_batches(**_given(padded_batches, args))
    strategy._dyncheck_strategy = "padded_batches"
    return strategy


def _padded_plan(
    *,
    feature_shape: Sequence[Dim] = (),
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    batch_first: bool = True,
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    padding_value: float | None = 0.0,
) -> tuple[st.SearchStrategy, st.SearchStrategy, bool, float | None]:
    if not isinstance(batch_first, bool):
        raise InvalidArgument(f"batch_first={batch_first!r} must be a bool")
    if padding_value is not None and (
        isinstance(padding_value, bool) or not isinstance(padding_value, (int, float))
    ):
        raise InvalidArgument(f"padding_value={padding_value!r} must be a number or None")
    _check_feature_shape(feature_shape)
    lengths = sequence_lengths(batch_size=batch_size, max_length=max_length)
    values = tensors(
        shape=(batch_size, max_length, *feature_shape),
        dtype=dtype,
        min_value=min_value,
        max_value=max_value,
        edge_cases=False,
    )
    return lengths, values, batch_first, padding_value


def _check_feature_shape(feature_shape: Any) -> None:
    if isinstance(feature_shape, (str, bytes)) or not isinstance(feature_shape, Sequence):
        raise InvalidArgument(f"feature_shape={feature_shape!r} must be a sequence")
    for i, dim in enumerate(feature_shape):  # named here, not as the inner tensors' shape[i + 2]
        _check_dim(dim, argument=f"feature_shape[{i}]")


@_composite("padded_batches")
def _draw_padded_batches(draw: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    lengths, values, batch_first, padding_value = _planned(_padded_plan, kwargs)
    with dim_scope():
        lens = draw(lengths)
        padded = draw(values)
    if padding_value is not None:
        for row, length in enumerate(lens.tolist()):
            padded[row, length:] = padding_value
    if not batch_first:
        padded = padded.transpose(0, 1).contiguous()
    return padded, lens


def sequence_lists(
    *,
    feature_shape: Sequence[Dim] = (),
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    equal_lengths: bool = False,
) -> st.SearchStrategy[list[torch.Tensor]]:
    """Variable-length sequences as a list of ``batch_size`` tensors, each
    ``[length, *feature_shape]``: what ``pack_sequence`` and ``pad_sequence`` take.

    Lengths are drawn as :func:`sequence_lengths` draws them (unsorted, length 1, all
    equal, the longest equal to ``max_length``); each sequence is a tensor of its own.
    With ``equal_lengths=True`` every sequence of one example has the same length (drawn
    from ``max_length``'s range), as a model that stacks the list (``torch.stack(seqs)``)
    takes it. Tensors, not padding: a model that takes such a list is checked sample by
    sample, the list being its batch.
    """
    args = dict(locals())
    _list_plan(**args)
    strategy = _draw_sequence_lists(**_given(sequence_lists, args))
    strategy._dyncheck_strategy = "sequence_lists"
    return strategy


def _list_plan(
    *,
    feature_shape: Sequence[Dim] = (),
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
    equal_lengths: bool = False,
) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    _check_feature_shape(feature_shape)
    if not isinstance(equal_lengths, bool):
        raise InvalidArgument(f"equal_lengths={equal_lengths!r} must be True or False")
    if equal_lengths:
        batch_size, max_length, *_ = _length_plan(batch_size=batch_size, max_length=max_length)  # validated alike
        lengths = _equal_lengths(batch_size, max_length)
    else:
        lengths = sequence_lengths(batch_size=batch_size, max_length=max_length)
    values = tensors(
        shape=(batch_size, max_length, *feature_shape), dtype=dtype, min_value=min_value, max_value=max_value
    )
    return lengths, values


@st.composite
def _equal_lengths(draw: Any, batch_size: Dim, max_length: Dim) -> torch.Tensor:
    """``batch_size`` lengths, each the padded length ``max_length`` (of at least 1)."""
    with dim_scope():
        n = _draw_dim(draw, batch_size)
        longest = _draw_dim(draw, max_length)
    assume(longest >= 1)
    return torch.full((n,), longest, dtype=torch.long)


@_composite("sequence_lists")
def _draw_sequence_lists(draw: Any, **kwargs: Any) -> list[torch.Tensor]:
    lengths, values = _planned(_list_plan, kwargs)
    with dim_scope():
        lens = draw(lengths)
        padded = draw(values)
    return [padded[row, :length].clone() for row, length in enumerate(lens.tolist())]


def packed_sequences(
    *,
    feature_shape: Sequence[Dim] = (),
    batch_size: Dim = "batch",
    max_length: Dim = "time",
    dtype: torch.dtype = torch.float32,
    min_value: float | None = None,
    max_value: float | None = None,
) -> st.SearchStrategy[torch.nn.utils.rnn.PackedSequence]:
    """Variable-length sequences packed into one ``torch.nn.utils.rnn.PackedSequence``:
    what a collate function hands a model whose forward takes the pack (``self.rnn(packed)``).

    The sequences are drawn as :func:`sequence_lists` draws them (``[length,
    *feature_shape]`` each, unsorted lengths) and packed by ``pack_sequence(...,
    enforce_sorted=False)``, so the pack carries its ``sorted_indices``. Token ids are
    ``dtype=torch.long`` with ``max_value=vocab_size - 1``. Like a list of sequences, the
    pack is itself the batch: checks cut it sequence by sequence and pack the cut again.
    """
    args = dict(locals())
    _list_plan(**args)
    strategy = _draw_packed_sequences(**_given(packed_sequences, args))
    strategy._dyncheck_strategy = "packed_sequences"
    return strategy


@_composite("packed_sequences")
def _draw_packed_sequences(draw: Any, **kwargs: Any) -> torch.nn.utils.rnn.PackedSequence:
    sequences = draw(_draw_sequence_lists(**kwargs))
    return torch.nn.utils.rnn.pack_sequence(sequences, enforce_sorted=False)
