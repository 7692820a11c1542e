"""Probes of influence for grad_isolation: does a module's output, or a parameter, move the
model's output; and is a module that does not masked away by a choice, or at a degenerate
size or value.

Every probe runs copies of the example under its seed (``Context.run``, ``record=False``),
draws its moves from fixed-seed generators, and restores what it changes: same example,
same answer.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dyncheck.agreement import _move, default_dtype
from dyncheck.casting import widened
from dyncheck.compare import tensor_bytes
from dyncheck.errors import ModelError
from dyncheck.examples import Example, strategy_arguments, strategy_kind
from dyncheck.invariants._base import Context
from dyncheck.invariants.padding_invariance import keep_relative_lengths
from dyncheck.seeding import seeded
from dyncheck.streams import Draws, argument
from dyncheck.tracing import Trace, default_loss, dense, floating_leaves, grads_put_back, tuple_like

__all__ = [
    "Reached", "influences", "moving_changes_output", "untrained_rows", "unused_modules", "zero_parameter_gradients",
]


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
        return tuple_like(value, items)
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
    attempts: range = range(len(_MOVES)),
) -> bool:
    """Whether perturbing ``module_name``'s output (on every call) changes the model's output;
    every run is made inside ``around()`` (the nudges of :func:`_holds_when_nudged`).
    ``attempts`` picks which of the moves to try (by their place in ``_MOVES``)."""
    module = model.get_submodule(module_name)
    for attempt in attempts:
        move = _MOVES[attempt]
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


def unused_modules(
    context: Context, model: nn.Module, example: Example, path: tuple[str, ...], candidates: list[str], baseline: Any
) -> list[str]:
    """Of ``candidates`` (modules that ran, which the loss's gradient did not reach), the ones
    that do not influence the output (no move of their output changes it, :func:`influences`)
    and are masked away by a choice.

    A mask is a choice that depends on values (a gate, a router, a control value): it lets
    the module through on other values of the same sizes, and it holds when the values move
    a little. So a module stays unused only if it is
    (a) not weighted by a saturated gate (:func:`_weighted_not_masked`);
    (b) used on some example of the same sizes and path, its floating inputs moved a lot
        (integer and boolean inputs and masks kept), or its choices (the flags, ints and
        choices of ``controls``) drawn again, the rest kept. A module that cannot influence the
        output at these sizes is at a degenerate size, not masked: a softmax over one key
        (attention over a sequence of length 1) is 1 whatever the query, and a layer behind
        a zero-initialised weight (a LoRA ``B``, a ReZero gate) cannot move anything yet;
    (c) still unused with the inputs and every other module's output nudged by a small
        amount, one way or the opposite way (a control exactly at its threshold opens one
        way only). A module that counts as soon as the values move a little sat at a
        degenerate value: all keys equal (a constant input), a tie;
    (d) still unused with the model's random draws at either end of their range, when it
        draws any: a module a random draw masked (BlockDrop's training forward, a block
        multiplied by a Bernoulli sample of its policy's probability) is a random choice,
        as a drop path's is, not a mask (:func:`_masked_by_chance`).

    Every test is about one module alone, so the answer is their conjunction in any order;
    they run cheapest-first for the common cases: one move (a saturated module moves the
    output at once), (a) and (b) (a module at a degenerate size is told apart in a few
    passes shared by all the modules), the other moves, then (c)."""
    first = range(1)
    unused = [m for m in candidates if not influences(context, model, example, m, baseline, attempts=first)]
    if unused:
        unused = _weighted_not_masked(context, model, example, unused)
    if unused:
        unused = _used_elsewhere(context, model, example, path, unused)
    rest = range(1, len(_MOVES))
    unused = [m for m in unused if not influences(context, model, example, m, baseline, attempts=rest)]
    if unused:
        unused = _holds_when_nudged(context, model, example, unused)
    if unused:
        unused = _shape_no_gradient(context, example, unused)
    if unused:
        unused = _masked_by_chance(context, model, example, unused)
    return unused


def _masked_by_chance(context: Context, model: nn.Module, example: Example, unused: list[str]) -> list[str]:
    """Of ``unused``, the modules that stay unused on the same example with every random
    draw of the run at its lowest and then at its highest (:class:`_Extremes`); all of them
    when the model draws no random numbers on this example. A block kept by a Bernoulli
    sample of its policy's probability is let through by a draw of 1 whatever the
    probability, so a mask that a random draw made is told from one the values made."""
    if not _draws_random(context, model, example):
        return unused
    pending = list(unused)
    for high in (False, True):
        try:
            with _Extremes(high):
                baseline = context.run(model, example, record=False, grad=False).output
        except ModelError:
            continue
        pending = [
            n for n in pending if not influences(context, model, example, n, baseline, around=lambda: _Extremes(high))
        ]
        if not pending:
            break
    return [n for n in unused if n in pending]


class _Extremes(TorchFunctionMode):
    """Every Bernoulli, uniform and normal draw at one end of its range: 0, the lower bound
    and 3 standard deviations below the mean (``high=False``), or 1, just under the upper
    bound and 3 above (``high=True``). Dropout is left alone: it thins units, it does not
    choose a module; so is a draw from a ``generator=`` of its own."""

    def __init__(self, high: bool) -> None:
        super().__init__()
        self.high = high

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if not isinstance(result, torch.Tensor) or not result.is_floating_point() or kwargs.get("generator") is not None:
            # a draw from a generator of its own is not the model's seeded stream (dyncheck's
            # own moves of a module's output draw so)
            return result
        if name in ("bernoulli", "bernoulli_"):
            value = 1.0 if self.high else 0.0
        elif name in ("rand", "rand_like", "uniform_"):
            low, high = (argument(args, kwargs, 1, "from", 0.0), argument(args, kwargs, 2, "to", 1.0)) if (
                name == "uniform_"
            ) else (0.0, 1.0)
            value = torch.nextafter(torch.tensor(float(high)), torch.tensor(float(low))).item() if self.high else low
        elif name in ("randn", "randn_like", "normal_"):
            mean, std = (argument(args, kwargs, 1, "mean", 0.0), argument(args, kwargs, 2, "std", 1.0)) if (
                name == "normal_"
            ) else (0.0, 1.0)
            value = mean + (3 if self.high else -3) * std
        else:
            return result
        with torch.no_grad():
            return result.fill_(value) if name.endswith("_") else torch.full_like(result, value)


def _same_gradients(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], *, besides: str) -> bool:
    """Whether the parameters outside ``besides`` (a module's prefix) got the same
    gradients, bitwise (NaN equal to NaN), in ``before`` as in ``after``."""
    ours = {n: g for n, g in before.items() if not n.startswith(besides)}
    theirs = {n: g for n, g in after.items() if not n.startswith(besides)}
    return ours.keys() == theirs.keys() and all(
        torch.equal(torch.nan_to_num(g), torch.nan_to_num(theirs[n])) for n, g in ours.items()
    )


def _shape_no_gradient(context: Context, example: Example, names: list[str]) -> list[str]:
    """Of ``names`` (modules whose output, moved, leaves the output unchanged), those whose
    moved output leaves every other parameter's gradient unchanged too. A straight-through
    gate (``F.gumbel_softmax(logits, hard=True)``, SkipNet's) multiplies a block by an exact
    0 in forward, but the gate's gradient is the block's output against the output's
    gradient: the block runs so that the gate learns, and is used, by backward. A mask
    that is a choice (``one_hot(argmax)``) passes no gradient on: the module stays unused.
    Forward and backward on fresh copies (the example's seed draws the same gate), once for
    the gradients and once per module, only for what every other test left unused; as
    for a saturated gate (:func:`_weighted_not_masked`), again in float64 with the large
    inputs scaled to magnitude 1, where a soft gate at logits in the thousands still has a
    gradient."""
    floating = [p for p in context.prototype().parameters() if p.is_floating_point()]
    if not floating or floating[0].is_complex():
        return names
    device = str(floating[0].device)
    moderated = _moderated(_move(dict(example.args), device, torch.float64))
    wide_args = keep_relative_lengths(context.target, example.args, moderated)
    runs = [(example, False), (Example(wide_args, example.seed, example.dims), True)]

    def gradients(run: Example, wide: bool, name: str | None) -> dict[str, torch.Tensor] | None:
        model = context.fresh_model()
        if wide:
            model = widened(model, torch.float64)
        handle = None
        if name is not None:
            generator = torch.Generator().manual_seed(1234)
            handle = model.get_submodule(name).register_forward_hook(
                lambda _module, _args, output: _perturb(output, _MOVES[0], generator)
            )
        try:
            with default_dtype(torch.float64 if wide else None):
                context.run(model, run, backward=True, record=False)
        except ModelError:
            return None
        finally:
            if handle is not None:
                handle.remove()
        return {n: p.grad.detach() for n, p in model.named_parameters() if p.grad is not None}

    unused = list(names)
    for run, wide in runs:
        before = gradients(run, wide, None)
        if before is None:
            continue
        still = []
        for name in unused:
            after = gradients(run, wide, name)
            if after is not None and _same_gradients(before, after, besides=f"{name}."):
                still.append(name)  # else the moved output changed another parameter's gradient: used
        unused = still
        if not unused:
            break
    return unused


class Reached:
    """Forward hooks on the modules ``names`` of ``model`` (while the block is open) noting
    which ran with an output autograd follows (``ran``) and which such output got a
    non-zero gradient in a backward pass made with :meth:`backward` (``reached``).

    Hooks on the outputs rather than ``autograd.grad`` to tensors kept from forward: a
    reentrant checkpoint (``checkpoint(block, h, use_reentrant=True)``, Hugging Face's
    gradient checkpointing) runs its block without autograd in forward and again, with it,
    inside backward, where only hooks see the block's outputs; and it refuses
    ``autograd.grad``."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        self.model, self.names = model, names
        self.ran: set[str] = set()
        self.reached: set[str] = set()
        # (module, where its output enters the graph): the output's gradient edge as the
        # module made it, which an in-place op after it (``nn.ReLU(inplace=True)``) leaves
        # in place; the tensor itself would then stand for the activation's output.
        self._outputs: list[tuple[str, Any]] = []

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            for _, t in floating_leaves(output):
                if (t.is_floating_point() or t.is_complex()) and t.requires_grad:
                    self.ran.add(name)
                    self._outputs.append((name, _gradient_edge(t)))
                    t.register_hook(lambda grad, name=name: self._seen(name, grad))

        return hook

    def _seen(self, name: str, grad: torch.Tensor | None) -> None:
        if name not in self.reached and grad is not None and bool(grad.detach().ne(0).any()):
            self.reached.add(name)

    @contextlib.contextmanager
    def hooked(self) -> Iterator[Reached]:
        handles = [self.model.get_submodule(name).register_forward_hook(self._hook(name)) for name in self.names]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()
            # The outputs hold hooks that hold this object: let them (and the activations
            # they keep) go now, not at the next cyclic collection.
            self._outputs.clear()

    def backward(self, loss: torch.Tensor) -> bool:
        """Backward from ``loss`` inside the block, so the hooks see every gradient; False
        when it raised. ``autograd.grad`` to the outputs seen in forward (no parameter's
        gradient is computed), or, where the graph holds a reentrant checkpoint,
        ``loss.backward()`` with every parameter's ``.grad`` put back as it was."""
        if not _reentrant_checkpoint_in(loss):
            if not self._outputs:
                return True
            try:
                grads = torch.autograd.grad(loss, [edge for _, edge in self._outputs], allow_unused=True)
            except RuntimeError:
                return False  # backward raised (an in-place op on this path)
            for (name, _), grad in zip(self._outputs, grads):
                self._seen(name, grad)
            return True
        try:
            with grads_put_back(self.model.parameters()):
                loss.backward()
        except RuntimeError:
            return False
        return True


def _gradient_edge(t: torch.Tensor) -> Any:
    """Where ``t`` enters the autograd graph now (``torch.autograd.graph.get_gradient_edge``),
    for ``autograd.grad`` to stop at even after an in-place op changes ``t``; ``t`` itself
    where torch has no such edges."""
    get = getattr(torch.autograd.graph, "get_gradient_edge", None)
    if get is None or t.grad_fn is None:
        return t
    return get(t)


def _reentrant_checkpoint_in(loss: torch.Tensor) -> bool:
    """Whether ``loss``'s autograd graph holds a reentrant checkpoint's node."""
    stack, seen = [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        if type(node).__name__ == "CheckpointFunctionBackward":
            return True
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


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
    # around() stays open through backward: a checkpointed block runs again there.
    with Reached(model, names).hooked() as seen, around():
        try:
            trace = context.run(model, example, record=False)
        except ModelError:
            return None
        leaves_ = [t for _, t in floating_leaves(trace.output) if t.is_floating_point() and t.requires_grad]
        if not leaves_:
            return trace, set()
        generator = torch.Generator().manual_seed(example.seed)
        loss = sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)).sum() for t in leaves_)
        # One backward pass for every module's outputs (each gradient is the one a pass of
        # its own would give).
        if not seen.backward(loss):
            return None
    return trace, seen.reached


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
        return tuple_like(value, items)
    if isinstance(value, list):
        return [_nudge(v, sign, generator) for v in value]
    if isinstance(value, dict):
        return {k: _nudge(v, sign, generator) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _nudging(model: nn.Module, spared: str, sign: float, seed: int = 2718) -> Iterator[None]:
    """Every module's output but ``spared``'s nudged (see :func:`_nudge`), the same way on
    every run made inside the block (the directions from ``seed``)."""
    generator = torch.Generator().manual_seed(seed)

    def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
        return _nudge(output, sign, generator)

    handles = [m.register_forward_hook(hook) for name, m in model.named_modules() if name and name != spared]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


#: Where :func:`_holds_when_nudged` scales large inputs to: about 1, not on it.
_NUDGED_MAGNITUDE = 1.25
#: The seeds of :func:`_holds_when_nudged`'s random directions: (the inputs', the other
#: modules' outputs'), one pair per direction.
_NUDGE_SEEDS = ((3141, 2718), (1618, 1414))


def _holds_when_nudged(context: Context, model: nn.Module, example: Example, names: list[str]) -> list[str]:
    """Of ``names``, the modules that the output's gradient still does not reach with the
    inputs and every other module's output nudged, one way or the opposite way. Where the
    example has inputs larger than 1 in magnitude, a way holds only if it holds again with
    them scaled to magnitude 1.25 and nudged: keys all at 1000 saturate an additive
    attention's tanh, so a nudge of a thousandth leaves their tie, and the query out of it; at
    magnitude about 1 the same nudge breaks the tie (as :func:`_weighted_not_masked` scales a
    saturated gate). Not exactly 1: a constant input scaled there sits on a threshold at 1
    (a mask keeping rows with a value below 1 in magnitude), which a nudge opens both ways.

    A mask holds one way or the other whatever the direction of the nudge (a control at its
    threshold closes one way, whichever that is); one random direction can land on another
    degenerate value. So a module is held only where a way holds in each of two random
    directions (``_NUDGE_SEEDS``): on an all-zero batch, pytorch-tabnet's sparsemax attention
    (its weights multiply the features, so it cannot matter there) went one-hot one way on
    the first direction, where sparsemax's Jacobian is zero, and was called masked."""
    scales = [example.args]
    moderated = _moderated(example.args, _NUDGED_MAGNITUDE)
    if any(moderated[key] is not example.args[key] for key in example.args):
        scales.append(moderated)

    def holds(name: str, inputs_seed: int, outputs_seed: int) -> bool:
        for sign in (1.0, -1.0):

            def around(sign: float = sign) -> contextlib.AbstractContextManager[Any]:
                return _nudging(model, name, sign, outputs_seed)

            for base in scales:
                generator = torch.Generator().manual_seed(inputs_seed)
                moved = {k: _nudge(v, sign, generator) for k, v in base.items()}
                args = keep_relative_lengths(context.target, base, moved)
                found = _gradient_reaches(context, model, Example(args, example.seed, example.dims), [name], around)
                if found is None or name in found[1]:
                    break
            else:
                return True
        return False

    return [name for name in names if all(holds(name, *seeds) for seeds in _NUDGE_SEEDS)]


def _redrawn(example: Example, move: str, seed: int, target: Any = None) -> Example:
    """``example`` with its floating inputs moved a lot (see ``_REDRAWS``): the same sizes,
    with integer and boolean inputs (tokens, lengths, counts, flags), masks and the
    ``target``'s relative lengths kept."""
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
    return Example(keep_relative_lengths(target, example.args, args), example.seed, example.dims)


#: How many times :func:`_chosen_otherwise` draws the example's choices again.
_CHOICE_REDRAWS = 3


def _chosen_otherwise(example: Example, inputs: Mapping[str, Any], seed: int) -> Example | None:
    """``example`` with its choices drawn again within their strategies' ranges, everything
    else kept: a flag drawn by ``controls(dtype=bool)`` flipped, an int or a choice of
    ``controls(...)`` at another of its values. None where the example has no such input.

    Integer and boolean controls select as floats do: every task head run on every sample
    and one picked by ``task: int``, an adapter always run and multiplied by
    ``use_lora: bool``, are masked by a choice, which redraws of the floats alone never
    showed. Integer tensors are not drawn again: token ids hold special values (a source of
    padding tokens only leaves its attention nothing to weigh: a degenerate value, which a
    redraw of its ids would read as a mask); op codes in a tensor stay a known limit."""
    generator = random.Random(8765 + seed)
    args, changed = dict(example.args), False
    for name, value in example.args.items():
        strategy = inputs.get(name)
        kind, kwargs = strategy_kind(strategy), strategy_arguments(strategy)
        other: Any = value
        if kind == "controls" and not isinstance(value, torch.Tensor):
            if kwargs.get("choices") is not None:
                values = [v for v in kwargs["choices"] if v != value]
                other = generator.choice(values) if values else value
            elif kwargs.get("dtype") is bool and isinstance(value, bool):
                other = not value
            elif kwargs.get("dtype") is int and isinstance(value, int) and not isinstance(value, bool):
                low, high = math.ceil(kwargs.get("min_value", 0)), math.floor(kwargs.get("max_value", 1))
                values = [v for v in range(low, high + 1) if v != value][:64]
                other = generator.choice(values) if values else value
        if other is not value:
            args[name], changed = other, True
    return Example(args, example.seed, example.dims) if changed else None


def _movable(example: Example) -> bool:
    """Whether :func:`_redrawn` moves anything in ``example``: a float, or a floating tensor
    outside the masks."""
    def floating(value: Any) -> bool:
        if isinstance(value, torch.Tensor):
            return value.is_floating_point()
        if isinstance(value, nn.utils.rnn.PackedSequence):
            return value.data.is_floating_point()
        if isinstance(value, (tuple, list)):
            return any(floating(v) for v in value)
        if isinstance(value, dict):
            return any(floating(v) for v in value.values())
        return False

    return any(
        isinstance(value, float) or floating(value)
        for name, value in example.args.items() if "mask" not in name.lower()
    )


def _used_elsewhere(
    context: Context, model: nn.Module, example: Example, path: tuple[str, ...], names: list[str]
) -> list[str]:
    """Of ``names``, the modules that influence the output (the gradient reaches them, and
    moving their output changes it) on some redrawn example of the same sizes on which the
    model takes the same path.

    The answer is about the sizes and the path, so it is kept for the check's later examples
    with the same path, shapes and non-floating inputs (tokens, masks, lengths): attention
    over one token reaches this on most examples of a text model, and each search is eight
    runs with backward. The redraws keep the example's seed, and so its random draws; for a
    model that draws random numbers on that path the answer is kept for that seed only: a
    drop path (timm's) that drew "drop" for every sample masks its block on this seed
    whatever the inputs, and is a random choice, not a mask to report because another seed
    kept the block."""
    layout = _layout(example)
    known: dict[str, bool] = {}
    if layout is not None:
        draws = context.memo.setdefault("draws random", {})
        if (path, layout) not in draws:
            draws[path, layout] = _draws_random(context, model, example)
        seed = example.seed if draws[path, layout] else None
        known = context.memo.setdefault("used elsewhere", {}).setdefault((path, layout, seed), {})
    todo = [n for n in names if n not in known]
    if todo:
        found = _search_elsewhere(context, model, example, path, todo)
        known.update((n, n in found) for n in todo)
    return [n for n in names if known[n]]


def _draws_random(context: Context, model: nn.Module, example: Example) -> bool:
    """Whether a call of ``model`` on ``example`` draws from a generator the seed sets
    (torch's, python's ``random``, numpy's: dropout in training, ``bernoulli_``,
    ``random.random()``): one forward pass without autograd, the generators' states
    compared before and after, and torch's random functions watched (a draw inside
    ``torch.random.fork_rng()`` puts the state back). A call that raises counts as drawing
    (its answers are then not shared between seeds)."""
    recorder = Draws()
    with seeded(example.seed), torch.no_grad():
        before = _generator_states()
        try:
            with recorder:
                context.target.call(model, example.fresh_args())
        except Exception:
            return True
        after = _generator_states()
    return bool(recorder.calls) or any(not _same_state(a, b) for a, b in zip(before, after))


def _generator_states() -> list[Any]:
    numpy = sys.modules.get("numpy")
    states: list[Any] = [torch.random.get_rng_state(), random.getstate()]
    if numpy is not None:
        states.append(numpy.random.get_state())
    if torch.cuda.is_initialized():
        states.extend(torch.cuda.get_rng_state_all())
    return states


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, tuple):  # python's state, numpy's (its key array inside)
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if hasattr(a, "shape"):
        return a.shape == b.shape and bool((a == b).all())
    return a == b


def _layout(example: Example) -> tuple | None:
    """What a redraw of ``example`` keeps (shapes, and every value that is not floating), as
    a key; None when an input is of another kind."""
    key: list[tuple] = []
    for name, value in sorted(example.args.items()):
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                key.append((name, tuple(value.shape), value.dtype, value.device))
            else:
                key.append((name, tuple(value.shape), value.dtype, value.device, tensor_bytes(value)))
        elif isinstance(value, float):
            key.append((name, float))
        elif value is None or isinstance(value, (bool, int, str)):
            key.append((name, value))
        else:
            return None
    return tuple(key)


def _search_elsewhere(
    context: Context, model: nn.Module, example: Example, path: tuple[str, ...], names: list[str]
) -> list[str]:
    """:func:`_used_elsewhere`'s search, on this example's redraws."""
    pending = list(names)
    # With nothing to move (token ids and masks only), every redraw is the example itself:
    # one tells what all of them would. Then the choices drawn again, the rest kept.
    redraws = [
        _redrawn(example, move, seed, context.target)
        for move, seed in (_REDRAWS if _movable(example) else _REDRAWS[:1])
    ]
    chosen = (_chosen_otherwise(example, context.target.spec.inputs, seed) for seed in range(_CHOICE_REDRAWS))
    for other in itertools.chain(redraws, chosen):
        if other is None:
            continue
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
    wide = widened(context.copy_of(model), torch.float64)
    args = keep_relative_lengths(context.target, example.args, _move(dict(example.args), device, torch.float64))
    unused = _zero_gradient(context, wide, Example(args, example.seed, example.dims), unused, absent=True)
    moderated = _moderated(args)
    if unused and any(moderated[name] is not args[name] for name in args):
        unused = _zero_gradient(context, wide, Example(moderated, example.seed, example.dims), unused, absent=False)
    return unused


def _moderated(args: dict[str, Any], magnitude: float = 1.0) -> dict[str, Any]:
    """``args`` with every floating tensor input larger than 1 in magnitude scaled to
    ``magnitude``."""
    return {
        name: value * (magnitude / float(value.abs().max()))
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
    with Reached(wide, names).hooked() as seen:
        try:
            with default_dtype(torch.float64):
                output = context.run(wide, example, record=False).output
        except ModelError:
            return names  # the model cannot run in float64: keep what float32 showed
        if not any(t.is_floating_point() and t.requires_grad for _, t in floating_leaves(output)):
            return names
        loss = default_loss(output, seed=example.seed)
        with default_dtype(torch.float64):
            if not seen.backward(loss):
                return []  # backward raised: no evidence of a mask
    return [
        name for name in names
        if name not in seen.reached and (name in seen.ran or absent)
    ]


def zero_parameter_gradients(context: Context, model: nn.Module, example: Example, names: list[str]) -> set[str]:
    """Of the parameters ``names``, those whose gradient (of a random projection of the
    output) is exactly zero or absent in a float64 copy of ``model`` on every run of
    :func:`_track_silent`'s list."""
    try:
        wide = widened(context.copy_of(model), torch.float64)
    except Exception:
        return set(names)  # the model cannot be copied or cast: keep what float32 showed
    by_name = dict(wide.named_parameters(remove_duplicate=False))
    parameters = [by_name[name] for name in names]
    device = str(parameters[0].device)
    args = keep_relative_lengths(context.target, example.args, _move(dict(example.args), device, torch.float64))
    moderated = Example(_moderated(args), example.seed, example.dims)
    runs = [Example(args, example.seed, example.dims), moderated]
    runs += [_redrawn(moderated, move, seed, context.target) for move, seed in _REDRAWS[:5]]
    zero = set(names)
    for run in runs:
        try:
            with default_dtype(torch.float64):
                output = context.run(wide, run, record=False).output
        except ModelError:
            continue
        if not any(t.is_floating_point() and t.requires_grad for _, t in floating_leaves(output)):
            continue
        loss = default_loss(output, seed=run.seed)
        try:
            # backward(), not autograd.grad(), which a reentrant checkpoint refuses: every run
            # here was "no evidence", and a parameter with a zero gradient on a few degenerate
            # examples was reported.
            with grads_put_back(wide.parameters()):
                loss.backward()
                grads = dense([parameter.grad for parameter in parameters])
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


def untrained_rows(model: nn.Module, owners: tuple[str, ...], parameter: nn.Parameter) -> list[int]:
    """Rows of ``parameter`` that torch itself never trains: the ``padding_idx`` row of an
    ``nn.Embedding`` or ``nn.EmbeddingBag`` weight (its gradient there is zero by design)."""
    rows = []
    for owner in owners:
        module = model.get_submodule(owner)
        if (
            isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.weight is parameter
            and module.padding_idx is not None
        ):
            rows.append(module.padding_idx % parameter.shape[0])
    return rows


def moving_changes_output(
    context: Context, model: nn.Module, example: Example, parameter: nn.Parameter, kept_rows: Sequence[int] = ()
) -> bool:
    """Whether moving ``parameter`` (as ``_MOVES`` says) changes the output by more than
    rounding; the parameter is restored exactly. The rows ``kept_rows`` stay (those torch
    never trains, :func:`untrained_rows`: moving them proves nothing about learning)."""
    baseline = context.run(model, example, record=False, grad=False).output
    saved = parameter.detach().clone()
    try:
        for attempt, move in enumerate(_MOVES):
            with torch.no_grad():
                parameter.copy_(_perturb(saved, move, torch.Generator().manual_seed(1234 + attempt)))
                for row in kept_rows:
                    parameter[row] = saved[row]
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
