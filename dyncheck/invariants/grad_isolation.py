"""grad_isolation: gradients follow the path the call took.

A branch that was *skipped* is correct and its parameters get no gradient at all; a
branch that was *computed and thrown away* is a bug (it wastes compute, gets zero
gradients, and optimizers with momentum or weight decay still move it). For every
example, after forward and backward:

1. skipped means untouched: a parameter whose modules did not run has no gradient;
2. executed means connected: every parameter of a module that ran is reached from the
   output through autograd (unless frozen);
3. executed means used: a module that ran influences the output (its output is
   perturbed through a forward hook; an output that does not change means the work was
   masked away, if a choice masked it: see :func:`_masked`);
4. declared branches: ``Spec(branches=...)`` modules run exactly when their predicate holds;
5. finite gradients, named;
6. step isolation: after an optimizer step on an example where a module ran, a step on
   this example, where it did not, leaves its parameters bitwise unchanged;
7. influence means learning: a parameter that moves the output when moved does not get an
   exactly-zero gradient on every example of the run (checked in ``finish``).

A module called only on empty inputs (``expert(x[idx])`` with no row routed to it) did no
work: rules 2 and 3 leave it alone.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from dyncheck.agreement import _move, default_dtype
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example, describe_value
from dyncheck.invariants._base import Context, Invariant, module_name_map, parameter_owners
from dyncheck.invariants.finite import non_finite
from dyncheck.tracing import Trace, floating_leaves, leaves

__all__ = ["GradIsolation", "default_optimizers", "evaluate_branch", "influences", "predicate_text"]


def default_optimizers() -> dict[str, Callable[[Any], torch.optim.Optimizer]]:
    """The optimizers step isolation uses when the spec gives none: the two that move
    parameters with zero gradients (momentum, decoupled weight decay)."""
    return {
        "SGD(momentum=0.9, weight_decay=0.01)": lambda params: torch.optim.SGD(
            params, lr=0.01, momentum=0.9, weight_decay=0.01
        ),
        "AdamW(weight_decay=0.01)": lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01),
    }


def predicate_text(predicate: Callable[..., Any]) -> str:
    from dyncheck._report import source_of

    text = source_of(predicate)
    if text.startswith("lambda"):
        return text.split(":", 1)[1].strip()
    return text


def evaluate_branch(
    predicate: Callable[..., Any], example: Example, forward: Callable[..., Any]
) -> tuple[bool, str]:
    """(does the predicate hold for ``example``, the values it was given as text)."""
    names = list(inspect.signature(predicate).parameters)
    defaults = {
        name: p.default
        for name, p in inspect.signature(forward).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    values = {name: example.args[name] if name in example.args else defaults.get(name) for name in names}
    with torch.no_grad():
        holds = bool(predicate(**values))
    return holds, ", ".join(describe_value(name, value) for name, value in values.items())


#: How a module's output is moved, tried in turn until the model's output changes:
#: ±2(|y| + 1) with signs drawn per element (crosses any ReLU, leaves any saturated region
#: in one of the two directions), -y ∓ 1 (turns an argmax into an argmin), then large
#: random moves (×10 and ×1000 (|y| + 1), two draws each) for outputs that stay saturated
#: under the simple moves. A module whose output survives all of them unchanged is unused.
_MOVES = ("up", "down", "negate", "random10", "random10", "random1000", "random1000")


def _perturb(value: Any, move: str, generator: torch.Generator) -> Any:
    """``value`` with every floating tensor moved as ``move`` says (see ``_MOVES``)."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        scale = value.detach().abs() + 1
        if move.startswith("random"):
            noise = torch.randn(value.shape, generator=generator).to(value.device, value.dtype)
            return value + float(move.removeprefix("random")) * scale * noise
        signs = torch.randint(0, 2, value.shape, generator=generator).to(value.device, value.dtype) * 2 - 1
        if move == "negate":
            return -value - signs
        direction = 1.0 if move == "up" else -1.0
        return value + direction * signs * 2 * scale
    if isinstance(value, nn.utils.rnn.PackedSequence):
        return type(value)(
            _perturb(value.data, move, generator), value.batch_sizes, value.sorted_indices, value.unsorted_indices
        )
    if isinstance(value, tuple):
        items = [_perturb(v, move, generator) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_perturb(v, move, generator) for v in value]
    if isinstance(value, dict):
        return {k: _perturb(v, move, generator) for k, v in value.items()}
    return value


