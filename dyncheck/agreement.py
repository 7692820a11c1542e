"""The differential core: one model, one example, two configurations, compared.

A :class:`Config` says where and how the model runs (device, floating dtype, and an
optional ``patch`` applied to the model copy, e.g. ``torch.compile`` or a deliberately
perturbed operation). :func:`run_config` runs the spec's model on an example under the
example's seed in eval mode (dropout must not make two configurations disagree by design),
back-propagates the spec's loss and returns outputs, parameter gradients and the path.
:func:`compare` turns two runs into findings, telling a **path divergence** (a
data-dependent branch flipped because rounding differed) apart from a numeric mismatch
of outputs or gradients.

Tolerances are torch.testing's per-dtype defaults, the loosest of the two sides, with
``atol`` scaled by the reference tensor's largest magnitude: rounding differences between
devices and dtypes grow with the values' scale, and the issue a check looks for (an
overflow, a wrong kernel, a perturbed op) is far larger. ``[tool.dyncheck.<invariant>]``
in pyproject.toml overrides them (``rtol`` and ``atol`` together).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dyncheck.casting import cast
from dyncheck.compare import mismatch, tolerances
from dyncheck.errors import InvalidArgument, ModelError
from dyncheck.examples import Example
from dyncheck.paths import Layout, PathSet
from dyncheck.seeding import seeded
from dyncheck.tracing import (
    check_loss,
    densify_grads,
    floating_leaves,
    loss_of,
    missing_output,
    observe_output,
    record_modules,
    tuple_like,
)

__all__ = [
    "Config",
    "Run",
    "close",
    "compare",
    "default_dtype",
    "exact_attention",
    "nothing_compared",
    "numeric_findings",
    "parse_devices",
    "run_config",
    "seed_dependence",
    "tf32_disabled",
]


@dataclass(frozen=True)
class Config:
    """One way to run a model: its device, its floating dtype, and an optional patch of
    the model copy (``torch.compile``, a perturbation) returning the module to call."""

    name: str
    device: str = "cpu"
    dtype: torch.dtype | None = None
    patch: Callable[[nn.Module], nn.Module] | None = None


@dataclass
class Run:
    config: Config
    outputs: list[tuple[str, torch.Tensor]]
    grads: dict[str, torch.Tensor]
    path: tuple[str, ...]
    model: nn.Module
    #: the model's output as returned
    output: Any = None


def _move(value: Any, device: str, dtype: torch.dtype | None) -> Any:
    if isinstance(value, torch.Tensor):
        if dtype is not None and value.is_floating_point():
            return value.to(device=device, dtype=dtype)
        return value.to(device)
    if isinstance(value, nn.utils.rnn.PackedSequence):
        # its batch_sizes stay on the CPU, as PackedSequence.to keeps them
        data = _move(value.data, device, dtype)
        order = (None if i is None else i.to(data.device) for i in (value.sorted_indices, value.unsorted_indices))
        return type(value)(data, value.batch_sizes, *order)
    if isinstance(value, tuple):
        return tuple_like(value, (_move(v, device, dtype) for v in value))
    if isinstance(value, list):
        return [_move(v, device, dtype) for v in value]
    if isinstance(value, dict):
        return {k: _move(v, device, dtype) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a batch as a dataclass (Batch(x=..., lengths=...)): its fields moved on a copy, with
        # no __init__ or __post_init__ run again (a post-init that reshapes would reshape twice)
        moved = copy.copy(value)
        for f in dataclasses.fields(value):
            if hasattr(value, f.name):
                object.__setattr__(moved, f.name, _move(getattr(value, f.name), device, dtype))
        return moved
    if hasattr(value, "batch_size") and callable(getattr(value, "apply", None)):
        # tensordict's TensorDict (torchrl's modules take one): each leaf moved
        return value.apply(lambda leaf: _move(leaf, device, dtype))
    return value


#: The float32 precision settings of torch >= 2.9, as (object, attribute). torch refuses to
#: mix them with the legacy ``allow_tf32`` flags once either has been set, so where they
#: exist they are the only ones read or written.
def _precision_settings() -> list[tuple[Any, str]]:
    backends = torch.backends
    return [
        (backends, "fp32_precision"),
        (backends.cuda.matmul, "fp32_precision"),
        (backends.cudnn, "fp32_precision"),
        (backends.cudnn.conv, "fp32_precision"),
        (backends.cudnn.rnn, "fp32_precision"),
    ]


@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """TF32 off for matmul, convolutions and RNNs inside the block (it trades precision for
    speed on Ampere and later GPUs and would make any comparison with CPU fail); the
    settings are restored afterwards."""
    if hasattr(torch.backends, "fp32_precision"):
        settings = _precision_settings()
        saved = [getattr(owner, name) for owner, name in settings]
        try:
            for owner, name in settings:
                setattr(owner, name, "ieee")
            yield
        finally:
            for (owner, name), value in zip(settings, saved):
                setattr(owner, name, value)
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def exact_attention() -> Iterator[None]:
    """``scaled_dot_product_attention`` runs its math backend inside the block. The fused
    kernels (flash, memory-efficient) recompute the softmax in backward from a stored
    log-sum-exp: with large attention logits (inputs in the hundreds) that rounds, in
    float32, to gradients of noise for the query and key weights where the exact gradient
    is 0. Like TF32, a precision traded for speed by the kernel, not the model's own
    arithmetic: a comparison would report the kernel."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.MATH]):
        yield


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """torch's default floating dtype is ``dtype`` inside the block (None: unchanged)."""
    previous = torch.get_default_dtype()
    if dtype is not None:
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _moved_args(target: Any, example: Example, config: Config) -> dict[str, Any]:
    """The example's arguments on ``config``'s device and dtype, relative lengths on its
    device only (:func:`~dyncheck.invariants.padding_invariance.keep_relative_lengths`)."""
    from dyncheck.invariants.padding_invariance import keep_relative_lengths

    return keep_relative_lengths(target, example.args, _move(example.fresh_args(), config.device, config.dtype))


