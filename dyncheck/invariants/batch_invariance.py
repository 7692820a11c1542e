"""batch_invariance: in eval mode, a sample's output does not depend on the rest of its batch.

Each sample's output in a batch equals the output of that sample alone, and permuting the
batch permutes the outputs — with the same seed, so a stochastic model draws the same
numbers. Catches branching on batch statistics (``if x.mean() > 0``), per-sample randomness
tied to batch position (``torch.rand(batch_size)``), capacity-limited routing that drops
samples. A model coupled across the batch by design says so with
``Spec(skip={"batch_invariance": "..."})``.

The batch axis of an argument is the one its strategy names ``"batch"``
(``tensors(shape=("time", "batch", 8))``), else its first axis (of the first two) whose size
is the example's ``"batch"`` size; arguments that have none, like a control value, are
shared. The batch axis of an output is the one of the batch's size where the output of a
sample alone has size 1 and every other axis agrees (a time-major output whose time equals
the batch size is read right), else likewise its first axis of the batch's size.
"""

from __future__ import annotations

from typing import Any

import torch

from dyncheck.agreement import _close
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example, strategy_arguments
from dyncheck.invariants._base import Context, Invariant
from dyncheck.seeding import seeded
from dyncheck.tracing import floating_leaves

__all__ = ["BatchInvariance"]


def _batch_axis(value: Any, size: int) -> int | None:
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return None
    for axis in range(min(value.dim(), 2)):
        if value.shape[axis] == size:
            return axis
    return None


def _named_batch_axis(strategy: Any, value: Any, size: int) -> int | None:
    """The axis a strategy's named shape calls "batch", else the first of the batch's size."""
    shape = strategy_arguments(strategy).get("shape")
    if isinstance(value, torch.Tensor) and isinstance(shape, (tuple, list)) and len(shape) == value.dim():
        if "batch" in shape:
            return list(shape).index("batch")
    return _batch_axis(value, size)


def _output_batch_axis(whole: torch.Tensor, alone: torch.Tensor | None, size: int) -> int | None:
    """The batch axis of an output: where the batch has ``size`` and a sample alone 1."""
    if alone is not None and alone.dim() == whole.dim():
        candidates = [
            axis for axis in range(whole.dim())
            if whole.shape[axis] == size and alone.shape[axis] == 1
            and all(whole.shape[a] == alone.shape[a] for a in range(whole.dim()) if a != axis)
        ]
        if len(candidates) == 1:
            return candidates[0]
    return _batch_axis(whole, size)


def _take(value: Any, axis: int | None, index: torch.Tensor) -> Any:
    return value if axis is None else value.index_select(axis, index)


class BatchInvariance(Invariant):
    name = "batch_invariance"
    summary = (
        "in eval mode each sample's output equals its output alone, and permuting the batch "
        "permutes the outputs"
    )

    def _run(self, context: Context, model: torch.nn.Module, args: dict[str, Any], seed: int) -> Any:
        try:
            with seeded(seed), torch.no_grad():
                return context.target.call(model, args)
        except Exception as exc:
            raise ModelError("forward", exc) from exc

    def check(self, context: Context, example: Example) -> None:
        size = example.dims.get("batch")
        if size is None or size < 2:
            return  # one sample: nothing to couple (a spec without a "batch" dim never gets here)
        model = context.fresh_model().eval()
        args = example.fresh_args()
        inputs = context.target.spec.inputs
        axes = {name: _named_batch_axis(inputs.get(name), value, size) for name, value in args.items()}
        if not any(axis is not None for axis in axes.values()):
            return
        trace = context.run(model, Example(args, example.seed, example.dims), grad=False)
        whole = dict(floating_leaves(trace.output))
        out_axes: dict[str, int | None] = {}
        tolerance = context.settings.tolerances.get(self.name) if context.settings else None
        findings = []
        for row in range(size):
            index = torch.tensor([row])
            alone = dict(floating_leaves(self._run(
                context, model, {n: _take(v, axes[n], index) for n, v in args.items()}, example.seed
            )))
            for name, tensor in whole.items():
                if name not in out_axes:
                    out_axes[name] = _output_batch_axis(tensor, alone.get(name), size)
                axis = out_axes[name]
                if axis is None or name not in alone:
                    continue
                lines = _close(alone[name], tensor.index_select(axis, index), tolerance)
                if lines:
                    findings.append(
                        f"sample {row} differs from the same sample run alone ({name}): " + "; ".join(lines)
                    )
                    break
            if findings:
                break
        if not findings:
            # A permutation drawn from the example's seed (a reversal when it draws the identity).
            order = torch.randperm(size, generator=torch.Generator().manual_seed(example.seed))
            if torch.equal(order, torch.arange(size)):
                order = torch.arange(size - 1, -1, -1)
            permuted = dict(floating_leaves(self._run(
                context, model, {n: _take(v, axes[n], order) for n, v in args.items()}, example.seed
            )))
            for name, tensor in whole.items():
                axis = out_axes.get(name)
                if axis is None or name not in permuted:
                    continue
                lines = _close(permuted[name], tensor.index_select(axis, order), tolerance)
                if lines:
                    findings.append(
                        f"permuting the batch (order {order.tolist()}) does not permute {name} alike: "
                        + "; ".join(lines)
                    )
        if findings:
            raise InvariantViolation(
                findings[0] + " — the output of a sample depends on the rest of the batch "
                "(batch statistics, per-position randomness, capacity limits).",
                path=trace.modules,
            )