def _outputs_equal(a: Any, b: Any) -> bool:
    left, right = list(floating_leaves(a)), list(floating_leaves(b))
    if [n for n, _ in left] != [n for n, _ in right]:
        return False
    for (_, x), (_, y) in zip(left, right):
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not torch.equal(torch.nan_to_num(x.detach()), torch.nan_to_num(y.detach())):
            return False
    return True


def influences(
    context: Context,
    model: nn.Module,
    example: Example,
    module_name: str,
    baseline: Any,
    *,
    around: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> bool:
    """Whether perturbing ``module_name``'s output (on every call) changes the model's output;
    every run is made inside ``around()`` (the nudges of :func:`_holds_when_nudged`)."""
    module = model.get_submodule(module_name)
    for attempt, move in enumerate(_MOVES):
        generator = torch.Generator().manual_seed(1234 + attempt)

        def hook(_module: nn.Module, _args: Any, output: Any, move: str = move) -> Any:
            return _perturb(output, move, generator)

        handle = module.register_forward_hook(hook)
        try:
            with around():
                perturbed = context.run(model, example, record=False, grad=False).output
        except ModelError:
            return True  # the moved output reached something that raised: it is used
        finally:
            handle.remove()
        if not _outputs_equal(perturbed, baseline):
            return True
    return False


def _masked(context: Context, model: nn.Module, example: Example, path: tuple[str, ...], unused: list[str]) -> list[str]:
    """Of ``unused`` (modules that ran, whose output, moved, left the output unchanged), the
    ones masked away by a choice.

    A mask is a choice that depends on values (a gate, a router, a control value): it lets
    the module through on other values of the same sizes, and it holds when the values move
    a little. So a module stays unused only if it is
    (a) not weighted by a saturated gate (:func:`_weighted_not_masked`);
    (b) used on some example of the same sizes and path, its floating inputs moved a lot
        (integer and boolean inputs and masks kept). A module that cannot influence the
        output at these sizes is at a degenerate size, not masked: a softmax over one key
        (attention over a sequence of length 1) is 1 whatever the query, and a layer behind
        a zero-initialised weight (a LoRA ``B``, a ReZero gate) cannot move anything yet;
    (c) still unused with the inputs and every other module's output nudged by a small
        amount, one way or the opposite way (a control exactly at its threshold opens one
        way only). A module that counts as soon as the values move a little sat at a
        degenerate value: all keys equal (a constant input), a tie.
    """
    unused = _weighted_not_masked(context, model, example, unused)
    if unused:
        unused = _used_elsewhere(context, model, example, path, unused)
    if unused:
        unused = _holds_when_nudged(context, model, example, unused)
    return unused


def _gradient_reaches(
    context: Context,
    model: nn.Module,
    example: Example,
    names: list[str],
    around: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> tuple[Trace, set[str]] | None:
    """One run of ``model`` on ``example`` inside ``around()``, and the modules of ``names``
    with respect to whose output a random projection of the model's output has a non-zero
    gradient; None when the model raised."""
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    handles = []
    for name in names:
        def hook(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            captured[name] += [t for _, t in floating_leaves(output) if t.is_floating_point() and t.requires_grad]

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with around():
            trace = context.run(model, example, record=False)
    except ModelError:
        return None
    finally:
        for handle in handles:
            handle.remove()
    leaves_ = [t for _, t in floating_leaves(trace.output) if t.is_floating_point() and t.requires_grad]
    reached: set[str] = set()
    if not leaves_:
        return trace, reached
    generator = torch.Generator().manual_seed(example.seed)
    loss = sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)).sum() for t in leaves_)
    for name in names:
        if captured[name]:
            try:
                grads = torch.autograd.grad(loss, captured[name], retain_graph=True, allow_unused=True)
            except RuntimeError:
                return None  # backward raised (an in-place op on this path)
            if any(g is not None and bool(g.detach().ne(0).any()) for g in grads):
                reached.add(name)
    return trace, reached


