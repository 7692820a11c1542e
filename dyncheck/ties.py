"""Selections that break ties among equal values the same way in every call.

``torch.topk``, ``sort``, ``argsort``, ``argmax``/``argmin`` and ``max``/``min`` over a
dimension pick among equal values in an order torch leaves unspecified, and that order
changes with the length of the dimension: ``topk(2)`` of three equal scores picks
positions 0 and 1, of the same three scores followed by two ``-inf`` padding scores
positions 1 and 2. A router that sends its top-k tokens to a heavy branch then gives a
sequence alone other outputs than the same sequence padded, on inputs whose scores tie
(an all-zero input, which is what Hypothesis shrinks to), without reading the padding.

:class:`ConsistentTies` replaces those selections, while active, with a stable sort that
takes equal values first index first (``last=True``: last index first), so two runs of
the same values pick the same positions whatever their lengths. A check that finds a
difference runs both sides again under each order: a difference that is gone under both
was the order of a tie; one that stays under either is the model's. Agreeing under both
orders is not enough where a valid position ties with a padding one that is not last (a
token appended after the padding): ``picks`` records what each call picked, for the check
to see that no padding was taken over a valid position (``padding_invariance._tie_order``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["ConsistentTies", "SELECTIONS", "rounded"]

#: The selections whose picks among equal values :class:`ConsistentTies` makes stable.
SELECTIONS = frozenset({"topk", "sort", "argsort", "argmax", "argmin", "max", "min"})


class ConsistentTies(TorchFunctionMode):
    """While active, floating selections (:data:`SELECTIONS`) break ties by position: first
    index first, or last index first with ``last=True``. Values, indices and gradients are
    those of the same pick made by the op itself; ``picks`` records the calls replaced."""

    def __init__(self, last: bool = False, *, ulps: int | None = None, offset: float = 0.0) -> None:
        super().__init__()
        self.last = last
        #: with ``ulps`` (a power of two), values that agree but for their last bits, that
        #: many units in the last place of their own dtype, count as equal (:func:`rounded`):
        #: scores an ulp apart because a matrix product rounded a row in a batch otherwise
        #: than alone are then picked alike
        self.ulps, self.offset = ulps, offset
        #: each replaced call: (its name, the shape of its values, the dimension it picked
        #: along, or None over every value, the positions it picked along it, or None for
        #: a sort, which orders them all)
        self.picks: list[tuple[str, tuple[int, ...], int | None, torch.Tensor | None]] = []

    @property
    def used(self) -> int:
        """How many calls were replaced."""
        return len(self.picks)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in SELECTIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
            result = self._select(name, args[0], list(args[1:]), dict(kwargs))
            if result is not None:
                return result
        return func(*args, **kwargs)

    def _select(self, name: str, values: torch.Tensor, rest: list[Any], kwargs: dict[str, Any]) -> Any:
        """The selection ``name`` made stable, or None to leave the call as it is (a form
        this does not take, NaN among the values, a scalar)."""
        if values.dim() == 0 or bool(torch.isnan(values.detach()).any()) or kwargs.pop("out", None) is not None:
            return None
        if name == "topk":
            k = kwargs.pop("k", rest.pop(0) if rest else None)
            dim = kwargs.pop("dim", rest.pop(0) if rest else -1)
            largest = kwargs.pop("largest", rest.pop(0) if rest else True)
            kwargs.pop("sorted", rest.pop(0) if rest else True)
            if k is None or rest or kwargs:
                return None
            order = self._order(values, dim, largest).narrow(dim, 0, int(k))
            self.picks.append((name, tuple(values.shape), int(dim) % values.dim(), order))
            return torch.return_types.topk((values.gather(dim, order), order))
        if name in ("sort", "argsort"):
            stable = kwargs.pop("stable", None)
            dim = kwargs.pop("dim", rest.pop(0) if rest and _is_dim(rest[0]) else -1)
            descending = kwargs.pop("descending", rest.pop(0) if rest else False)
            if rest or kwargs or stable:  # a stable sort's order is already defined
                return None
            order = self._order(values, dim, descending)
            self.picks.append((name, tuple(values.shape), int(dim) % values.dim(), None))
            return order if name == "argsort" else torch.return_types.sort((values.gather(dim, order), order))
        # argmax, argmin; max and min over a dimension
        dim = kwargs.pop("dim", rest.pop(0) if rest and _is_dim(rest[0]) else None)
        keepdim = kwargs.pop("keepdim", rest.pop(0) if rest else False)
        if rest or kwargs or (dim is None and name in ("max", "min")):
            return None  # max(a, b) elementwise, max() of every value: no index picked
        flat = dim is None
        source = values.reshape(-1) if flat else values
        axis = 0 if flat else dim
        index = self._order(source, axis, name in ("argmax", "max")).narrow(axis, 0, 1)
        self.picks.append((name, tuple(values.shape), None if flat else int(dim) % values.dim(), None if flat else index))
        picked = source.gather(axis, index)
        if flat:
            return index.reshape([1] * values.dim()) if keepdim else index.reshape(())
        if not keepdim:
            index, picked = index.squeeze(axis), picked.squeeze(axis)
        if name in ("argmax", "argmin"):
            return index
        kind = torch.return_types.max if name == "max" else torch.return_types.min
        return kind((picked, index))

    def _order(self, values: torch.Tensor, dim: int, descending: bool) -> torch.Tensor:
        """The positions along ``dim`` in order, equal values by position."""
        keys = values.detach()
        if self.ulps is not None:
            mantissa = round(-math.log2(torch.finfo(keys.dtype).eps))  # 23 bits for float32
            keys = rounded(keys, mantissa - (self.ulps.bit_length() - 1), self.offset)
        if not self.last:
            return torch.sort(keys, dim=dim, descending=descending, stable=True).indices
        size = values.shape[dim]
        flipped = torch.sort(keys.flip(dim), dim=dim, descending=descending, stable=True).indices
        return size - 1 - flipped


def rounded(values: torch.Tensor, bits: int, offset: float = 0.0) -> torch.Tensor:
    """``values`` with their mantissas cut to ``bits`` bits (shifted by ``offset`` of the
    last kept bit first, so that two values either side of one cut meet at another). In
    the same order as ``values``, ties aside: every key is at most the next value's."""
    mantissa, exponent = torch.frexp(values)
    return torch.ldexp(torch.floor(mantissa * 2.0**bits + offset), exponent - bits)


def _is_dim(value: Any) -> bool:
    """An int given as a dimension (a NumPy integer too), not a flag or a tensor."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
