"""Lining up the kinks of one model run in two floating dtypes.

A ReLU's derivative jumps at 0: an input of -1.6e-8 passes no gradient, one of +5e-8
passes all of it. When a pre-activation cancels to a value that small against inputs and
weights of size 0.1-1, float32's rounding of the sum (about eps32 times its terms) decides
its sign, and the float32 and float64 copies of a correct model can take the two sides of
the kink: every gradient upstream of that unit then differs by a whole unit's share, far
beyond any tolerance, while the outputs agree. No perturbation of the inputs explains it
reliably (one move of the inputs flips that sign or does not, by chance), and it is not
the model's arithmetic going wrong: the two copies decided one element's branch otherwise,
on a value neither dtype can tell from the kink.

:class:`Kinks` records, in the run it watches, the input of every call of a function with
a kink at fixed points (``relu``, ``leaky_relu``, ``hardtanh``/``relu6``, ``clamp`` with
number bounds, ``threshold``, ``abs``, ``hardsigmoid``/``hardswish``, and comparisons with
a number). Run over the reference with ``reference`` (the other run's records), it moves
each element whose side of a kink differs from the other run's onto the other run's
value, as a constant offset (the gradient still flows through it) -- but only where the
two runs' values of that element lie within :data:`BAND` float32 ulps of the call's
largest magnitude. A flip further out is a real disagreement: nothing is moved for that
call and :meth:`Kinks.lined_up` says False. Calls that do not line up (another function,
another shape, another count) are left alone and counted the same way.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch.overrides import TorchFunctionMode

from dyncheck.rounding import EPS32
from dyncheck.streams import argument, writes_first

__all__ = ["BAND", "Kinks", "run_aligned"]

R = TypeVar("R")

#: How far apart (in float32 units of the call input's largest magnitude) the two runs'
#: values of an element may lie for its side of a kink to count as rounding's call. The
#: float32 error of an intermediate value accumulates over the layers before it (a 2-layer
#: transformer's pre-activations lie within 1 unit of float64); 100 units is still 1e-5 of
#: the values' scale, where a numerical bug moves whole digits.
BAND = 100.0


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _points(name: str, args: tuple, kwargs: dict) -> tuple[float, ...] | None:
    """The kink points of a call of ``name`` (its first argument's values where the
    function's derivative or result jumps), or None when it has none this module knows."""
    base = name.removesuffix("_")
    if base in {"relu", "leaky_relu", "abs", "absolute"}:
        return (0.0,)
    if base == "relu6":
        return (0.0, 6.0)
    if base in {"hardsigmoid", "hardswish"}:
        return (-3.0, 3.0)
    if base == "threshold":
        value = argument(args, kwargs, 1, "threshold", None)
        return (float(value),) if _number(value) else None
    if base == "hardtanh":
        low, high = argument(args, kwargs, 1, "min_val", -1.0), argument(args, kwargs, 2, "max_val", 1.0)
        return (float(low), float(high)) if _number(low) and _number(high) else None
    if base in {"clamp", "clip"}:
        bounds = (argument(args, kwargs, 1, "min", None), argument(args, kwargs, 2, "max", None))
        if not all(bound is None or _number(bound) for bound in bounds):
            return None
        found = tuple(float(bound) for bound in bounds if bound is not None)
        return found or None
    if base in {"clamp_min", "clamp_max"}:
        value = argument(args, kwargs, 1, "min" if base == "clamp_min" else "max", None)
        return (float(value),) if _number(value) else None
    if base.strip("_") in {"gt", "ge", "lt", "le", "greater", "greater_equal", "less", "less_equal"}:
        value = argument(args, kwargs, 1, "other", None)
        return (float(value),) if _number(value) else None
    return None


#: The functional forms whose ``inplace`` flag (keyword, or positional at this index) writes
#: into their first argument (torch's own forms of these names take no such argument).
_INPLACE_FLAG = {"relu": 1, "relu6": 1, "hardsigmoid": 1, "hardswish": 1, "leaky_relu": 2, "hardtanh": 3, "threshold": 3}


def _sides(values: torch.Tensor, points: tuple[float, ...]) -> torch.Tensor:
    """For each element, on which side of each kink point it lies: one code per element."""
    code = torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    for point in points:
        code = code * 3 + torch.sign(values - point).to(torch.int64) + 1
    return code


class Kinks(TorchFunctionMode):
    """Records the kinked calls of a run (:attr:`records`); with ``reference`` (another
    run's records, of the same model and example in another dtype), moves each element
    whose side of a kink differs from the reference's onto the reference's value, within
    :data:`BAND` (see the module docstring)."""

    def __init__(self, reference: list[tuple[str, torch.Tensor]] | None = None) -> None:
        super().__init__()
        self.reference = reference
        #: (function name, its input as it was, detached) of every kinked call, in order;
        #: only while recording (without ``reference``)
        self.records: list[tuple[str, torch.Tensor]] = []
        #: kinked calls seen
        self.calls = 0
        #: elements moved onto the reference's side, and calls that could not be lined up
        #: (another function or shape, or a flip beyond the band)
        self.moved = 0
        self.unaligned = 0

    def lined_up(self) -> bool:
        """Whether every kinked call lined up with the reference's, within the band."""
        return not self.unaligned and self.calls == len(self.reference or ())

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        values = args[0] if args else None
        if not isinstance(values, torch.Tensor) or not values.is_floating_point():
            return func(*args, **kwargs)
        points = _points(name, args, kwargs)
        if points is None:
            return func(*args, **kwargs)
        index = self.calls
        self.calls += 1
        if self.reference is None:
            self.records.append((name, values.detach().clone()))  # before an in-place call changes it
            return func(*args, **kwargs)
        offset = self._offset(index, name, values, points)
        if offset is None:
            return func(*args, **kwargs)
        if writes_first(name, args, kwargs, _INPLACE_FLAG):
            values.add_(offset)
            return func(*args, **kwargs)
        return func(values + offset, *args[1:], **kwargs)

    def _offset(self, index: int, name: str, values: torch.Tensor, points: tuple[float, ...]) -> torch.Tensor | None:
        """The constant to add to ``values`` so that the elements on another side of a kink
        than in the reference take the reference's values; None when nothing moves."""
        if index >= len(self.reference):
            self.unaligned += 1
            return None
        other_name, other = self.reference[index]
        if other_name != name or other.shape != values.shape:
            self.unaligned += 1
            return None
        mine = values.detach()
        theirs = other.to(device=mine.device, dtype=mine.dtype)
        flipped = _sides(mine, points) != _sides(theirs, points)
        if not bool(flipped.any()):
            return None
        scale = float(mine.abs().max())
        apart = (mine - theirs).abs()
        # Written so that a NaN (a value not finite on one side) is beyond the band.
        if not bool((apart[flipped] <= BAND * EPS32 * scale).all()):
            self.unaligned += 1
            return None
        self.moved += int(flipped.sum())
        return torch.where(flipped, theirs - mine, torch.zeros_like(mine))


def run_aligned(first: Callable[[], R], other: Callable[[], R]) -> tuple[R, R] | None:
    """``first()`` recording its kinked calls, then ``other()`` taking ``first``'s side of
    every kink the two decided otherwise within the band; None when nothing moved or the
    calls did not line up (then the runs as they were are what there is to compare)."""
    watched = Kinks()
    with watched:
        ran = first()
    aligned = Kinks(watched.records)
    with aligned:
        moved = other()
    if not aligned.moved or not aligned.lined_up():
        return None
    return ran, moved