#: How far a nudge moves a value: this fraction of (|value| + 1), with a random sign.
_NUDGE = 1e-3
#: Large moves of the floating inputs that make the other examples of the same sizes
#: (rule 3's witnesses): (move, generator seed); ``up`` and ``down`` with one seed move every
#: element both ways, so a control crosses its threshold in one of them.
_REDRAWS = (("up", 0), ("down", 0), ("up", 1), ("down", 1), ("negate", 2), ("random10", 3),
            ("random10", 4), ("random1000", 5))


def _nudge(value: Any, sign: float, generator: torch.Generator) -> Any:
    """``value`` with every finite floating element moved by ``sign`` × _NUDGE × (|v| + 1)
    in a random direction; the directions depend on the generator only, so the nudges of
    ``sign=1`` and ``sign=-1`` are exact opposites."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        noise = torch.randn(value.shape, generator=generator).to(value.device, value.dtype)
        moved = value + sign * _NUDGE * (value.detach().abs() + 1) * noise
        return torch.where(torch.isfinite(value), moved, value)
    if isinstance(value, float):
        return value + sign * _NUDGE * (abs(value) + 1) * float(torch.randn((), generator=generator))
    if isinstance(value, nn.utils.rnn.PackedSequence):
        return type(value)(
            _nudge(value.data, sign, generator), value.batch_sizes, value.sorted_indices, value.unsorted_indices
        )
    if isinstance(value, tuple):
        items = [_nudge(v, sign, generator) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_nudge(v, sign, generator) for v in value]
    if isinstance(value, dict):
        return {k: _nudge(v, sign, generator) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _nudging(model: nn.Module, spared: str, sign: float) -> Iterator[None]:
    """Every module's output but ``spared``'s nudged (see :func:`_nudge`), the same way on
    every run made inside the block."""
    generator = torch.Generator().manual_seed(2718)

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        return _nudge(output, sign, generator)

    handles = [m.register_forward_hook(hook) for name, m in model.named_modules() if name and name != spared]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _holds_when_nudged(context: Context, model: nn.Module, example: Example, names: list[str]) -> list[str]:
    """Of ``names``, the modules that the output's gradient still does not reach with the
    inputs and every other module's output nudged, one way or the opposite way."""
    held = []
    for name in names:
        for sign in (1.0, -1.0):
            generator = torch.Generator().manual_seed(3141)
            args = {k: _nudge(v, sign, generator) for k, v in example.args.items()}

            def around(sign: float = sign) -> contextlib.AbstractContextManager[Any]:
                return _nudging(model, name, sign)

            found = _gradient_reaches(context, model, Example(args, example.seed, example.dims), [name], around)
            if found is not None and name not in found[1]:
                held.append(name)
                break
    return held


def _redrawn(example: Example, move: str, seed: int) -> Example:
    """``example`` with its floating inputs moved a lot (see ``_REDRAWS``): the same sizes,
    with integer and boolean inputs (tokens, lengths, counts, flags) and masks kept."""
    generator = torch.Generator().manual_seed(4321 + seed)
    args = {}
    for name, value in example.args.items():
        if "mask" in name.lower():
            args[name] = value
        elif isinstance(value, float):
            args[name] = float(_perturb(torch.tensor([value], dtype=torch.float64), move, generator))
        else:
            moved = _perturb(value, move, generator)
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                moved = torch.where(torch.isfinite(value), moved, value)
            args[name] = moved
    return Example(args, example.seed, example.dims)


