"""Moving values by one unit in the last place: how a check learns what rounding alone does.

Two computations of the same thing in float32 (a batch and one of its rows, a float32 model
and its float64 copy) differ by rounding. Most results hardly move when an input moves by
one ulp, but a steep one (a softmax saturated by logits in the thousands) is reshuffled
by it. What a one-ulp move of the inputs changes in a result is the part of a difference
rounding can explain: checks that compare two computations give it as a margin.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["SENSITIVITY_FACTOR", "largest_difference", "nudged"]

#: A difference within this many times what a one-ulp move changes is rounding.
SENSITIVITY_FACTOR = 10.0


def nudged(value: Any, generator: torch.Generator) -> Any:
    """``value`` with every floating tensor element moved one ulp up or down (the direction
    drawn from ``generator``), in its own dtype; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        up = torch.randint(0, 2, value.shape, generator=generator).to(value.device).bool()
        inf = torch.tensor(float("inf"), dtype=value.dtype, device=value.device)
        return torch.nextafter(value, torch.where(up, inf, -inf))
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
