"""What each path costs: FLOPs and forward time of one call on the first example that took it.

For a dynamic net the cheap and the expensive paths are the point of an audit (an early
exit, a skipped block, a router sending tokens to more experts). Each path is measured
on its own example, so the numbers carry the example they were measured on; FLOPs are
also given per sample when the example has a ``batch`` dimension, so paths measured on
different batch sizes compare.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
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
            with counter, _uncounted_recurrences(model, counter) as recurrent:
                taken = _forward(target, model, example)
            if taken != path:
                return PathCost(None, None, None, described, "the model took another path when run again on this example")
            flops = int(counter.get_total_flops()) + sum(recurrent)
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


#: Gates per step of each recurrent layer: the matrix products a step runs are that many times
#: (input + hidden) by hidden.
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


@contextlib.contextmanager
def _uncounted_recurrences(model: torch.nn.Module, counter: Any) -> Iterator[list[int]]:
    """The FLOPs of the recurrent layers' calls that ``counter`` counted none of: torch runs
    an ``nn.LSTM`` on a padded tensor in one fused kernel that ``FlopCounterMode`` has no
    formula for (a packed one, and a GRU, are counted). Such a call's FLOPs are its matrix
    products, as torch counts them for a GRU: 2 × steps × gates × hidden × (input + hidden)
    for each layer and direction, the steps every sample's (a pack's data rows)."""
    found: list[int] = []
    before: dict[int, float] = {}
    handles = []

    def pre(module: torch.nn.Module, args: Any, kwargs: Any) -> None:
        before[id(module)] = counter.get_total_flops()

    def post(module: torch.nn.RNNBase, args: Any, kwargs: Any, output: Any) -> None:
        if counter.get_total_flops() != before.pop(id(module), None):
            return
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.nn.utils.rnn.PackedSequence):
            steps = x.data.shape[0]
        elif isinstance(x, torch.Tensor) and x.dim() == 3:
            steps = x.shape[0] * x.shape[1]
        elif isinstance(x, torch.Tensor) and x.dim() == 2:  # one sequence, unbatched: [time, features]
            steps = x.shape[0]
        else:
            return
        hidden = module.proj_size or module.hidden_size if isinstance(module, torch.nn.LSTM) else module.hidden_size
        directions = 2 if module.bidirectional else 1
        total = 0
        for layer in range(module.num_layers):
            width = module.input_size if layer == 0 else hidden * directions
            total += 2 * steps * _GATES.get(module.mode, 1) * module.hidden_size * (width + hidden) * directions
            if hidden != module.hidden_size:  # an LSTM's projection of each step's hidden state
                total += 2 * steps * module.hidden_size * hidden * directions
        found.append(total)

    for module in model.modules():
        if isinstance(module, torch.nn.RNNBase):
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


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
