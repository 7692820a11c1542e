"""batch_invariance: in eval mode, a sample's output does not depend on the rest of its batch.

Each sample's output in a batch equals the output of that sample alone, and permuting the
batch permutes the outputs — with the same seed, so a stochastic model draws the same
numbers. Catches branching on batch statistics (``if x.mean() > 0``), per-sample randomness
tied to batch position (``torch.rand(batch_size)``), capacity-limited routing that drops
samples. A model coupled across the batch by design says so with
``Spec(skip={"batch_invariance": "..."})``.

The batch axis of each argument and output is the first axis whose size is the example's
``"batch"`` size (arguments that have none, like a control value, are shared).
"""

from __future__ import annotations

from typing import Any

import torch

from dyncheck.agreement import _close
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
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
        axes = {name: _batch_axis(value, size) for name, value in args.items()}
        if not any(axis is not None for axis in axes.values()):
            return
        whole = dict(floating_leaves(self._run(context, model, args, example.seed)))
        out_axes = {name: _batch_axis(t, size) for name, t in whole.items()}
        tolerance = context.settings.tolerances.get(self.name) if context.settings else None
        findings = []
        for row in range(size):
            index = torch.tensor([row])
            alone = dict(floating_leaves(self._run(
                context, model, {n: _take(v, axes[n], index) for n, v in args.items()}, example.seed
            )))
            for name, tensor in whole.items():
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
            order = torch.arange(size - 1, -1, -1)
            permuted = dict(floating_leaves(self._run(
                context, model, {n: _take(v, axes[n], order) for n, v in args.items()}, example.seed
            )))
            for name, tensor in whole.items():
                axis = out_axes[name]
                if axis is None or name not in permuted:
                    continue
                lines = _close(permuted[name], tensor.index_select(axis, order), tolerance)
                if lines:
                    findings.append(
                        f"reversing the batch does not reverse {name}: " + "; ".join(lines)
                    )
        if findings:
            raise InvariantViolation(
                findings[0] + " — the output of a sample depends on the rest of the batch "
                "(batch statistics, per-position randomness, capacity limits).",
                path=context.last_path,
            )