def _used_elsewhere(
    context: Context, model: nn.Module, example: Example, path: tuple[str, ...], names: list[str]
) -> list[str]:
    """Of ``names``, the modules that influence the output (the gradient reaches them, and
    moving their output changes it) on some redrawn example of the same sizes on which the
    model takes the same path."""
    pending = list(names)
    for move, seed in _REDRAWS:
        other = _redrawn(example, move, seed)
        found = _gradient_reaches(context, model, other, pending)
        if found is None or found[0].path != path:
            continue
        trace, reached = found
        baseline = context.run(model, other, record=False, grad=False).output if reached else None
        pending = [n for n in pending if n not in reached or not influences(context, model, other, n, baseline)]
        if not pending:
            break
    return [n for n in names if n not in pending]


def _weighted_not_masked(context: Context, model: nn.Module, example: Example, unused: list[str]) -> list[str]:
    """Of ``unused`` (their output, moved, left the output unchanged), the modules that are
    masked away rather than weighted by a gate that saturated.

    A contribution weighted by a softmax gate at logits in the hundreds (e^-100) is lost to
    rounding when outputs are compared, and in float32 the gate underflows to an exact 0.0;
    yet the module is computed and weighted, not masked. So a module stays unused only if
    the output's gradient with respect to the module's output is exactly zero in a float64
    copy, and again in float64 with the example's large inputs (magnitude over 1) scaled to
    magnitude 1 — at inputs in the thousands even float64's gate underflows. A 0/1 mask
    multiplies by an exact 0 in every dtype and at every scale, and a module masked away
    still runs at the smaller scale (that is the bug: it is computed regardless); one that
    no longer runs there is routed, not masked. Numerical loss is dtype_agreement's
    finding, not this rule's."""
    floating = [p for p in model.parameters() if p.is_floating_point()]
    if not unused or not floating or floating[0].is_complex():
        return unused
    device = str(floating[0].device)
    wide = copy.deepcopy(model).to(torch.float64)
    args = _move(dict(example.args), device, torch.float64)
    unused = _zero_gradient(context, wide, Example(args, example.seed, example.dims), unused, absent=True)
    moderated = _moderated(args)
    if unused and any(moderated[name] is not args[name] for name in args):
        unused = _zero_gradient(context, wide, Example(moderated, example.seed, example.dims), unused, absent=False)
    return unused


