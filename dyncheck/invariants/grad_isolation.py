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
   masked away);
4. declared branches: ``Spec(branches=...)`` modules run exactly when their predicate holds;
5. finite gradients, named;
6. step isolation: after an optimizer step on an example where a module ran, a step on
   this example, where it did not, leaves its parameters bitwise unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dyncheck.agreement import _move, default_dtype
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example, describe_value
from dyncheck.invariants._base import Context, Invariant, module_name_map, parameter_owners
from dyncheck.invariants.finite import non_finite
from dyncheck.tracing import Trace, default_loss, floating_leaves, missing_output

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


def influences(context: Context, model: nn.Module, example: Example, module_name: str, baseline: Any) -> bool:
    """Whether perturbing ``module_name``'s output (on every call) changes the model's output."""
    module = model.get_submodule(module_name)
    for attempt, move in enumerate(_MOVES):
        generator = torch.Generator().manual_seed(1234 + attempt)

        def hook(_module: nn.Module, _args: Any, output: Any, move: str = move) -> Any:
            return _perturb(output, move, generator)

        handle = module.register_forward_hook(hook)
        try:
            perturbed = context.run(model, example, record=False, grad=False).output
        except ModelError:
            return True  # the moved output reached something that raised: it is used
        finally:
            handle.remove()
        if not _outputs_equal(perturbed, baseline):
            return True
    return False


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
    wide = context.copy_of(model).to(torch.float64)
    args = _move(dict(example.args), device, torch.float64)
    unused = _zero_gradient(context, wide, Example(args, example.seed, example.dims), unused, absent=True)
    moderated = {
        name: value / float(value.abs().max())
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel()
        and bool(torch.isfinite(value).all()) and float(value.abs().max()) > 1
        else value
        for name, value in args.items()
    }
    if unused and any(moderated[name] is not args[name] for name in args):
        unused = _zero_gradient(context, wide, Example(moderated, example.seed, example.dims), unused, absent=False)
    return unused


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
    if not any(t.is_floating_point() and t.requires_grad for _, t in floating_leaves(output)):
        return names
    loss = default_loss(output, seed=example.seed)
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
        "and optimizer steps leave skipped branches unchanged"
    )

    def check(self, context: Context, example: Example) -> None:
        spec = context.target.spec
        model = context.fresh_model()
        trace = context.run(model, example, backward=True)
        canonical = module_name_map(model)
        ran = set(trace.modules) | {""}
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
                running = [o for o in owners if o in ran and o]
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
                if parameter.requires_grad for o in owners if o in ran and o
            }
            candidates = [m for m in dict.fromkeys(trace.modules) if m in with_parameters and m not in cut]
            if candidates:
                baseline = context.run(model, example, record=False, grad=False).output
                unused = [m for m in candidates if not influences(context, model, example, m, baseline)]
                unused = _weighted_not_masked(context, model, example, unused)
                if unused:
                    findings.append(
                        f"{_join(unused)} ran but did not influence the output on this example "
                        "(moving its output left every output bitwise unchanged): skip "
                        f"{'it' if len(unused) == 1 else 'them'} instead of masking the result away."
                    )

            # 6. step isolation
            findings.extend(self._step_isolation(context, example, trace, owners_by_param, ran))

        if has_loss or spec.branches:
            context.compared()
        elif not findings:
            return context.nothing_to_compare(missing_output(trace.output) or _no_gradient(trace))
        if findings:
            headline = findings[0] if len(findings) == 1 else (
                f"Gradients do not follow the path the call took ({len(findings)} problems):"
            )
            details = [] if len(findings) == 1 else [f"- {f}" for f in findings]
            raise InvariantViolation(headline, details, path=trace.path)

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
