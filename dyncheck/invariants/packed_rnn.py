"""packed_rnn: every nn.RNN/LSTM/GRU submodule's packed forward equals a naive loop.

For each example and every ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` submodule of the model
(subclasses included), on a padded batch of random values drawn from the example's seed:

* the lengths are the example's own lengths argument when ``forward`` takes one, else
  drawn from the seed over the example's ``"batch"`` and ``"time"`` sizes: unsorted, all
  equal, with a sequence of length 1, or with the longest equal to the padded length;
* the batch goes through ``pack_padded_sequence`` twice, as it is with
  ``enforce_sorted=False`` and sorted by length with ``enforce_sorted=True``, then the
  module, then ``pad_packed_sequence(padding_value=-7.0, total_length=<padded length>)``;
* the outputs at valid steps, ``h_n`` and ``c_n`` equal
  :func:`~dyncheck.rnn_reference.naive_rnn` — each sequence alone, step by step, from the
  module's own weights, in float64 (all sequences computed side by side, each on its own:
  :func:`~dyncheck.rnn_reference.naive_rnn_rows`) — within the module dtype's tolerance;
* the gradients of every parameter, of a loss through the packed path (a fixed random
  projection of the valid outputs, ``h_n`` and ``c_n``), equal those through the loop;
* every padded position after ``pad_packed_sequence`` holds ``padding_value``.

The module runs in eval mode: dropout between layers draws masks the loop cannot know,
and dropout is all that eval mode changes in these modules. On CUDA with cuDNN, which
refuses backward in eval mode, it runs in train mode with that dropout set to 0, and TF32
off. A subclass that overrides
``forward`` (to unpack, re-pad, add noise) is checked like the module it extends.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dyncheck.agreement import tf32_disabled
from dyncheck.cloning import clone
from dyncheck.compare import mismatch, tolerances
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants.padding_invariance import (
    gradient_tolerances, lengths_argument, lengths_relative, relative_padded, relative_steps, slot_value,
)
from dyncheck.rnn_reference import naive_rnn_rows
from dyncheck.target import Target
from dyncheck.tracing import project, projection

__all__ = ["PADDING_VALUE", "PackedRNN", "check_module", "draw_lengths", "recurrent_modules"]

#: What ``pad_packed_sequence`` must write at padded positions: not 0, so that a module
#: whose output there merely happens to be zero is not taken for correct padding.
PADDING_VALUE = -7.0


def recurrent_modules(model: nn.Module) -> list[tuple[str, nn.RNNBase]]:
    """Every ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` in ``model`` (itself included), by name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU))]


def draw_lengths(target: Target, example: Example, generator: torch.Generator) -> tuple[list[int], int]:
    """(lengths, padded length): the example's lengths argument, or drawn from the seed."""
    dims = example.dims
    slot = lengths_argument(target)
    value = slot_value(example.args, slot) if slot is not None else None
    if value is not None:
        if lengths_relative(target, slot):  # fractions of the padded length (SpeechBrain's wav_lens)
            steps = relative_steps(value, relative_padded(target, slot, dims))
        else:
            steps = [int(v) for v in torch.as_tensor(value).reshape(-1).tolist()]
        given = [max(1, n) for n in steps]
        if given:  # pack_padded_sequence refuses a length of 0: such a sequence runs as length 1
            return given, max(dims.get("time", 0), *given)

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    batch = max(1, dims.get("batch") or draw(1, 4))
    padded = max(1, dims.get("time") or draw(1, 8))
    lengths = torch.randint(1, padded + 1, (batch,), generator=generator).tolist()
    case = draw(0, 3)
    if case == 1:
        lengths = [lengths[0]] * batch  # all equal
    elif case == 2:
        lengths[draw(0, batch - 1)] = padded  # the longest fills the padded length
    elif case == 3:
        lengths[draw(0, batch - 1)] = 1  # a sequence of one step
    return lengths, padded


class PackedRNN(Invariant):
    name = "packed_rnn"
    summary = (
        "every nn.RNN/LSTM/GRU submodule's packed forward (enforce_sorted both ways) equals a "
        "naive step-by-step loop over each sequence alone: valid outputs, h_n, c_n, parameter "
        "gradients, and padding_value at padded positions"
    )

    def applies_to(self, target: Target) -> str | None:
        try:
            model = target.build()
        except Exception:
            return None  # the check reports the failed build with its context
        return None if recurrent_modules(model) else "no nn.RNN/LSTM/GRU submodule"

    def check(self, context: Context, example: Example) -> None:
        model = context.fresh_model()
        generator = torch.Generator().manual_seed(example.seed)
        lengths, padded = draw_lengths(context.target, example, generator)
        findings: dict[str, tuple[list[str], list[str]]] = {}
        modules = recurrent_modules(model)
        floating = [(n, m) for n, m in modules if _first_floating(m)]
        if not floating:
            name, module = modules[0]
            dtype = next((str(p.dtype).removeprefix("torch.") for p in module.parameters()), "no parameters")
            return context.nothing_to_compare(
                f"no nn.RNN/LSTM/GRU submodule has floating-point parameters "
                f"({name or type(model).__name__}: {dtype}): nothing to run through the naive loop"
            )
        # an RNN whose weights forward sets itself (AWD-LSTM's weight drop deletes weight_hh_l0
        # and sets it from weight_hh_l0_raw in each call) has none to run the equations with
        set_in_forward = [(n, m) for n, m in floating if not _own_weights(m)]
        floating = [(n, m) for n, m in floating if _own_weights(m)]
        if not floating:
            name, module = set_in_forward[0]
            missing = next(w for w in module._flat_weights_names if not isinstance(getattr(module, w, None), torch.Tensor))
            return context.nothing_to_compare(
                f"{name or type(model).__name__}'s {missing} is not a tensor of it before a call (set in forward, as "
                "a weight drop does): no weights to run the naive loop with"
            )
        context.compared()
        for module_name, module in floating:
            name = module_name or type(model).__name__
            for text, details, setting in check_module(name, module, lengths, padded, generator):
                findings.setdefault(text, (details, []))[1].append(setting)
        if not findings:
            return
        context_line = f"lengths: {lengths} (padded length {padded})"
        items = [(f"{text}, with enforce_sorted={' and '.join(settings)}", details)
                 for text, (details, settings) in findings.items()]
        if len(items) == 1:
            text, lines = items[0]
            headline, details = f"{text}.", [*lines, context_line]
        else:
            headline = f"The packed forward differs from the naive loop ({len(items)} problems):"
            details = []
            for text, lines in items:
                details.append(f"- {text}.")
                details.extend(f"    {line}" for line in lines)
            details.append(context_line)
        # One raise statement: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, details)


def _packed_call(module: nn.RNNBase, packed: Any) -> Any:
    """``module(packed)``; for a subclass whose forward requires more than the input (a
    tagger's LSTM that packs inside its own ``forward(x, lengths)``), torch's forward, which
    is the layer it subclasses. A subclass whose forward takes the input alone is called as
    it is: its own forward is what the model runs."""
    try:
        parameters = list(inspect.signature(type(module).forward).parameters.values())[2:]
    except (TypeError, ValueError):
        parameters = []
    if any(p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
           for p in parameters):
        base = next(k for k in type(module).__mro__ if k.__module__ == "torch.nn.modules.rnn")
        return base.forward(module, packed)
    return module(packed)


def _own_weights(module: nn.RNNBase) -> bool:
    """Whether every weight the module's equations use is a tensor of it before any call."""
    return all(isinstance(getattr(module, name, None), torch.Tensor) for name in module._flat_weights_names)


def _first_floating(module: nn.RNNBase) -> bool:
    """Whether the module's parameters are floating point (the naive loop runs in float64)."""
    first = next(module.parameters(), None)
    return first is not None and first.is_floating_point()


def check_module(
    name: str, module: nn.RNNBase, lengths: list[int], padded: int, generator: torch.Generator
) -> list[tuple[str, list[str], str]]:
    """(finding, detail lines, enforce_sorted setting) for each way ``module`` breaks."""
    with tf32_disabled():  # TF32 rounds cuDNN's float32 to 10 bits of mantissa
        return _compare_module(name, module, lengths, padded, generator)


def _compare_module(
    name: str, module: nn.RNNBase, lengths: list[int], padded: int, generator: torch.Generator
) -> list[tuple[str, list[str], str]]:
    first = next(module.parameters(), None)
    if first is None or not first.is_floating_point():
        return []
    dtype, device = first.dtype, first.device
    rtol, atol = tolerances(dtype)
    if first.is_cuda and torch.backends.cudnn.enabled:
        # cuDNN refuses backward in eval mode ("cudnn RNN backward can only be called in
        # training mode"): train mode, with the dropout between layers turned off.
        module.train()
        module.dropout = 0.0
    else:
        module.eval()
    described = f"{name} ({module!r})"
    batch = len(lengths)

    # Random sequences; the padding holds large values, which only a bug would read.
    x = torch.randn(batch, padded, module.input_size, generator=generator, dtype=torch.float64)
    for row, length in enumerate(lengths):
        x[row, length:] = 1e3
    x = x.to(dtype)

    # The reference: each sequence alone through the equations, on a float64 copy (all
    # sequences side by side, each on its own: see naive_rnn_rows).
    reference = clone(module).double()
    naive = naive_rnn_rows(reference, [x[row, :length].to(device, torch.float64) for row, length in enumerate(lengths)])
    # The loss's weights: fixed per sequence and result, whatever its position in the batch.
    seed = int(torch.randint(2**62, (), generator=generator))
    projections = [
        [projection(r.shape, seed=seed, key=f"{row}.{i}") for i, r in enumerate(results) if r is not None]
        for row, results in enumerate(naive)
    ]
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    naive_grads: dict[str, torch.Tensor] = {}
    if trainable:
        loss = sum(_project(projections[row], naive[row]) for row in range(batch))
        found = torch.autograd.grad(loss, [p for n, p in reference.named_parameters() if n in dict(trainable)],
                                    allow_unused=True)
        naive_grads = {n: g for (n, _), g in zip(trainable, found)}

    findings = []
    for enforce_sorted in (False, True):
        setting = str(enforce_sorted)
        order = sorted(range(batch), key=lambda r: -lengths[r]) if enforce_sorted else list(range(batch))
        inputs = x[order].to(device)
        if not module.batch_first:
            inputs = inputs.transpose(0, 1)
        sorted_lengths = torch.tensor([lengths[r] for r in order])
        try:
            packed = pack_padded_sequence(
                inputs, sorted_lengths, batch_first=module.batch_first, enforce_sorted=enforce_sorted
            )
            packed_out, hidden = _packed_call(module, packed)
            out, _ = pad_packed_sequence(
                packed_out, batch_first=module.batch_first, padding_value=PADDING_VALUE, total_length=padded
            )
        except Exception as exc:
            raise ModelError(f"{name}'s packed forward (enforce_sorted={setting})", exc) from exc
        if not module.batch_first:
            out = out.transpose(0, 1)
        h_n, c_n = hidden if isinstance(hidden, tuple) else (hidden, None)
        problem = _shape_problem(module, batch, padded, out, h_n, c_n)
        if problem is not None:
            findings.append((f"{described}: {problem}", [], setting))
            continue
        packed_results = []
        for position, row in enumerate(order):
            length = lengths[row]
            got = (out[position, :length], h_n[:, position], None if c_n is None else c_n[:, position])
            packed_results.append(got)
            findings += [
                (text, details, setting)
                for text, details in _compare_row(described, module, row, length, got, naive[row], rtol, atol)
            ]
            findings += [
                (text, details, setting)
                for text, details in _check_padding(described, row, length, padded, out[position, length:])
            ]
        if trainable:
            loss = sum(_project(projections[row], packed_results[p]) for p, row in enumerate(order))
            grads = (
                torch.autograd.grad(loss, [p for _, p in trainable], allow_unused=True)
                if loss.requires_grad
                else [None] * len(trainable)  # the packed path cut autograd off entirely
            )
            bad, details = [], []
            for (param_name, parameter), grad in zip(trainable, grads):
                expected = naive_grads[param_name]
                expected = torch.zeros_like(parameter, dtype=torch.float64) if expected is None else expected
                actual = torch.zeros_like(expected) if grad is None else grad.to(torch.float64)
                lines = mismatch(actual, expected, **gradient_tolerances(expected, rtol, atol))
                if lines:
                    bad.append(param_name)
                    details.append(f"{name}.{param_name}.grad:")
                    details.extend(f"  {line}" for line in lines)
            if bad:
                findings.append((
                    f"{described}: the gradients of {', '.join(bad)} through the packed path differ "
                    "from those through the naive loop",
                    details,
                    setting,
                ))
    return findings


def _shape_problem(
    module: nn.RNNBase, batch: int, padded: int, out: Any, h_n: Any, c_n: Any
) -> str | None:
    """What the module returned that its class never returns (a subclass's forward), if
    anything: the comparison would index it wrongly."""
    directions = 2 if module.bidirectional else 1
    out_size = getattr(module, "proj_size", 0) or module.hidden_size
    expected = {
        "the padded output": (out, (batch, padded, directions * out_size)),
        "h_n": (h_n, (module.num_layers * directions, batch, out_size)),
    }
    if isinstance(module, nn.LSTM):
        expected["c_n"] = (c_n, (module.num_layers * directions, batch, module.hidden_size))
    for what, (value, shape) in expected.items():
        if not isinstance(value, torch.Tensor):
            return (
                f"it returned {type(value).__name__} for {what}, where {_base_name(module)} returns a "
                f"tensor of shape {list(shape)}"
            )
        if tuple(value.shape) != shape:
            return (
                f"{what} has shape {list(value.shape)}, where {_base_name(module)} returns {list(shape)} "
                f"(batch first, for a batch of {batch} padded to {padded} steps)"
            )
    return None


def _base_name(module: nn.RNNBase) -> str:
    """The torch class a module is (or extends): RNN, LSTM or GRU."""
    return next(c.__name__ for c in type(module).__mro__ if c in (nn.RNN, nn.LSTM, nn.GRU, nn.RNNBase))


def _project(weights: list[torch.Tensor], results: tuple[Any, ...]) -> torch.Tensor:
    """A scalar loss: each result times a fixed random tensor of its shape, summed."""
    present = [r for r in results if r is not None]
    return sum(project(r.to(torch.float64), w) for w, r in zip(weights, present))


def _compare_row(
    described: str,
    module: nn.RNNBase,
    row: int,
    length: int,
    got: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
    expected: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
    rtol: float,
    atol: float,
) -> list[tuple[str, list[str]]]:
    out, h_n, c_n = (None if g is None else g.detach().to(torch.float64) for g in got)
    ref_out, ref_h, ref_c = (None if e is None else e.detach() for e in expected)
    sequence = f"sequence {row} (length {length})"
    found = []
    lines = mismatch(out, ref_out, rtol=rtol, atol=atol)
    if lines:
        same_shape = out.shape == ref_out.shape
        step = next((t for t in range(length) if same_shape and mismatch(out[t], ref_out[t], rtol=rtol, atol=atol)), 0)
        found.append((
            f"{described}: the output of {sequence} differs from the naive loop at step {step}",
            [f"output[{row}, :{length}] against the naive loop:", *(f"  {line}" for line in lines)],
        ))
    directions = 2 if module.bidirectional else 1
    for label, value, reference in (("h_n", h_n, ref_h), ("c_n", c_n, ref_c)):
        if reference is None:
            continue
        lines = mismatch(value, reference, rtol=rtol, atol=atol)
        if not lines:
            continue
        index = next(
            (i for i in range(reference.shape[0]) if value.shape == reference.shape
             and mismatch(value[i], reference[i], rtol=rtol, atol=atol)),
            0,
        )
        layer, reverse = divmod(index, directions)
        after = 0 if reverse else length - 1
        found.append((
            f"{described}: {label} of {sequence} differs from the naive loop's final state of layer "
            f"{layer}, {'reverse' if reverse else 'forward'} direction (after step {after})",
            [f"{label}[:, {row}] against the naive loop:", *(f"  {line}" for line in lines)],
        ))
    return found


def _check_padding(
    described: str, row: int, length: int, padded: int, tail: torch.Tensor
) -> list[tuple[str, list[str]]]:
    """``tail`` (the steps after ``length``) must hold exactly PADDING_VALUE."""
    wrong = (tail.detach() != PADDING_VALUE).reshape(tail.shape[0], -1).any(dim=1) if tail.numel() else None
    if wrong is None or not wrong.any():
        return []
    step = length + int(wrong.nonzero()[0])
    value = tail.detach()[step - length].reshape(-1)
    shown = float(value[value != PADDING_VALUE][0])
    return [(
        f"{described}: after pad_packed_sequence(padding_value={PADDING_VALUE}, total_length={padded}), "
        f"{int(wrong.sum())} padded step(s) of sequence {row} (length {length}) hold other values, "
        f"first at step {step} ({shown:.3g})",
        [],
    )]