def _moderated(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with every floating tensor input larger than 1 in magnitude scaled to 1."""
    return {
        name: value / float(value.abs().max())
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel()
        and bool(torch.isfinite(value).all()) and float(value.abs().max()) > 1
        else value
        for name, value in args.items()
    }


def _zero_gradient(
    context: Context, wide: nn.Module, example: Example, names: list[str], *, absent: bool
) -> list[str]:
    """Of ``names``, the modules of the float64 model ``wide`` with respect to whose every
    output a random projection of the model's output has an exactly zero gradient; a module
    that did not run is among them when ``absent`` is true."""
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    handles = []
    for name in names:
        def hook(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            captured[name] += [t for _, t in floating_leaves(output) if t.is_floating_point() and t.requires_grad]

        handles.append(wide.get_submodule(name).register_forward_hook(hook))
    try:
        with default_dtype(torch.float64):
            output = context.run(wide, example, record=False).output
    except ModelError:
        return names  # the model cannot run in float64: keep what float32 showed
    finally:
        for handle in handles:
            handle.remove()
    leaves = [t for _, t in floating_leaves(output) if t.is_floating_point() and t.requires_grad]
    if not leaves:
        return names
    generator = torch.Generator().manual_seed(example.seed)
    loss = sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)).sum() for t in leaves)
    zero = []
    for name in names:
        tensors = captured[name]
        if not tensors:
            if absent:
                zero.append(name)
            continue
        grads = torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True)
        if not any(g is not None and bool(g.detach().ne(0).any()) for g in grads):
            zero.append(name)
    return zero


@contextlib.contextmanager
def _idle_calls(model: nn.Module) -> Iterator[set[str]]:
    """Names of the submodules whose every call inside the block had only empty tensors as
    inputs (``expert(x[idx])`` with no row routed to it): they computed nothing."""
    idle: set[str] = set()
    busy: set[str] = set()
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def hook(_module: nn.Module, args: Any, kwargs: Any, name: str = name) -> None:
            tensors = [v for _, v in leaves((args, kwargs)) if isinstance(v, torch.Tensor)]
            if tensors and all(t.numel() == 0 for t in tensors):
                idle.add(name)
            else:
                busy.add(name)

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield idle
    finally:
        for handle in handles:
            handle.remove()
        idle -= busy


def _track_silent(
    context: Context,
    model: nn.Module,
    example: Example,
    trace: Trace,
    owners_by_param: list[tuple[nn.Parameter, tuple[str, ...], tuple[str, ...]]],
    frozen: set[str],
) -> None:
    """Rule 7's evidence from one example, kept in ``context.memo["silent"]``: for each
    trainable parameter whose gradient has been exactly zero on every example so far, the
    number of those examples and the first example on which moving it changed the output.

    A zero gradient counts only if it is exactly zero in float32, and in a float64 copy of
    the model at this example, at the example's inputs scaled to magnitude 1 and at a few
    moved inputs of the same sizes (so a dead ReLU, a saturated sigmoid or a sum that is
    constant by rounding do not count); a parameter with a non-zero gradient on any of
    them is dropped for the rest of the run."""
    silent: dict[str, list[Any]] = context.memo.setdefault("silent", {})
    dropped: set[str] = context.memo.setdefault("learned", set())
    candidates: dict[str, nn.Parameter] = {}
    for parameter, names, _ in owners_by_param:
        key = names[0]
        if (
            key in dropped or not parameter.requires_grad or frozen & set(names)
            or not parameter.is_floating_point() or parameter.grad is None
        ):
            continue
        if parameter.grad.detach().ne(0).any():  # a NaN is not zero either
            dropped.add(key)
            silent.pop(key, None)
        else:
            candidates[key] = parameter
    if not candidates:
        return
    zero = _zero_parameter_gradients(context, model, example, list(candidates))
    for key, parameter in candidates.items():
        entry = silent.setdefault(key, [0, None, 0])  # examples, witness, examples tried
        if key not in zero or (entry[1] is None and entry[2] >= _MOVE_TRIES):
            # It learns after all, or moving it changed nothing on the examples tried (a
            # bias a softmax or a normalisation cancels): rule 7 is done with it.
            dropped.add(key)
            silent.pop(key)
            continue
        entry[0] += 1
        if entry[1] is None:
            entry[2] += 1
            if _moving_changes_output(context, model, example, parameter):
                entry[1] = (example, trace.path)


#: On how many examples rule 7 moves a parameter before it concludes that the parameter
#: does not influence the output.
_MOVE_TRIES = 3


def _zero_parameter_gradients(context: Context, model: nn.Module, example: Example, names: list[str]) -> set[str]:
    """Of the parameters ``names``, those whose gradient (of a random projection of the
    output) is exactly zero or absent in a float64 copy of ``model`` on every run of
    :func:`_track_silent`'s list."""
    try:
        wide = copy.deepcopy(model).to(torch.float64)
    except Exception:
        return set(names)  # the model cannot be copied or cast: keep what float32 showed
    by_name = dict(wide.named_parameters(remove_duplicate=False))
    parameters = [by_name[name] for name in names]
    device = str(parameters[0].device)
    args = _move(dict(example.args), device, torch.float64)
    moderated = Example(_moderated(args), example.seed, example.dims)
    runs = [Example(args, example.seed, example.dims), moderated]
    runs += [_redrawn(moderated, move, seed) for move, seed in _REDRAWS[:5]]
    zero = set(names)
    for run in runs:
        try:
            with default_dtype(torch.float64):
                output = context.run(wide, run, record=False).output
        except ModelError:
            continue
        leaves_ = [t for _, t in floating_leaves(output) if t.is_floating_point() and t.requires_grad]
        if not leaves_:
            continue
        generator = torch.Generator().manual_seed(run.seed)
        loss = sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)).sum() for t in leaves_)
        try:
            grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        except RuntimeError:
            continue  # backward raised (an in-place op on this path): no evidence either way
        for name, grad in zip(names, grads):
            if grad is not None and bool(grad.detach().ne(0).any()):
                zero.discard(name)
        if not zero:
            break
    return zero


