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
``sqrt`` at 0 behind the norms) is the model's. When only some groups of those layers
were constant (some channels, some rows), eps 1 also changes the others and the outputs
differ; then the call runs again with the gradient every normalisation layer sends back
scaled as eps 1 would scale it, the forward unchanged: finite gradients there, and the
norms' backward was the whole cause, while an overflow or a NaN anywhere else stays.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
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


def _group_statistics(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Any] | None:
    """The statistic (variance; mean square for an RMSNorm; the smaller of the two for a
    layer of another library) of each group ``module`` normalises ``x`` in, and a function
    that spreads one value per group over ``x``'s shape; None when the input's layout is not
    one this module reads."""
    x = x.detach()
    if not x.is_floating_point() or x.numel() == 0:
        return None
    shape = x.shape
    x = x.float() if x.dtype != torch.float64 else x  # (no float64 on every device)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if x.dim() < 2:
            return None
        groups = x.transpose(0, 1).reshape(x.shape[1], -1)

        def spread(per_group: torch.Tensor) -> torch.Tensor:
            return per_group.reshape(1, shape[1], *([1] * (len(shape) - 2))).expand(shape)
    elif isinstance(module, nn.modules.instancenorm._InstanceNorm):
        spatial = module._get_no_batch_dim() - 1
        if x.dim() <= spatial:
            return None
        groups = x.reshape(-1, math.prod(x.shape[x.dim() - spatial:]))

        def spread(per_group: torch.Tensor) -> torch.Tensor:
            return per_group.reshape(*shape[:len(shape) - spatial], *([1] * spatial)).expand(shape)
    elif isinstance(module, nn.GroupNorm):
        if x.dim() < 2:
            return None
        groups = x.reshape(x.shape[0] * module.num_groups, -1)

        def spread(per_group: torch.Tensor) -> torch.Tensor:
            rest = groups.shape[-1]
            return per_group.reshape(shape[0], module.num_groups, 1).expand(shape[0], module.num_groups, rest).reshape(shape)
    else:
        normalized = getattr(module, "normalized_shape", None)
        features = math.prod(normalized) if isinstance(normalized, tuple) and normalized else x.shape[-1]
        if x.numel() % features:
            return None
        groups = x.reshape(-1, features)

        def spread(per_group: torch.Tensor) -> torch.Tensor:
            return per_group.reshape(-1, 1).expand(-1, features).reshape(shape)
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
    return statistic, spread


def _smallest_statistic(module: nn.Module, x: torch.Tensor) -> float | None:
    """The smallest statistic over the groups ``module`` normalises ``x`` in
    (:func:`_group_statistics`); None when the input's layout is not one this module reads."""
    found = _group_statistics(module, x)
    return None if found is None else float(found[0].min())


def _eps(module: nn.Module, x: torch.Tensor) -> float:
    eps = getattr(module, _eps_attribute(module) or "eps", None)
    if eps is None:  # nn.RMSNorm(eps=None) takes its dtype's machine eps
        eps = torch.finfo(x.dtype).eps if x.is_floating_point() else 0.0
    return float(eps)


class _Damped(torch.autograd.Function):
    """The identity in forward; in backward, the gradient times ``scale`` (elementwise)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (scale,) = ctx.saved_tensors
        return grad * scale.to(grad.dtype), None


@contextlib.contextmanager
def _damped(model: nn.Module, names: Iterable[str]) -> Iterator[None]:
    """Inside the block, the gradient that each named normalisation layer sends back
    through each group of its input is scaled by ``sqrt((statistic + eps) / (statistic +
    1))``: about what eps raised to 1 would give it (exactly so for a constant group, whose
    normalised values are 0 either way). The forward is unchanged."""
    modules = dict(model.named_modules())

    def hook(module: nn.Module, args: tuple[Any, ...]) -> Any:
        if not args or not isinstance(args[0], torch.Tensor) or not args[0].requires_grad:
            return None
        x = args[0]
        found = _group_statistics(module, x)
        if found is None:
            return None
        statistic, spread = found
        eps = _eps(module, x)
        scale = ((statistic + eps) / (statistic + 1.0)).sqrt()
        return (_Damped.apply(x, spread(scale).to(x.device)), *args[1:])

    handles = [modules[name].register_forward_pre_hook(hook) for name in names if name in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


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
                eps = _eps(module, args[0])
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
    # Only some groups were constant (a channel of a depthwise stack on a tiny image, a row
    # of zeros): eps 1 moves the others too. The same call again with the gradient every
    # normalisation layer sends back scaled as eps 1 would scale it, the forward unchanged
    # (groups of small but not zero variance beside the constant ones amplify too): finite
    # gradients, and the norms' backward was the whole cause; an overflow or a NaN
    # anywhere else stays.
    damped = fresh()
    every = [name for name, module in damped.named_modules() if _eps_attribute(module) is not None]
    try:
        with _damped(damped, every):
            trace = context.run(damped, example, backward=True, record=False)
    except Exception:
        return None
    if trace.modules != before.modules or non_finite_gradients(damped):
        return None
    return (
        f"{layers} normalised an input with constant groups (variance 0 in some channels or rows) and backward "
        "overflowed; with every normalisation layer's backward scaled as eps 1 would scale it (the forward "
        "unchanged), every gradient is finite"
    )


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
