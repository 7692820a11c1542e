"""grad_isolation: gradients follow the path the call took.

A branch that was *skipped* is correct and its parameters get no gradient at all; a
branch that was *computed and thrown away* is a bug (it wastes compute, gets zero
gradients, and optimizers with momentum or weight decay still move it). For every
example, after forward and backward:

1. skipped means untouched: a parameter whose modules did not run has no gradient (zeros
   count for a module called on an earlier example, not for one no example calls: a table
   used through its ``.weight``; nor when moving every other weight gives them a gradient
   with the same modules run: a weight read directly, zero on this example's activations);
2. executed means connected: every parameter of a module that ran gets a gradient from
   backward (unless frozen; a reentrant checkpoint gives it one from its own backward; a
   parameter the call never read is left out of this path, not cut off, and so is one
   whose values do not reach the output on this example: moving it changes nothing);
3. executed means used: a module that ran influences the output (its output is
   perturbed through a forward hook; an output that does not change means the work was
   masked away, if a choice masked it: see :func:`~dyncheck.invariants._influence.unused_modules`;
   not judged on an example where no parameter got a gradient: the output is constant there);
4. declared branches: ``Spec(branches=...)`` modules run exactly when their predicate holds;
5. finite gradients, named (unless normalisation layers that saw a constant input are the
   whole cause: :mod:`dyncheck.norms`);
6. step isolation: after an optimizer step on an example where a module ran, a step on
   this example, where it did not, leaves its parameters bitwise unchanged;
7. influence means learning: a parameter that moves the output when moved does not get an
   exactly-zero gradient on every example of the run (checked in ``finish``).

A module called only on empty inputs (``expert(x[idx])`` with no row routed to it) did no
work: rules 2 and 3 leave it alone.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example, describe_value
from dyncheck.invariants._base import Context, Invariant, module_name_map, parameter_owners
from dyncheck.invariants._influence import (
    Reached,
    _outputs_equal,
    _used_elsewhere,
    influences,
    moving_changes_output,
    untrained_rows,
    unused_modules,
    zero_parameter_gradients,
)
from dyncheck.invariants.finite import non_finite
from dyncheck.norms import constant_norm_overflow, note_overflow
from dyncheck.tracing import Trace, leaves, missing_output, submodule_hooks

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
    taken = inspect.signature(predicate).parameters
    accepted = inspect.signature(forward).parameters
    defaults = {name: p.default for name, p in accepted.items() if p.default is not inspect.Parameter.empty}
    # a parameter with a default forward does not take is the predicate's own (i=i in a loop)
    names = [name for name, p in taken.items() if name in accepted or p.default is inspect.Parameter.empty]
    values = {name: example.args[name] if name in example.args else defaults.get(name) for name in names}
    with torch.no_grad():
        holds = bool(predicate(**values))
    return holds, ", ".join(describe_value(name, value) for name, value in values.items())


@contextlib.contextmanager
def _idle_calls(model: nn.Module) -> Iterator[set[str]]:
    """Names of the submodules whose every call inside the block had only empty tensors as
    inputs (``expert(x[idx])`` with no row routed to it): they computed nothing."""
    idle: set[str] = set()
    busy: set[str] = set()

    def hook_for(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, args: Any, kwargs: Any) -> None:
            tensors = [v for _, v in leaves((args, kwargs)) if isinstance(v, torch.Tensor)]
            if tensors and all(t.numel() == 0 for t in tensors):
                idle.add(name)
            else:
                busy.add(name)

        return hook

    try:
        with submodule_hooks(model, hook_for, pre=True, with_kwargs=True):
            yield idle
    finally:
        idle -= busy


@contextlib.contextmanager
def _output_gradients(model: nn.Module) -> Iterator[set[str]]:
    """Names of the submodules whose output got a non-zero gradient in a backward pass run
    inside the block (on any of their calls). Such a module influences the output (to first
    order, moving its output moves the loss), so rule 3 need not move it to find out: a
    module masked away gets an exactly-zero gradient, whatever the mask's dtype."""
    with Reached(model, [name for name, _ in model.named_modules() if name]).hooked() as seen:
        yield seen.reached


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
    dropped: set[str] = context.memo.setdefault("silent_done", set())
    candidates: dict[str, tuple[nn.Parameter, tuple[str, ...]]] = {}  # key -> (parameter, its modules)
    for parameter, names, owners in owners_by_param:
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
            candidates[key] = (parameter, owners)
    if not candidates:
        return
    zero = zero_parameter_gradients(context, model, example, list(candidates))
    for key, (parameter, owners) in candidates.items():
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
            # An embedding's padding row is never trained, by torch's design: on an example
            # of padding tokens only, moving that row changes the output, and proves nothing.
            kept = untrained_rows(model, owners, parameter)
            if moving_changes_output(context, model, example, parameter, kept):
                entry[1] = (example, trace.path)