def _outputs_differ(a: Any, b: Any) -> bool:
    """Whether two outputs differ by more than rounding: by more than 1e-4 × (max |b| + 1)."""
    left, right = list(floating_leaves(a)), list(floating_leaves(b))
    if [n for n, _ in left] != [n for n, _ in right]:
        return True
    for (_, x), (_, y) in zip(left, right):
        if x.shape != y.shape or x.dtype != y.dtype:
            return True
        if not x.is_floating_point():
            if not torch.equal(x, y):
                return True
            continue
        x, y = torch.nan_to_num(x.detach().double()), torch.nan_to_num(y.detach().double())
        if x.numel() and float((x - y).abs().max()) > 1e-4 * (float(y.abs().max()) + 1):
            return True
    return False


def _moving_changes_output(context: Context, model: nn.Module, example: Example, parameter: nn.Parameter) -> bool:
    """Whether moving ``parameter`` (as ``_MOVES`` says) changes the output by more than
    rounding; the parameter is restored exactly."""
    baseline = context.run(model, example, record=False, grad=False).output
    saved = parameter.detach().clone()
    try:
        for attempt, move in enumerate(_MOVES):
            with torch.no_grad():
                parameter.copy_(_perturb(saved, move, torch.Generator().manual_seed(1234 + attempt)))
            try:
                moved = context.run(model, example, record=False, grad=False).output
            except ModelError:
                return True  # the moved parameter reached something that raised: it is used
            if _outputs_differ(moved, baseline):
                return True
        return False
    finally:
        with torch.no_grad():
            parameter.copy_(saved)


def _used_directly(
    owners_by_param: list[tuple[nn.Parameter, tuple[str, ...], tuple[str, ...]]], ran: set[str]
) -> set[str]:
    """Modules that did not run but some of whose parameters got a non-zero gradient: they
    are used without being called (``F.linear(h, fc.weight, fc.bias)``,
    ``pos.weight[:n]``), so they are on the path. A module whose every gradient is zero
    is not: that is the multiply-by-zero trick."""
    out: set[str] = set()
    for parameter, _, owners in owners_by_param:
        if not any(o in ran for o in owners) and parameter.grad is not None and parameter.grad.detach().any():
            out.update(owners)
    return out


def _join(names: list[str]) -> str:
    return ", ".join(names)


