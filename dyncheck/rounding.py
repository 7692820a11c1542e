"""Moving values by one unit in the last place: how a check learns what rounding alone does.

Two computations of the same thing in float32 (a batch and one of its rows, a float32 model
and its float64 copy) differ by rounding. Most results hardly move when an input moves by
one ulp, but a steep one (a softmax saturated by logits in the thousands) is reshuffled
by it. What a one-ulp move of the inputs changes in a result is the part of a difference
rounding can explain: checks that compare two computations give it as a margin.

Some results do not move under a one-ulp move of the inputs and are still rounding noise:
a softmax saturated to exactly 1.0 in float32 makes its backward's ``g - sum(p * g)``
cancel to exactly 0 for every nearby input, where float64 keeps a small true value.
:class:`RoundingNoise` finds that part: float64 arithmetic with every operation's result
moved by a random relative amount of float32's size (Monte Carlo arithmetic), so a
difference that float32's rounding of intermediate values makes shows up in float64.
"""

from __future__ import annotations

from typing import Any

import torch

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

__all__ = ["EPS32", "SENSITIVITY_FACTOR", "RoundingNoise", "largest_difference", "nudged"]

#: float32's unit roundoff scale: the relative size of rounding one value to float32.
EPS32 = torch.finfo(torch.float32).eps

#: A difference within this many times what a one-ulp move changes is rounding.
SENSITIVITY_FACTOR = 10.0


def nudged(value: Any, generator: torch.Generator) -> Any:
    """``value`` with every floating tensor element moved one ulp up or down (the direction
    drawn from ``generator``), in its own dtype; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        up = torch.randint(0, 2, value.shape, generator=generator).to(value.device).bool()
        inf = torch.tensor(float("inf"), dtype=value.dtype, device=value.device)
        return torch.nextafter(value, torch.where(up, inf, -inf))
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return value._replace(data=nudged(value.data, generator))
    if isinstance(value, dict):
        return {key: nudged(item, generator) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(nudged(item, generator) for item in value)
    return value


def largest_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest finite absolute difference between ``a`` and ``b`` (0 for other shapes)."""
    if a.shape != b.shape:
        return 0.0
    difference = (a.detach().to(torch.float64) - b.detach().to(torch.float64)).abs()
    finite = difference[torch.isfinite(difference)]
    return float(finite.max()) if finite.numel() else 0.0


#: Operations whose float32 result is exact, or that move storage rather than compute
#: values: moving their results in place would add rounding no float32 run makes (a fill
#: of ``finfo(float64).min`` would overflow to ``-inf``), or move another tensor's storage.
_EXACT = frozenset(
    getattr(torch.ops.aten, name)
    for name in (
        "copy_", "fill_", "zero_", "masked_fill_", "index_fill_", "index_put_", "set_", "resize_", "resize_as_",
        "detach_", "requires_grad_",
        "as_strided_", "squeeze_", "unsqueeze_", "transpose_", "t_", "swapaxes_", "swapdims_",
    )
    if hasattr(torch.ops.aten, name)
)


class RoundingNoise(TorchDispatchMode):
    """While active, every float64 tensor an operation computes (forward and backward) is
    multiplied by ``1 + eps32 * u``, ``u`` uniform in [-1, 1] from ``generator``: float64
    arithmetic with float32's rounding of each intermediate value. An in-place operation's
    result is moved in place (``torch.nn.GRU``'s CPU kernel computes its gates as
    ``.sigmoid_()`` and ``.tanh_()``: a gate saturated to exactly 1.0 in float32 has a
    derivative of exactly 0, where float64 keeps a small one); views, and the operations that
    compute nothing a float32 run would round (:data:`_EXACT`: a copy, a fill, storage
    plumbing), are left alone. How far a run under it moves from the plain float64 run is
    how far float32's rounding of the same operations can move the result."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Otherwise torch wraps __torch_dispatch__ in dynamo's disable, whose first call
        # imports torch._dynamo (about 2 s); this mode never runs under torch.compile.
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.is_view or func.overloadpacket in _EXACT:
            return out
        if func._schema.is_mutable:
            # Below autograd: moving the result in place neither records an operation nor
            # bumps the version a backward checks, as if the operation had rounded it.
            tree_map(self._round_in_place, out)
            return out
        return tree_map(self._round, out)

    def _round_in_place(self, value: Any) -> None:
        if isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.numel():
            try:
                value.mul_(self._round(torch.ones_like(value)))
            except RuntimeError:  # an expanded tensor (stride 0) an op may write once, not each element
                pass

    def _round(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or value.dtype != torch.float64 or not value.numel():
            return value
        u = torch.rand(value.shape, generator=self.generator, dtype=torch.float64) * 2 - 1
        return value * (1 + EPS32 * u.to(value.device))