#: On how many examples rule 7 moves a parameter before it concludes that the parameter
#: does not influence the output.
_MOVE_TRIES = 3


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


#: Tensor properties whose reading takes a parameter's values (``.shape`` or ``.dtype``
#: read alone do not).
_VALUE_PROPERTIES = frozenset({"data", "T", "mT", "H", "mH", "real", "imag"})


def _read_values_of(context: Context, example: Example, cut: dict[str, list[str]]) -> dict[str, list[str]]:
    """Of ``cut`` (module -> its parameters without a gradient), those whose values the
    forward read on ``example``: passed to a torch function or operator, or read through
    ``.data``. A parameter the call never read is not cut off by a detach() but left out of
    this path (XLNet's ``r_s_bias`` is used only with ``token_type_ids``). One more forward
    on a fresh copy under a function mode, only when rule 2 has something to report."""
    from torch.overrides import TorchFunctionMode

    model = context.fresh_model()
    by_id: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(parameter), []).append(name)  # every alias of a shared one
    read: set[str] = set()

    def note(value: Any) -> None:
        if isinstance(value, nn.Parameter) and id(value) in by_id:
            read.update(by_id[id(value)])
        elif isinstance(value, (list, tuple)):
            for item in value:
                note(item)

    class Reads(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if getattr(func, "__name__", "") != "__get__" or getattr(
                getattr(func, "__self__", None), "__name__", None
            ) in _VALUE_PROPERTIES:
                note(args)
                note(list((kwargs or {}).values()))
            return func(*args, **(kwargs or {}))

    try:
        with Reads():
            context.run(model, example, record=False, grad=False)
    except Exception:
        return cut  # the model does not run under a function mode: keep what rule 2 found
    kept = {module: [n for n in names if n in read] for module, names in cut.items()}
    return {module: names for module, names in kept.items() if names}


def _other_weights_moved(context: Context, example: Example, kept: set[str]) -> nn.Module:
    """A fresh copy with every floating parameter but those named in ``kept`` moved by about
    its own mean magnitude (plus 0.1, so a zero-initialised bias moves too), drawn from the
    example's seed: what an example's degenerate activations (an all-padding input, a zero
    gate) hid shows, and a multiplication by a literal zero stays zero."""
    model = context.fresh_model()
    generator = torch.Generator().manual_seed(example.seed + 11)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name not in kept and parameter.is_floating_point() and not is_lazy(parameter) and parameter.numel():
                scale = float(parameter.detach().abs().mean()) + 0.1
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
                parameter.add_(noise.to(parameter.device, parameter.dtype) * scale)
    return model


def _influences_with_other_weights(context: Context, example: Example, module_name: str) -> bool:
    """Whether ``module_name``'s output moves the model's output once every other weight is
    moved (:func:`_other_weights_moved`), the module still running: a module whose output
    this example's zero gate blocked (not a result the model drops)."""
    own = {f"{module_name}.{name}" for name, _ in context.prototype().get_submodule(module_name).named_parameters()}
    model = _other_weights_moved(context, example, own)
    try:
        first = context.run(model, example, record=False, grad=False)
        trace = context.run(model, example, record=False, grad=False)
    except Exception:
        return False
    if module_name not in trace.modules or not _outputs_equal(first.output, trace.output):
        # A model that changes on its first call (BigBird swaps its attention) gives no
        # evidence: its output moves whatever the module's does.
        return False
    return influences(context, model, example, module_name, trace.output)


def _read_with_other_weights(context: Context, example: Example, zero: dict[str, list[str]]) -> set[str]:
    """Of rule 1's modules (``zero``: owners -> parameters with an all-zero gradient), those
    whose parameters get a non-zero gradient once every other parameter of the model is
    moved, the modules that ran staying the same: they are used through their parameters
    without being called (RecurrentGemma's decoding step reads ``conv_1d.weight``), and the
    zero was this example's activations (an all-padding input and zero biases), not a
    multiplication by zero, which stays zero whatever the other weights are. One more
    forward and backward on a fresh copy, only when rule 1 has something to report."""
    owners = {owner for group in zero for owner in group.split(", ")}
    candidates = {name for names in zero.values() for name in names}
    model = _other_weights_moved(context, example, candidates)
    try:
        trace = context.run(model, example, backward=True, record=False)
    except Exception:
        return set()
    if owners & set(trace.modules):
        return set()  # the moved weights changed which modules run: no evidence
    parameters = dict(model.named_parameters(remove_duplicate=False))
    read = set()
    for group, names in zero.items():
        grads = [parameters[name].grad for name in names if name in parameters]
        if any(grad is not None and bool(grad.detach().ne(0).any()) for grad in grads):
            read.update(group.split(", "))
    return read


def _on_examples(count: int, total: int, which: str) -> str:
    """On how many examples something held, in words: "the only example", "all 20
    examples", or, of fewer than all, "the one example that {which}", "all 3 examples that
    {which}"."""
    if count == total:
        return "the only example" if count == 1 else f"all {count} examples"
    return f"the one example that {which}" if count == 1 else f"all {count} examples that {which}"


def _no_gradient(trace: Trace) -> str:
    """Why an example gave no gradient to follow."""
    if trace.loss is None:
        return "the output has no floating tensor, so there is no loss and no gradient to follow"
    return "the loss reaches no parameter that requires grad: no gradient to follow"


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
        with _idle_calls(model) as idle, _output_gradients(model) as moved:
            trace = context.run(model, example, backward=True)
        canonical = module_name_map(model)
        path = trace.path
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

        # 5. finite gradients, unless normalisation layers that saw a constant input
        # overflowed them (dyncheck.norms): then rules 6 and 7, which read gradient values,
        # leave this example alone too.
        non_finite_found = [
            f"{names[0]} received a NaN/inf gradient: {found}."
            for parameter, names, _ in owners_by_param
            if parameter.grad is not None and (found := non_finite(parameter.grad)) is not None
        ]
        overflowed = constant_norm_overflow(context, example) if non_finite_found else None
        if overflowed is not None:
            note_overflow(context, overflowed)
        else:
            findings.extend(non_finite_found)

        has_loss = trace.loss is not None and trace.loss.requires_grad
        # 1. skipped means untouched
        zero_on_skipped: dict[str, list[str]] = {}
        used_directly = _used_directly(owners_by_param, ran)
        for parameter, names, owners in owners_by_param:
            if any(o in ran for o in owners) or parameter.grad is None or used_directly & set(owners):
                continue
            if not any(o in context.witnesses for o in owners):
                # Never called on any example of the run: not a branch that was skipped but a
                # table or weight used without calling its module (DeBERTa's rel_embeddings,
                # F.linear(x, fc.weight)), whose exact-zero gradient here is the example's (a
                # softmax over one key, an all-zero input), not a multiplication by zero.
                continue
            zero_on_skipped.setdefault(", ".join(owners), []).append(names[0])
        if zero_on_skipped:
            read = _read_with_other_weights(context, example, zero_on_skipped)
            used_directly |= read
            zero_on_skipped = {o: n for o, n in zero_on_skipped.items() if not read & set(o.split(", "))}
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
                # The model's own parameters too (owner ""; a CLIP-style logit_scale read through
                # .item() never learns): the model always runs.
                running = [o for o in owners if o in worked or not o]
                if not running:
                    continue
                # Cut off: backward gave it no gradient at all. Not "absent from the output's
                # graph": a reentrant checkpoint (checkpoint(block, h, use_reentrant=True),
                # Hugging Face's gradient checkpointing, reversible layers) keeps the block's
                # parameters out of that graph and runs the block again inside its own
                # backward, whose gradients reach .grad as any others do.
                if parameter.grad is None:
                    cut.setdefault(running[0], []).append(names[0])
            # Modules whose parameters the gradient reached on some example: their results are
            # read, whatever a later example drops.
            read_results: set[str] = context.memo.setdefault("results read", set())
            read_results.update(
                o for parameter, _, owners in owners_by_param if parameter.grad is not None for o in owners if o in worked
            )
            if cut:
                cut = _read_values_of(context, example, cut)
            # The output that rules 2 and 3 move module outputs against: one call, made when
            # either needs it.
            baseline = functools.cache(lambda: context.run(model, example, record=False, grad=False).output)
            parameters = dict(model.named_parameters(remove_duplicate=False))
            for module_name, names in cut.items():
                if module_name and not influences(context, model, example, module_name, baseline()) and not (
                    _influences_with_other_weights(context, example, module_name)
                ):
                    # No value of it reaches the output either: not a cut gradient but a
                    # result nobody reads (RobertaModel's pooler under a head that takes the
                    # first token's hidden state), if no example reads it: a neural module
                    # network encodes the question on every call and reads it only on the
                    # programs whose modules take it. Reported in finish(), over the run;
                    # here when an example of the same path, its floats moved or its choices
                    # drawn again, reads it: every head run and one picked from a list by
                    # task: int is masked by a choice, as rule 3 says of a multiplication.
                    if _used_elsewhere(context, model, example, path, [module_name]):
                        findings.append(
                            f"{module_name} ran, but its output never reaches the model's output on this example "
                            "(moving it left every output bitwise unchanged), while on another example of the same "
                            "path (its floats moved or its choices drawn again) it does: a result computed and then "
                            f"not picked. Skip {module_name} where its result is not used instead of computing it."
                        )
                        continue
                    dropped = context.memo.setdefault("dropped results", {})
                    entry = dropped.setdefault(module_name, [names, (example, path), 0])
                    entry[2] += 1
                    continue
                # Cut off means its values reach the output but its gradient does not. One whose
                # values do not reach the output on this example is not cut off here but unused
                # at this size (RWKV's time_decay only updates the state after the last step:
                # on a sequence of one step the state is dropped).
                if not any(moving_changes_output(context, model, example, parameters[n]) for n in names):
                    continue
                findings.append(
                    f"{f'{module_name} ran, but ' if module_name else 'the model ran, but its own '}"
                    f"{_join(names)} {'is' if len(names) == 1 else 'are'} not connected "
                    "to the output through autograd: a detach(), .data, .item(), torch.no_grad() or an "
                    "argmax-only choice cuts the gradient off. If this is meant (a frozen part), set "
                    f"requires_grad=False or declare Spec(frozen={names!r})."
                )

            # 3. executed means used
            with_parameters = {
                o for parameter, names, owners in owners_by_param
                if parameter.requires_grad for o in owners if o in worked and o
            }
            # A module whose output the loss's gradient reached influences the output: only
            # the others are moved (one forward pass each, at least).
            candidates = [
                m for m in dict.fromkeys(trace.modules) if m in with_parameters and m not in cut and m not in moved
            ]
            if candidates and not any(
                p.grad is not None and bool(p.grad.detach().ne(0).any()) for p, _, _ in owners_by_param
            ):
                # No parameter got a gradient: the output is constant around this example (a
                # last ReLU off on every unit, SqueezeNet's conv, ReLU, average head), so every
                # module looks masked and none can be told from a module a choice masks.
                candidates = []
                if not any(t.numel() for _, t in leaves(trace.output) if isinstance(t, torch.Tensor)):
                    context.note(
                        "empty_output",
                        lambda count: f"rule 3 not judged on {count} example{'' if count == 1 else 's'}: the output "
                        "has no elements (a sequence of no steps), so no parameter got a gradient",
                    )
                else:
                    context.note(
                        "constant_output",
                        lambda count: f"rule 3 not judged on {count} example{'' if count == 1 else 's'}: no parameter "
                        "got a gradient (the output is constant around the example, e.g. a last ReLU off on every unit)",
                    )
            if candidates:
                unused = unused_modules(context, model, example, trace.path, candidates, baseline())
                if unused:
                    findings.append(
                        f"{_join(unused)} ran but did not influence the output on this example "
                        "(moving its output left every output bitwise unchanged): skip "
                        f"{'it' if len(unused) == 1 else 'them'} instead of masking the result away."
                    )

            # 7. influence means learning: gathered here, while this example's model and its
            # gradients are alive, and reported over the run in finish(). An example that step
            # isolation then fails counts too, but a failure ends the run before finish().
            if not findings and overflowed is None:
                _track_silent(context, model, example, trace, owners_by_param, frozen)

            # 6. step isolation, on copies of its own: this example's model and its gradients
            # (two model sizes) go first, so at most the prototype, one copy with its
            # gradients and an optimizer's state (two sizes for AdamW) are alive.
            owners_by_name = [(names, owners) for _, names, owners in owners_by_param]
            del model, trace, owners_by_param
            if overflowed is None:
                findings.extend(self._step_isolation(context, example, path, owners_by_name, ran, used_directly))

        if has_loss or spec.branches:
            context.compared()
        elif not findings:
            return context.nothing_to_compare(missing_output(trace.output) or _no_gradient(trace))
        if findings:
            headline = findings[0] if len(findings) == 1 else (
                f"Gradients do not follow the path the call took ({len(findings)} problems):"
            )
            details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
            raise InvariantViolation(headline, details, path=path)

    def finish(self, context: Context) -> None:
        findings = []
        witness: tuple[Example, tuple[str, ...]] | None = None
        # 2. executed means connected: a result computed and dropped on every example that ran it
        read_results = context.memo.get("results read", set())
        for module_name, (names, first, count) in context.memo.get("dropped results", {}).items():
            if module_name in read_results:
                continue
            witness = witness or first
            findings.append(
                f"{module_name} ran, but its output never reaches the model's output on "
                f"{_on_examples(count, context.examples, 'ran it')} (moving it left "
                f"every output bitwise unchanged), so {_join(names)} never "
                f"{'learns' if len(names) == 1 else 'learn'}: a result computed and dropped, such as an "
                "output the caller does not read (a pooler's pooler_output). Do not compute it, or if "
                f"this is meant (a frozen part), set requires_grad=False or declare Spec(frozen={names!r})."
            )
        dropped_found = bool(findings)
        # 7. influence means learning
        silent: dict[str, list[Any]] = context.memo.get("silent", {})
        groups: dict[int, list[str]] = {}
        for name, (count, moved, _) in silent.items():
            if moved is not None:
                groups.setdefault(count, []).append(name)
                witness = witness or moved
        if witness is None:
            return
        for count, names in groups.items():
            one = len(names) == 1
            examples = _on_examples(count, context.examples, f"reached {'it' if one else 'them'}")
            findings.append(
                f"{_join(names)} {'influences' if one else 'influence'} the output (moving "
                f"{'it' if one else 'them'} changes it on the example below) but received an exactly-zero "
                f"gradient on {examples}: {'it' if one else 'they'} can never learn. Something between "
                f"{'it' if one else 'them'} and the output is constant in {'it' if one else 'them'}: "
                "a softmax over a single value is always 1 (top-1 taken before the softmax), a round(), "
                "sign() or comparison has a zero derivative."
            )
        headline = findings[0] if len(findings) == 1 else (
            f"Parameters never learn ({len(findings)} groups):" if dropped_found
            else f"Parameters that influence the output never learn ({len(findings)} groups):"
        )
        details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
        violation = InvariantViolation(headline, details, path=witness[1])
        violation.example = witness[0]  # type: ignore[attr-defined]
        raise violation

    def _step_isolation(
        self,
        context: Context,
        example: Example,
        path: tuple[str, ...],
        owners_by_name: list[tuple[tuple[str, ...], tuple[str, ...]]],
        ran: set[str],
        used_directly: set[str],
    ) -> list[str]:
        skipped_with_witness = {}
        # The parameters every owner of which was skipped: a Parameter shared with a module
        # that ran (two heads tied to one weight) rightly moves.
        skipped: set[str] = set()
        for names, owners in owners_by_name:
            if any(o in ran for o in owners):
                continue
            if used_directly & set(owners):
                continue  # its parameters are used without calling it: not a skipped branch
            skipped.update(names)
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
                key = (owner, path, label)
                if key in passed:
                    continue  # only passes are remembered: a failure must repeat when replayed
                model = context.fresh_model()
                optimizer = factory(model.parameters())
                context.run(model, witness, backward=True, record=False)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                module = model.get_submodule(owner)
                before = {
                    n: p.detach().clone() for n, p in module.named_parameters(recurse=False)
                    if f"{owner}.{n}" in skipped
                }
                second = context.run(model, example, backward=True, record=False)
                if owner in second.modules:
                    # The first step changed the weights, and with them this example's path
                    # (a router may now choose this expert): nothing to compare on this pair.
                    continue
                optimizer.step()
                moved = []
                for name, parameter in module.named_parameters(recurse=False):
                    if name not in before:
                        continue
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