def run_config(
    model: nn.Module, target: Any, example: Example, config: Config, *, rng_seed: int | None = None
) -> Run:
    """Run ``model`` (a fresh copy, moved here) on ``example`` as ``config`` says. The global
    generators get ``rng_seed`` when given, else the example's seed; the default loss's
    weights always come from the example's seed, so a probe under another seed
    differentiates the same loss."""
    model = model.to(device=config.device)
    if config.dtype is not None:
        model = cast(model, config.dtype)  # complex weights stay complex
    model.eval()
    callable_model = config.patch(model) if config.patch is not None else model
    args = _moved_args(target, example, config)
    stage = "forward"
    try:
        with seeded(example.seed if rng_seed is None else rng_seed), record_modules(model) as calls:
            output = target.call(callable_model, args)
            stage = "the loss"
            loss = check_loss(loss_of(target.spec, output, example.seed))
            if loss is not None and loss.requires_grad:
                stage = "backward"
                loss.backward()
                densify_grads(model)
    except Exception as exc:
        hints = (
            "the agreement checks run forward and backward in eval mode (the others differentiate in train mode "
            "too): a backward written for training only says so here",
        ) if stage == "backward" else ()
        raise ModelError(f"{stage} on {config.name} in eval mode", exc, hints=hints) from exc
    def rerun(other: nn.Module) -> Any:
        other_args = _moved_args(target, example, config)
        with seeded(example.seed if rng_seed is None else rng_seed):
            return target.call(config.patch(other) if config.patch is not None else other, other_args)

    observe_output(output, model, tuple(calls), rerun)
    outputs = [(name, t.detach()) for name, t in floating_leaves(output) if t.is_floating_point()]
    grads = {name: p.grad.detach() for name, p in model.named_parameters() if p.grad is not None}
    return Run(config=config, outputs=outputs, grads=grads, path=tuple(calls), model=model, output=output)


#: A difference within this many times the first side's own distance from float64 is
#: float32's rounding (see :func:`rounding_margins`).
ROUNDING_FACTOR = 10.0


def difference_margins(run: Run, moved: Run, factor: float, *, outputs: bool = True) -> dict[str, float]:
    """Margins for :func:`compare`: ``factor`` times how far each output (unless not
    ``outputs``) and each gradient of ``run`` lies from ``moved``'s, keyed as ``compare``
    names them (``<output>``, ``<parameter>.grad``); empty when ``moved`` took another path."""
    from dyncheck.rounding import largest_difference

    if moved.path != run.path:
        return {}
    margins = {}
    if outputs:
        for (name, tensor), (_, other) in zip(run.outputs, moved.outputs):
            margins[name] = factor * largest_difference(tensor, other)
    for name, grad in run.grads.items():
        if name in moved.grads:
            margins[f"{name}.grad"] = factor * largest_difference(grad, moved.grads[name])
    return margins