class GradIsolation(Invariant):
    name = "grad_isolation"
    summary = (
        "skipped modules get no gradient, modules that ran are connected to and influence the "
        "output, declared branches run exactly when their predicate holds, gradients are finite, "
        "optimizer steps leave skipped branches unchanged, and parameters that influence the output "
        "do not get an exactly-zero gradient on every example"
    )

    def check(self, context: Context, example: Example) -> None:
        spec = context.target.spec
        model = context.fresh_model()
        with _idle_calls(model) as idle:
            trace = context.run(model, example, backward=True)
        canonical = module_name_map(model)
        ran = set(trace.modules) | {""}
        worked = ran - idle
        frozen = set(spec.frozen)
        findings: list[str] = []
        details: list[str] = []

        owners_by_param = []
        for parameter, names, owners in parameter_owners(model):
            owners = tuple(dict.fromkeys(canonical.get(o, o) for o in owners))
            owners_by_param.append((parameter, names, owners))

        # 4. declared branches, first: they say why a module ran or not.
        why_not: dict[str, str] = {}
        for module_name, predicate in spec.branches.items():
            module_name = canonical.get(module_name, module_name)
            try:
                holds, shown = evaluate_branch(predicate, example, type(model).forward)
            except Exception as exc:
                findings.append(
                    f"the branch predicate for {module_name} raised {type(exc).__name__}: {exc}"
                )
                continue
            condition = predicate_text(predicate)
            did_run = module_name in ran
            if holds and not did_run:
                findings.append(
                    f"{module_name} did not run although its branch predicate `{condition}` holds for {shown}."
                )
            elif did_run and not holds:
                findings.append(
                    f"{module_name} ran although its branch predicate `{condition}` does not hold for {shown}."
                )
            if not holds:
                why_not[module_name] = f"`{condition}` is False for {shown}"

        # 5. finite gradients
        for parameter, names, _ in owners_by_param:
            if parameter.grad is not None and (found := non_finite(parameter.grad)) is not None:
                findings.append(f"{names[0]} received a NaN/inf gradient: {found}.")

        has_loss = trace.loss is not None and trace.loss.requires_grad
        # 1. skipped means untouched
        zero_on_skipped: dict[str, list[str]] = {}
        used_directly = _used_directly(owners_by_param, ran)
        for parameter, names, owners in owners_by_param:
            if any(o in ran for o in owners) or parameter.grad is None or used_directly & set(owners):
                continue
            zero_on_skipped.setdefault(", ".join(owners), []).append(names[0])
        for owners, names in zero_on_skipped.items():
            reason = "; ".join(why_not[o] for o in owners.split(", ") if o in why_not)
            one = len(names) == 1
            findings.append(
                f"{owners} did not run{f' ({reason})' if reason else ''}, but {_join(names)} received "
                f"a gradient of zeros: the output depends on {'it' if one else 'them'} only through a "
                f"multiplication by zero. Leave {'it' if one else 'them'} out of the graph, so "
                f"{'its gradient stays' if one else 'their gradients stay'} None."
            )

        if has_loss:
            # 2. executed means connected
            cut: dict[str, list[str]] = {}
            for parameter, names, owners in owners_by_param:
                if not parameter.requires_grad or frozen & set(names):
                    continue
                running = [o for o in owners if o in worked and o]
                if not running:
                    continue
                if not (set(names) & trace.reached) or parameter.grad is None:
                    cut.setdefault(running[0], []).append(names[0])
            for module_name, names in cut.items():
                findings.append(
                    f"{module_name} ran, but {_join(names)} {'is' if len(names) == 1 else 'are'} not connected "
                    "to the output through autograd: a detach(), .data, .item(), torch.no_grad() or an "
                    "argmax-only choice cuts the gradient off. If this is meant (a frozen part), set "
                    f"requires_grad=False or declare Spec(frozen={names!r})."
                )

            # 3. executed means used
            with_parameters = {
                o for parameter, names, owners in owners_by_param
                if parameter.requires_grad for o in owners if o in worked and o
            }
            candidates = [m for m in dict.fromkeys(trace.modules) if m in with_parameters and m not in cut]
            if candidates:
                baseline = context.run(model, example, record=False, grad=False).output
                unused = [m for m in candidates if not influences(context, model, example, m, baseline)]
                unused = _masked(context, model, example, trace.path, unused) if unused else []
                if unused:
                    findings.append(
                        f"{_join(unused)} ran but did not influence the output on this example "
                        "(moving its output left every output bitwise unchanged): skip "
                        f"{'it' if len(unused) == 1 else 'them'} instead of masking the result away."
                    )

            # 6. step isolation
            findings.extend(self._step_isolation(context, example, trace, owners_by_param, ran))

            # 7. influence means learning: gathered here, reported over the run in finish()
            if not findings:
                _track_silent(context, model, example, trace, owners_by_param, frozen)

        if findings:
            headline = findings[0] if len(findings) == 1 else (
                f"Gradients do not follow the path the call took ({len(findings)} problems):"
            )
            details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
            raise InvariantViolation(headline, details, path=trace.path)

    def finish(self, context: Context) -> None:
        # 7. influence means learning
        silent: dict[str, list[Any]] = context.memo.get("silent", {})
        groups: dict[int, list[str]] = {}
        witness: tuple[Example, tuple[str, ...]] | None = None
        for name, (count, moved, _) in silent.items():
            if moved is not None:
                groups.setdefault(count, []).append(name)
                witness = witness or moved
        if witness is None:
            return
        findings = []
        for count, names in groups.items():
            one = len(names) == 1
            examples = f"all {count} examples" if count == context.examples else (
                f"all {count} examples that reached {'it' if one else 'them'}"
            )
            findings.append(
                f"{_join(names)} {'influences' if one else 'influence'} the output (moving "
                f"{'it' if one else 'them'} changes it on the example below) but received an exactly-zero "
                f"gradient on {examples}: {'it' if one else 'they'} can never learn. Something between "
                f"{'it' if one else 'them'} and the output is constant in {'it' if one else 'them'}: "
                "a softmax over a single value is always 1 (top-1 taken before the softmax), a round(), "
                "sign() or comparison has a zero derivative."
            )
        headline = findings[0] if len(findings) == 1 else (
            f"Parameters that influence the output never learn ({len(findings)} groups):"
        )
        details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
        violation = InvariantViolation(headline, details, path=witness[1])
        violation.example = witness[0]  # type: ignore[attr-defined]
        raise violation

    def _step_isolation(
        self,
        context: Context,
        example: Example,
        trace: Trace,
        owners_by_param: list[tuple[nn.Parameter, tuple[str, ...], tuple[str, ...]]],
        ran: set[str],
    ) -> list[str]:
        skipped_with_witness = {}
        used_directly = _used_directly(owners_by_param, ran)
        for parameter, names, owners in owners_by_param:
            if any(o in ran for o in owners):
                continue
            if used_directly & set(owners):
                continue  # its parameters are used without calling it: not a skipped branch
            for owner in owners:
                witness = context.witnesses.get(owner)
                if witness is not None:
                    skipped_with_witness.setdefault(owner, witness)
        if not skipped_with_witness:
            return []
        spec = context.target.spec
        optimizers = {"Spec(optimizer=...)": spec.optimizer} if spec.optimizer else default_optimizers()
        passed: set = context.memo.setdefault("step_isolation_passed", set())
        findings = []
        for owner, witness in skipped_with_witness.items():
            for label, factory in optimizers.items():
                key = (owner, trace.path, label)
                if key in passed:
                    continue  # only passes are remembered: a failure must repeat when replayed
                model = context.fresh_model()
                optimizer = factory(model.parameters())
                context.run(model, witness, backward=True, record=False)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                module = model.get_submodule(owner)
                before = {n: p.detach().clone() for n, p in module.named_parameters(recurse=False)}
                second = context.run(model, example, backward=True, record=False)
                if owner in second.modules:
                    # The first step changed the weights, and with them this example's path
                    # (a router may now choose this expert): nothing to compare on this pair.
                    continue
                optimizer.step()
                moved = []
                for name, parameter in module.named_parameters(recurse=False):
                    change = (parameter.detach() - before[name]).abs().max().item() if parameter.numel() else 0.0
                    if not torch.equal(parameter.detach(), before[name]):
                        moved.append(f"{owner}.{name} by up to {change:.3g}")
                if moved:
                    findings.append(
                        f"{label} moved {_join(moved)} although {owner} did not run on this example "
                        f"(after a step on an example where it ran: {witness.describe()}). "
                        "A skipped branch must get no gradient (None, not zero) so optimizers leave it alone."
                    )
                else:
                    passed.add(key)
        return findings
