"""What each path costs: FLOPs and forward time of one call on the first example that took it.

For a dynamic net the cheap and the expensive paths are the point of an audit (an early
exit, a skipped block, a router sending tokens to more experts). Each path is measured
on its own example, so the numbers carry the example they were measured on; FLOPs are
also given per sample when the example has a ``batch`` dimension, so paths measured on
different batch sizes compare.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import torch

from dyncheck.audit.report import PathCost
from dyncheck.cloning import clone
from dyncheck.seeding import seeded
from dyncheck.tracing import record_modules

if TYPE_CHECKING:
    from dyncheck.examples import Example
    from dyncheck.target import Target

__all__ = ["measure", "time_one_example"]

#: Forward calls timed per path (after one warm-up); the median is reported.
REPEATS = 5


def _forward(target: Target, model: torch.nn.Module, example: Example) -> tuple[str, ...]:
    with seeded(example.seed), record_modules(model) as calls:
        target.call(model, example.fresh_args())
    return tuple(calls)


def _timed(target: Target, model: torch.nn.Module, example: Example) -> float:
    """Seconds of the model's own forward: seeding and copying the inputs are left out."""
    with seeded(example.seed):
        args = example.fresh_args()
        start = time.perf_counter()
        target.call(model, args)
        return time.perf_counter() - start


def measure(target: Target, prototype: torch.nn.Module, path: tuple[str, ...], example: Example) -> PathCost:
    """FLOPs and median forward time of ``path``, run on ``example`` without autograd on a
    fresh copy of ``prototype`` (the model as built). A model that takes another path on the same example (it
    draws its structure from a generator dyncheck does not seed) gets a note instead of
    numbers that would belong to another path."""
    from torch.utils.flop_counter import FlopCounterMode

    described = example.describe()
    try:
        model = clone(prototype)
        with torch.no_grad():
            counter = FlopCounterMode(display=False)
            with counter:
                taken = _forward(target, model, example)
            if taken != path:
                return PathCost(None, None, None, described, "the model took another path when run again on this example")
            flops = int(counter.get_total_flops())
            _timed(target, model, example)  # warm-up: first-call allocations are not the path's cost
            times = [_timed(target, model, example) for _ in range(REPEATS)]
    except Exception as exc:  # a model that fails here fails its checks, which say why
        return PathCost(None, None, None, described, f"not measured: {type(exc).__name__}: {exc}".splitlines()[0])
    batch = example.dims.get("batch") if example.dims else None
    return PathCost(
        flops=flops,
        flops_per_sample=flops / batch if batch else None,
        forward_seconds=statistics.median(times),
        measured_on=described,
        note=None if flops else "no matrix product, convolution or attention ran: FLOPs count only those",
    )


def time_one_example(target: Target, *, samples: int = 3) -> float:
    """Seconds one forward and backward of ``target`` takes on this machine (the median
    over a few small generated examples): the unit a time budget is divided by."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from dyncheck.examples import from_target, quiet
    from dyncheck.tracing import default_loss

    model = target.build()
    times: list[float] = []

    def timed(example: Any) -> bool:
        start = time.perf_counter()
        with seeded(example.seed):
            output = target.call(model, example.fresh_args())
            loss = (target.spec.loss or default_loss)(output)
            if loss is not None and loss.requires_grad:
                loss.backward()
        times.append(time.perf_counter() - start)
        return False

    try:
        find(from_target(target), timed, settings=quiet(samples))
    except NoSuchExample:
        pass
    return statistics.median(times) if times else 0.0