def rounding_margins(
    fresh_model: Callable[[], nn.Module], target: Any, example: Example, first: Run
) -> dict[str, float] | None:
    """Margins (for :func:`compare`) that explain a float32 disagreement as rounding: each
    output's and gradient's :data:`ROUNDING_FACTOR` times how far ``first`` lies from a
    float64 copy of the model run on ``first``'s device. Two float32 computations of the same
    thing that round otherwise (fused, reordered, another device's kernels) differ by about
    that much where the problem is ill-conditioned (a LayerNorm over a constant row, a
    saturated softmax), and ``first`` is no closer to the truth; one that computes something
    else differs by far more. None (no explanation) when the float64 copy cannot run, draws
    random numbers (its stream differs by dtype) or takes another path."""
    from dyncheck.streams import Draws

    recorded = Draws()
    try:
        with recorded:
            reference = run_config(
                fresh_model(), target, example, Config("float64 (reference)", first.config.device, torch.float64)
            )
    except ModelError:
        return None
    if recorded.calls or reference.path != first.path:
        return None
    return difference_margins(first, reference, ROUNDING_FACTOR)


def seed_dependence(
    fresh_model: Callable[[], nn.Module], target: Any, example: Example, config: Config, first: Run
) -> str | None:
    """How ``first`` (``example`` run as ``config``) depends on the random seed, from two
    more runs on fresh copies: ``"unseeded"`` when the same seed gives other outputs or
    gradients (the model draws from a generator the seed does not reach, or keeps state),
    ``"seeded"`` when only another seed does (it draws random numbers from the seeded
    generators), None when neither does."""
    again = run_config(fresh_model(), target, example, config)
    if compare(first, again, tolerance=(0.0, 0.0)):
        return "unseeded"
    other = run_config(fresh_model(), target, example, config, rng_seed=example.seed + 1)
    return "seeded" if compare(first, other, tolerance=(0.0, 0.0)) else None


#: Elements per fused comparison: tensors are concatenated up to this many (8 MB of float64
#: each), so a big model is compared in pieces and no copy of all its gradients is made.
_CHUNK = 1 << 20


def _chunks(items: list[Any], numel: Callable[[Any], int]) -> Iterator[list[Any]]:
    """``items`` in consecutive groups of at most :data:`_CHUNK` elements (a bigger one alone)."""
    group: list[Any] = []
    size = 0
    for item in items:
        n = numel(item)
        if group and size + n > _CHUNK:
            yield group
            group, size = [], 0
        group.append(item)
        size += n
    if group:
        yield group


def _scale(*tensors: torch.Tensor) -> float:
    """The largest finite magnitude among ``tensors`` (at least 1: a bool tensor's, a
    decision or mask a model returns beside its features, is no more)."""
    largest = 1.0
    flat = [t.detach().reshape(-1) for t in tensors if t.numel() and t.dtype != torch.bool]
    if len({(t.dtype, t.device) for t in flat}) > 1 or any(t.is_complex() for t in flat):
        flat = [t.abs().to("cpu", torch.float64) for t in flat]
    for group in _chunks(flat, torch.Tensor.numel):
        values = group[0] if len(group) == 1 else torch.cat(group)  # one pass over many
        # The common case without a temporary (a big gradient alone is a model's worth of
        # float64): the extremes, when both are finite.
        low, high = (float(v) for v in torch.aminmax(values)) if values.is_floating_point() else (math.nan, math.nan)
        if math.isfinite(low) and math.isfinite(high):
            largest = max(largest, -low, high)
            continue
        finite = values[torch.isfinite(values)]
        if finite.numel():
            largest = max(largest, float(finite.abs().max()))
    return largest


def _tolerance(
    actual: torch.Tensor,
    expected: torch.Tensor,
    override: tuple[float, float] | None,
    floor: tuple[float, float],
    scale: float | None,
    margin: float,
) -> tuple[float, float]:
    """(rtol, atol) for ``actual`` against ``expected`` (see :func:`_close`)."""
    if override is not None:
        return override
    rtol, atol = tolerances(actual.dtype, expected.dtype)
    rtol, atol = max(rtol, floor[0]), max(atol, floor[1])
    return rtol, atol * (scale if scale is not None else _scale(expected)) + margin


