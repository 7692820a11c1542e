"""Normalisation layers that divided by almost nothing: an innocent NaN gradient.

A normalisation layer divides by ``sqrt(statistic + eps)``: the variance of what it
normalises (BatchNorm in train mode over the batch, LayerNorm over the features, GroupNorm,
InstanceNorm) or its mean square (RMSNorm). When that input is constant (a batch of
identical or all-zero images reaching a train-mode BatchNorm), the statistic is 0 and the
layer's backward multiplies the gradient by up to ``weight / sqrt(eps)``, 316 at the usual
``eps=1e-5``. A few dozen such layers in a row (EfficientNet's stack of convolution,
BatchNorm and activation) take the gradient past float32's largest value, and ``inf * 0``
puts NaN into a weight's gradient. The model is correct; the example is degenerate for
batch statistics, as a batch of one is.

:func:`constant_norm_overflow` says whether that is why an example's gradients are not
finite: it finds, with forward pre-hooks, the normalisation layers whose input had a
statistic at or below their ``eps`` on the example, then runs the same call on a fresh
model with only those layers' ``eps`` raised to 1 (the gradient scale is then at most the
layer's weight). The same outputs (a constant input normalises to 0 whatever the eps) and
finite gradients there, and the constant inputs are the cause; a NaN that stays (a
``sqrt`` at 0 behind the norms) is the model's. When only some channels of those layers
were constant, eps 1 also changes the others and the outputs differ; then a float64 copy
of the call decides (the same path, finite outputs and gradients): each layer's factor is
the same in float64, whose range holds what overflowed float32, while a NaN from a ``sqrt``
at 0 is NaN in every dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dyncheck.compare import mismatch, tolerances
from dyncheck.tracing import floating_leaves, submodule_hooks

if TYPE_CHECKING:
    from dyncheck.examples import Example
    from dyncheck.invariants._base import Context

__all__ = ["constant_norm_overflow", "constant_norms", "non_finite_gradients", "note_overflow"]

#: The eps the layers that saw a constant input get for the second call.
RAISED_EPS = 1.0


def _eps_attribute(module: nn.Module) -> str | None:
    """The attribute holding the layer's eps, if it is a normalisation layer whose
    statistic comes from its input; None for any other module (and for a BatchNorm that
    normalises by running statistics, in eval mode). Beside PyTorch's layers, a module
    whose class name ends in ``Norm`` with a float ``eps`` or ``variance_epsilon`` (Hugging
    Face's LlamaRMSNorm and T5LayerNorm and their copies): the rerun with it raised decides
    whether it mattered."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        uses_input = module.training or (module.running_mean is None and module.running_var is None)
        return "eps" if uses_input else None
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        uses_input = module.training or not module.track_running_stats
        return "eps" if uses_input else None
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        return "eps"
    if type(module).__name__.endswith("Norm") and isinstance(getattr(module, "weight", None), torch.Tensor):
        # (a weight of its own: not a parametrization such as spectral norm, handed a weight)
        return next((a for a in ("variance_epsilon", "eps") if isinstance(getattr(module, a, None), float)), None)
    return None


def _smallest_statistic(module: nn.Module, x: torch.Tensor) -> float | None:
    """The smallest variance (mean square for an RMSNorm; the smaller of the two for a
    layer of another library) over the groups ``module`` normalises ``x`` in; None when
    the input's layout is not one this module reads."""
    x = x.detach()
    if not x.is_floating_point() or x.numel() == 0:
        return None
    x = x.float() if x.dtype != torch.float64 else x  # (no float64 on every device)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if x.dim() < 2:
            return None
        groups = x.transpose(0, 1).reshape(x.shape[1], -1)
    elif isinstance(module, nn.modules.instancenorm._InstanceNorm):
        spatial = module._get_no_batch_dim() - 1
        if x.dim() <= spatial:
            return None
        groups = x.reshape(-1, math.prod(x.shape[x.dim() - spatial:]))
    elif isinstance(module, nn.GroupNorm):
        if x.dim() < 2:
            return None
        groups = x.reshape(x.shape[0] * module.num_groups, -1)
    else:
        shape = getattr(module, "normalized_shape", None)
        features = math.prod(shape) if isinstance(shape, tuple) and shape else x.shape[-1]
        if x.numel() % features:
            return None
        groups = x.reshape(-1, features)
    if groups.shape[-1] == 0:
        return None
    variance, mean_square = groups.var(-1, unbiased=False), groups.pow(2).mean(-1)
    if type(module).__name__.endswith("RMSNorm"):  # nn.RMSNorm too
        statistic = mean_square
    elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
                             nn.GroupNorm, nn.LayerNorm)):
        statistic = variance
    else:
        statistic = torch.minimum(variance, mean_square)
    return float(statistic.min())


