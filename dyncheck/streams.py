"""Lining up the random draws of one model run in two floating dtypes.

torch's generators give another stream for another dtype from one seed:
``torch.rand_like(x)`` on a float64 ``x`` draws other numbers than on a float32 ``x``
(``uniform_``, ``normal_``, ``randn(..., dtype=x.dtype)`` likewise). A model that draws
random numbers in eval mode in its own dtype is then not comparable with its float64 copy
as it is, though nothing is wrong with it.

:class:`Draws` records the random calls of the reference run (their op and the floating
dtypes they were given), in order. Run again over the other run, it makes each call that
is the reference's call with the other dtype (the i-th random call, same op, the dtypes
differing only as the two runs do) in the reference's dtype, and casts the result back:
both runs then draw the same numbers, up to the rounding of the cast. Calls that do not
line up (another op, another count) are left alone and counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from dyncheck.tracing import flat_items

__all__ = ["RANDOM_OPS", "Draws", "argument", "writes_first"]

#: The torch functions and Tensor methods that draw from a generator in the dtype of their
#: inputs or their ``dtype`` argument.
RANDOM_OPS = frozenset({
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "normal", "bernoulli", "poisson",
    "multinomial", "binomial", "_standard_gamma", "_sample_dirichlet", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_dropout", "feature_alpha_dropout", "native_dropout", "rrelu",
    "rrelu_", "gumbel_softmax", "uniform_", "normal_", "bernoulli_", "exponential_", "cauchy_", "log_normal_",
    "geometric_", "random_", "dropout_", "alpha_dropout_", "feature_alpha_dropout_",
})

#: The functional forms whose ``inplace`` flag (keyword, or positional at this index) writes
#: into their first argument.
_INPLACE_FLAG = {
    "dropout": 3, "dropout1d": 3, "dropout2d": 3, "dropout3d": 3, "alpha_dropout": 3,
    "feature_alpha_dropout": 3, "rrelu": 4,
}


def _dtypes(args: tuple, kwargs: dict) -> tuple[torch.dtype, ...]:
    """The floating dtypes a call is given: of its floating tensors, and dtype arguments."""
    found = []
    for value in flat_items((args, kwargs)):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            found.append(value.dtype)
        elif isinstance(value, torch.dtype) and value.is_floating_point:
            found.append(value)
    return tuple(found)


def _convert(value: Any, old: torch.dtype, new: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype == old:
        return value.to(new)
    if isinstance(value, torch.dtype) and value == old:
        return new
    if isinstance(value, (list, tuple)):
        items = [_convert(v, old, new) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: _convert(v, old, new) for k, v in value.items()}
    return value


#: The forms that draw only when training (keyword, positional index, default) with p > 0.
_TRAINING_FLAG = {
    "dropout": ("training", 2, True), "dropout1d": ("training", 2, True), "dropout2d": ("training", 2, True),
    "dropout3d": ("training", 2, True), "alpha_dropout": ("training", 2, False),
    "feature_alpha_dropout": ("training", 2, False), "feature_dropout": ("train", 2, True),
    "native_dropout": ("train", 2, True), "dropout_": ("train", 2, True), "alpha_dropout_": ("train", 2, True),
    "feature_alpha_dropout_": ("train", 2, True), "rrelu": ("training", 3, False), "rrelu_": ("training", 3, False),
}


def _draws(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether a call of a random op draws: dropout in eval mode, or with p=0, does not."""
    flag = _TRAINING_FLAG.get(name)
    if flag is None:
        return True
    keyword, index, default = flag
    training = argument(args, kwargs, index, keyword, default)
    if name.startswith("rrelu"):
        return bool(training)
    p = argument(args, kwargs, 1, "p", 0.5)
    return bool(training) and float(p) > 0


def argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    """A call's argument ``name``, given by keyword or at position ``index``, else ``default``."""
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def writes_first(name: str, args: tuple, kwargs: dict, flags: dict[str, int]) -> bool:
    """Whether a call of ``name`` writes into its first argument: an in-place method
    (``relu_``, ``uniform_``; not a dunder such as ``__gt__``) or a functional form whose
    ``inplace`` flag (keyword, or positional at the index ``flags`` gives) is set."""
    if name.endswith("_") and not name.endswith("__"):
        return True
    index = flags.get(name)
    return index is not None and bool(argument(args, kwargs, index, "inplace", False))


class Draws(TorchFunctionMode):
    """Records the random calls of a run; with ``reference`` (the calls a run in
    ``reference_dtype`` recorded) and ``dtype`` (this run's dtype), draws each call that
    lines up in ``reference_dtype`` and casts the result back to ``dtype``."""

    def __init__(
        self,
        dtype: torch.dtype | None = None,
        reference: list[tuple[str, tuple[torch.dtype, ...]]] | None = None,
        reference_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dtype = dtype
        self.reference = reference
        self.reference_dtype = reference_dtype
        #: (op, floating dtypes given) of every random call, in order
        self.calls: list[tuple[str, tuple[torch.dtype, ...]]] = []
        #: calls in this run's dtype drawn in the reference's instead, and those that did
        #: not line up with the reference's calls (left as they were)
        self.aligned = 0
        self.unaligned = 0

    def lined_up(self) -> bool | None:
        """Whether every call drawn in this run's dtype was lined up with the reference's
        (and both made as many random calls); None when no call was in this run's dtype
        (the two runs draw the same streams as they are)."""
        if not self.aligned and not self.unaligned:
            return None
        return not self.unaligned and len(self.calls) == len(self.reference or ())

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name not in RANDOM_OPS or not _draws(name, args, kwargs):
            return func(*args, **kwargs)
        given = _dtypes(args, kwargs)
        index = len(self.calls)
        self.calls.append((name, given))
        if self.reference is None or self.dtype is None or self.dtype not in given:
            return func(*args, **kwargs)
        promoted = tuple(self.reference_dtype if d == self.dtype else d for d in given)
        if index >= len(self.reference) or self.reference[index] != (name, promoted):
            self.unaligned += 1
            return func(*args, **kwargs)
        self.aligned += 1
        old, new = self.dtype, self.reference_dtype
        result = func(*_convert(args, old, new), **_convert(kwargs, old, new))
        # nn.init.uniform_ hands its tensor on by keyword (tensor=...), a method by position
        written = args[0] if args else next((kwargs[k] for k in ("tensor", "self", "input") if k in kwargs), None)
        if writes_first(name, args, kwargs, _INPLACE_FLAG) and isinstance(written, torch.Tensor):
            written.copy_(result if isinstance(result, torch.Tensor) else written)
            return written
        return _convert(result, new, old)