def _all_within(pairs: list[tuple[torch.Tensor, torch.Tensor, tuple[float, float]]]) -> bool:
    """Whether every ``(actual, expected, (rtol, atol))`` agrees with all values finite, in
    a few torch calls for all of them: the common answer for a model's many parameters.
    False means only "look at each one" (:func:`mismatch` words what differs)."""
    if not pairs:
        return True
    for actual, expected, _ in pairs:
        if actual.shape != expected.shape or actual.is_complex() or expected.is_complex():
            return False
    for group in _chunks(pairs, lambda pair: pair[0].numel()):
        if len(group) == 1:  # a big tensor alone: no concatenated copy, scalar tolerances
            actual, expected, (rtol, atol) = group[0]
            a = actual.detach().reshape(-1).to("cpu", torch.float64)
            e = expected.detach().reshape(-1).to("cpu", torch.float64)
        else:
            a = torch.cat([actual.detach().reshape(-1).to("cpu", torch.float64) for actual, _, _ in group])
            e = torch.cat([expected.detach().reshape(-1).to("cpu", torch.float64) for _, expected, _ in group])
            sizes = torch.tensor([actual.numel() for actual, _, _ in group])
            rtol = torch.tensor([t[0] for _, _, t in group], dtype=torch.float64).repeat_interleave(sizes)
            atol = torch.tensor([t[1] for _, _, t in group], dtype=torch.float64).repeat_interleave(sizes)
        if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(e).all())):
            return False
        # In place where the tensors are this comparison's own, so a big gradient costs two
        # float64 temporaries of its size, not five.
        own = len(group) > 1 or a.untyped_storage().data_ptr() != group[0][0].untyped_storage().data_ptr()
        difference = a.sub_(e) if own else a - e
        allowed = e.abs().mul_(rtol).add_(atol)
        if not bool((difference.abs_() <= allowed).all()):
            return False
    return True


def _close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    override: tuple[float, float] | None,
    floor: tuple[float, float] = (0.0, 0.0),
    scale: float | None = None,
    margin: float = 0.0,
) -> list[str]:
    """``actual`` against ``expected``; ``atol`` is scaled by ``scale`` (default: the
    expected tensor's largest magnitude), since rounding differences grow with the values,
    and grows by ``margin`` (what the problem's own conditioning explains)."""
    wide = torch.complex128 if actual.is_complex() or expected.is_complex() else torch.float64
    a = actual.detach().to("cpu", wide)  # complex stays complex: both parts are compared
    e = expected.detach().to("cpu", wide)
    rtol, atol = _tolerance(actual, expected, override, floor, scale, margin)
    return mismatch(a, e, rtol=rtol, atol=atol)


def nothing_compared(run: Run) -> str | None:
    """Why a run gives a comparison nothing to compare (no floating output and no
    gradient), else None."""
    if run.outputs or run.grads:
        return None
    return missing_output(run.output) or (
        "the output has no floating tensor and no parameter got a gradient: nothing to compare"
    )


def compare(
    first: Run,
    second: Run,
    *,
    tolerance: tuple[float, float] | None = None,
    floor: tuple[float, float] = (0.0, 0.0),
    model: nn.Module | None = None,
    margins: Mapping[str, float] | None = None,
) -> list[str]:
    """Findings from two runs of one example: ``second`` is checked against ``first``.
    ``margins`` (output name, or ``<parameter>.grad``) add to a tensor's ``atol``.

    Two runs that took different paths are a path divergence, reported as such, unless
    their outputs and gradients agree all the same: then the modules only one side ran
    contributed nothing (an expert picked among gates that underflowed to 0.0 in float32)
    and the answer is the same. A parameter with a gradient on one side only counts as
    zero on the other then."""
    a, b = first.config.name, second.config.name
    diverged = first.path != second.path
    findings = _numeric_findings(first, second, tolerance, floor, diverged, margins or {})
    if diverged and findings:
        layout = Layout.of(model)
        one, other = (layout.leaf_path(r.path) if layout else r.path for r in (first, second))
        pair = PathSet([one, other], layout)
        taken = (
            f"on {a} the call took {pair.describe(one)}, on {b} {pair.describe(other)}"
            if pair.full
            else f"on {a} the call took one path ({pair.describe(one)}), on {b} another ({pair.describe(other)})"
        )
        return [
            f"path divergence: {taken} — a data-dependent branch flipped (rounding differs "
            "between the two), so outputs and gradients are not comparable on this example"
        ]
    return findings