@contextlib.contextmanager
def constant_norms(model: nn.Module) -> Iterator[dict[str, float]]:
    """Inside the block, each normalisation layer of ``model`` called on an input whose
    statistic (variance, or mean square for an RMSNorm) came to its ``eps`` or less, in
    some group: name -> that smallest statistic."""
    found: dict[str, float] = {}

    def hook_for(name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            attribute = _eps_attribute(module)
            if attribute is None or not args or not isinstance(args[0], torch.Tensor):
                return
            try:
                eps = getattr(module, attribute, None)
                if eps is None:  # nn.RMSNorm(eps=None) takes its dtype's machine eps
                    eps = torch.finfo(args[0].dtype).eps if args[0].is_floating_point() else 0.0
                smallest = _smallest_statistic(module, args[0])
            except Exception:  # a layout this reading does not know: the layer is not counted
                return
            if smallest is not None and smallest <= eps:
                found[name] = min(smallest, found.get(name, math.inf))

        return hook

    with submodule_hooks(model, hook_for, pre=True):
        yield found


def non_finite_gradients(model: nn.Module) -> bool:
    """Whether some parameter of ``model`` holds a NaN or inf gradient."""
    return any(
        p.grad is not None and p.grad.is_floating_point() and not bool(torch.isfinite(p.grad).all())
        for p in model.parameters()
    )


def constant_norm_overflow(context: Context, example: Example, *, train: bool | None = None) -> str | None:
    """Why ``example``'s gradients are not finite, when normalisation layers that saw a
    constant input are the whole cause (see the module's docstring); else None. ``train``
    sets the mode of the copies it runs (None: as built), for a check that runs the model
    in eval mode (a LayerNorm normalises its input in both)."""

    def fresh() -> nn.Module:
        made = context.fresh_model()
        return made if train is None else made.train(train)

    model = fresh()
    try:
        with constant_norms(model) as found:
            before = context.run(model, example, record=False, grad=False)
    except Exception:
        return None
    if not found:
        return None
    raised = fresh()
    modules = dict(raised.named_modules())
    for name in found:
        setattr(modules[name], _eps_attribute(modules[name]) or "eps", RAISED_EPS)
    try:
        after = context.run(raised, example, backward=True, record=False)
    except Exception:
        return None
    names = list(found)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    layers = f"{len(names)} normalisation layer{'s' if len(names) != 1 else ''} ({shown})"
    # A constant input normalises to 0 whatever the eps: the forward must be the same call
    # (a layer whose variance was small but not 0 computes otherwise with eps 1, and could
    # move a real NaN's cause away), and only backward's scale may differ.
    if after.modules == before.modules and _same_outputs(before.output, after.output):
        if non_finite_gradients(raised):
            return None
        return (
            f"{layers} normalised a constant input (variance 0: identical or all-zero inputs) and backward "
            "overflowed; with their eps raised to 1 every gradient is finite"
        )
    # Only some channels were constant (a depthwise stack on a tiny image): eps 1 moves the
    # others too. Each such layer multiplies the gradient by up to 1/sqrt(eps) in float32
    # and float64 alike, and float64 holds 10^308 where float32 holds 10^38: gradients that
    # are finite in a float64 copy overflowed float32; a NaN from a sqrt at 0 stays.
    if _finite_in_float64(context, example, before, fresh):
        return (
            f"{layers} normalised an input with a constant channel (variance 0) and backward overflowed "
            "float32; in a float64 copy every gradient is finite"
        )
    return None


def _finite_in_float64(context: Context, example: Example, reference: Any, fresh: Any) -> bool:
    """Whether a float64 copy of the model, on ``example`` in float64, takes the path the
    float32 call ``reference`` took and gives finite outputs and gradients (the outputs are
    not compared: float32's rounding through a stack of such layers is the question)."""
    from dyncheck.agreement import _move, default_dtype
    from dyncheck.examples import Example as _Example

    floating = [p for p in context.prototype().parameters() if p.is_floating_point()]
    if not floating or floating[0].is_complex():
        return False
    device = str(floating[0].device)
    try:
        wide = fresh().to(torch.float64)
        args = _move(dict(example.args), device, torch.float64)
        with default_dtype(torch.float64):
            trace = context.run(wide, _Example(args, example.seed, example.dims), backward=True, record=False)
    except Exception:
        return False
    finite = all(bool(torch.isfinite(t).all()) for _, t in floating_leaves(trace.output))
    return finite and trace.modules == reference.modules and not non_finite_gradients(wide)


def _same_outputs(one: Any, other: Any) -> bool:
    """Whether two calls' outputs have the same leaves, agreeing to their dtype's
    tolerances (integers exactly)."""
    ones, others = dict(floating_leaves(one)), dict(floating_leaves(other))
    if ones.keys() != others.keys():
        return False
    for name, value in ones.items():
        rtol, atol = tolerances(value.dtype)
        if mismatch(value, others[name], rtol=rtol, atol=atol):
            return False
    return True


def note_overflow(context: Context, reason: str) -> None:
    """Count an example whose gradients ``reason`` explains, in the summary's notes (the
    reason of the last one)."""
    context.note(
        "norm_overflows",
        lambda count: f"gradients not judged on 1 example: {reason}" if count == 1
        else f"gradients not judged on {count} examples; on the last, {reason}",
    )