def _numeric_findings(
    first: Run,
    second: Run,
    tolerance: tuple[float, float] | None,
    floor: tuple[float, float],
    diverged: bool,
    margins: Mapping[str, float],
) -> list[str]:
    # Gradients on the scale of the whole loss's gradient: one layer's tiny gradient (a
    # saturated gate) carries rounding on the scale of the larger ones it is summed with.
    gradient_scale = _scale(*first.grads.values())
    pairs = list(_comparisons(first, second, diverged, margins, gradient_scale))
    if all(actual is not None for _, actual, _, _, _ in pairs) and _all_within([
        (actual, expected, _tolerance(actual, expected, tolerance, floor, scale, margin))
        for _, actual, expected, scale, margin in pairs
    ]):
        return []  # all of them at once; each is worded only when something differs
    findings = []
    for label, actual, expected, scale, margin in pairs:
        if actual is None:
            findings.append(label)
            continue
        lines = _close(actual, expected, tolerance, floor, scale, margin)
        if lines:
            findings.append(f"{label}: " + "; ".join(lines))
    return findings


def _comparisons(
    first: Run, second: Run, diverged: bool, margins: Mapping[str, float], gradient_scale: float
) -> Iterator[tuple[str, torch.Tensor | None, torch.Tensor | None, float | None, float]]:
    """What :func:`_numeric_findings` compares, in the order it reports: ``(label, actual,
    expected, scale, margin)`` for each pair (``scale`` None: the expected tensor's own), or
    ``(finding, None, None, None, 0.0)`` for a tensor on one side only. With ``diverged`` a
    gradient on one side only counts as zero on the other."""
    a, b = first.config.name, second.config.name
    expected = dict(first.outputs)
    for name, tensor in second.outputs:
        if name not in expected:
            yield f"{name} exists on {b} but not on {a}", None, None, None, 0.0
        else:
            yield f"{name} differs on {b} from {a}", tensor, expected[name], None, margins.get(name, 0.0)
    for name, grad in second.grads.items():
        if name not in first.grads and not diverged:
            yield f"{name}.grad exists on {b} but not on {a}", None, None, None, 0.0
            continue
        reference = first.grads.get(name, torch.zeros_like(grad))
        yield f"{name}.grad differs on {b} from {a}", grad, reference, gradient_scale, margins.get(f"{name}.grad", 0.0)
    if diverged:
        for name, grad in first.grads.items():
            if name not in second.grads:
                yield f"{name}.grad exists on {a} but not on {b}", torch.zeros_like(grad), grad, gradient_scale, 0.0


def numeric_findings(
    first: Run,
    second: Run,
    *,
    tolerance: tuple[float, float] | None = None,
    floor: tuple[float, float] = (0.0, 0.0),
    diverged: bool = False,
) -> list[str]:
    """The output and gradient findings of :func:`compare` without its path verdict, for
    checks that tell a path divergence apart in their own words (a refactor's changed
    branch is not a rounding flip). With ``diverged`` a gradient on one side only counts
    as zero on the other."""
    return _numeric_findings(first, second, tolerance, floor, diverged, {})


def close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    tolerance: tuple[float, float] | None = None,
    scale: float | None = None,
    margin: float = 0.0,
) -> list[str]:
    """``actual`` against ``expected`` with the agreement checks' tolerances (torch.testing's
    per-dtype defaults, ``atol`` scaled by ``scale``, default the expected tensor's largest
    magnitude, plus ``margin``, what rounding alone explains; ``tolerance`` is used as
    written); empty when they agree."""
    return _close(actual, expected, tolerance, (0.0, 0.0), scale, margin)


def magnitude(*tensors: torch.Tensor) -> float:
    """The largest finite magnitude among ``tensors`` (at least 1), the scale of ``atol``."""
    return _scale(*tensors)


def parse_devices(text: str) -> list[Config]:
    """``cpu,cuda`` / ``cuda:0,cuda:1`` / ``cpu,mymodule:MY_CONFIG`` -> configurations. An entry
    ``module:Name`` (not ``device:index``) names a :class:`Config` object to import."""
    import importlib

    configs = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        head, sep, tail = entry.partition(":")
        if sep and not tail.isdigit():
            module = importlib.import_module(head)
            config = getattr(module, tail)
            if not isinstance(config, Config):
                raise InvalidArgument(f"--dyncheck-devices entry {entry!r} is not a dyncheck.agreement.Config")
            configs.append(config)
            continue
        try:
            torch.device(entry)
        except RuntimeError as exc:
            raise InvalidArgument(f"--dyncheck-devices entry {entry!r} is not a torch device: {exc}") from None
        configs.append(Config(name=entry, device=entry))
    return configs


def available(config: Config) -> str | None:
    """None when ``config``'s device can run here, else why not."""
    device = torch.device(config.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"{config.device} does not exist ({torch.cuda.device_count()} CUDA device(s))"
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "MPS is not available on this machine"
    return None
