"""purity: forward leaves its inputs alone, and inference leaves the model alone.

For every example, on a fresh copy of the model:

1. the model runs once in train mode, then once in eval mode (``model.eval()``, under
   ``torch.no_grad()`` as inference runs); in both calls every tensor argument is bitwise
   the same after the call as before it (shape, dtype and values; non-contiguous inputs
   are passed with their strides): an in-place op on an input (``x.add_(noise)``,
   ``x[mask] = 0``) changes the caller's tensor, which the caller may reuse (a second
   model, a retry, a logged batch);
2. the eval call leaves every parameter and buffer (``persistent=False`` ones included,
   under every name a tied one has) bitwise the same and the same object: running
   statistics, caches and counters in buffers may change while training, never at
   inference. ``nn.BatchNorm`` passes: it updates its running statistics only in train
   mode. The train call before it settles what a trained model has settled: lazy layers
   are materialised, data-dependent initialisations (ActNorm) done. Buffers outside the
   state_dict (``persistent=False``) that a second eval call does not read (the same
   outputs again) are scratch state, noted in the summary: snntorch's neurons keep their
   last membrane so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.compare import mismatch
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.tracing import Trace, leaves

__all__ = ["Purity"]


@dataclass(frozen=True, eq=False)
class _Passed(Example):
    """An example whose arguments are handed to the model as they are (not copied), so
    the caller keeps the very tensors the model was given."""

    def fresh_args(self) -> dict[str, Any]:
        return dict(self.args)


def _tensor_args(args: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every tensor among the arguments, by name (``x``, ``inputs[0]``, ``batch['mask']``)."""
    return {
        name: value
        for key, arg in args.items()
        for name, value in leaves(arg, prefix=key)
        if isinstance(value, torch.Tensor)
    }


def _state(model: nn.Module, *, copy: bool = True) -> dict[str, tuple[torch.Tensor, int] | None]:
    """Every parameter and buffer (non-persistent ones too) under every name it has: its
    values (a clone with ``copy``; without, for the state after the last call, the tensor
    itself: a model's worth of memory and a copy less), and which object it is. None for an
    uninitialised lazy parameter (a lazy layer on a path the train call did not take)."""
    return {
        name: None if is_lazy(tensor) else (tensor.detach().clone() if copy else tensor.detach(), id(tensor))
        for name, tensor in [
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        ]
    }


@dataclass(frozen=True, eq=False)
class _StateChange:
    """What a call changed of the model's parameters and buffers."""

    names: list[str]
    kinds: str  # "buffers", "parameter and buffer", ...
    fix: str
    details: list[str]  # the numbers

    def headline(self, *, read_later: bool = False) -> str:
        """The finding's first line; ``read_later``: the names are buffers outside the
        state_dict that the next call reads."""
        changed = f"In eval mode forward changed the model's {self.kinds} {', '.join(self.names)}"
        if read_later:
            return (
                f"{changed}: inference must not change the model, and the next call starts from what they keep. "
                "Start each call from a state it is given or makes anew (reset the buffers), or keep the state "
                "outside the model."
            )
        return f"{changed}: inference must not change the model. {self.fix}"


def _state_changes(
    model: nn.Module,
    before: dict[str, tuple[torch.Tensor, int] | None],
    after: dict[str, tuple[torch.Tensor, int] | None],
) -> _StateChange | None:
    """What a call changed of ``model``'s parameters and buffers; None when nothing."""
    parameters = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    current = {id(t): name for name, t in [*model.named_parameters(), *model.named_buffers()]}
    changed: list[str] = []
    details: list[str] = []
    replaced = made = False  # made: a parameter or buffer created or removed
    for name in dict.fromkeys([*before, *after]):
        if before.get(name, True) is None or after.get(name, True) is None:
            continue  # an uninitialised lazy parameter: materialising it is its first call
        kind = "parameter" if name in parameters else "buffer"
        if name not in before or name not in after:
            changed.append(name)
            replaced = made = True
            details.append(f"{name}: {'created' if name not in before else 'removed'} by forward")
            continue
        (old, old_id), (new, new_id) = before[name], after[name]
        if old_id != new_id:
            changed.append(name)
            replaced = True
            alias = current.get(new_id, name)
            now = f" (now the same object as {alias})" if alias != name else ""
            details.append(f"{name}: forward replaced the {kind} with another object{now}")
            continue
        lines = mismatch(new, old)
        if lines:
            changed.append(name)
            details.append(f"{name} ({kind}, after the call, then before):")
            details.extend(_indent(lines))
    if not changed:
        return None
    plural = "s" if len(changed) > 1 else ""
    kinds = " and ".join(k + plural for k in sorted({"parameter" if n in parameters else "buffer" for n in changed}))
    if replaced and not made and not any(n in parameters for n in changed):
        # buffers assigned anew: state a streaming layer keeps between calls (pytorch-tcn's
        # padding buffers, the last inputs of a causal convolution), or a cache
        fix = (
            f"forward assigns {'them new tensors' if plural else 'it a new tensor'}. If the model keeps state "
            "between calls by design (a streaming layer's last inputs, a cache), declare it with "
            "Spec(skip={'purity': '<why>'}); else update buffers only in training (if self.training: ...)."
        )
    elif replaced:
        fix = "Create, tie and assign parameters and buffers in __init__, not in forward."
    else:
        fix = "Update running statistics and caches only in training (if self.training: ...)."
    return _StateChange(changed, kinds, fix, details)


def _indent(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]


class Purity(Invariant):
    name = "purity"
    summary = (
        "forward does not modify its input tensors (train and eval mode), and in eval mode "
        "does not modify the model's parameters or buffers"
    )

    def _call(
        self, context: Context, model: nn.Module, example: Example, *, grad: bool
    ) -> tuple[Trace, dict[str, list[str]]]:
        """One call on copies of the example's arguments: its trace, and each tensor
        argument the call changed with the numbers (after the call, then before)."""
        args = example.fresh_args()
        passed = _Passed(args=args, seed=example.seed, dims=example.dims)
        trace = context.run(model, passed, record=False, grad=grad)
        before = _tensor_args(dict(example.args))
        changed = {}
        for name, after in _tensor_args(args).items():
            if name not in before:
                # an entry forward added to a dict it was given (sentence-transformers' features
                # dict gains its embeddings): no tensor of the caller's changed
                continue
            lines = mismatch(after, before[name])
            if lines:
                changed[name] = lines
        return trace, changed

    def check(self, context: Context, example: Example) -> None:
        model = context.fresh_model().train()
        trained, changed_in_train = self._call(context, model, example, grad=True)
        context.paths[trained.path] += 1
        context.last_path = trained.path

        # Then inference as it is run: eval mode, without autograd, on the model that has
        # just run in train mode -- so lazy layers and data-dependent initialisations
        # (ActNorm) are settled, as they are in any model that has been trained.
        model.eval()
        before = _state(model)
        # The tensors themselves stay alive through the call: one forward replaces, freed,
        # could give its id to the tensor that replaces it, and a replaced buffer with the
        # same values would pass for the same object.
        held = [*model.parameters(), *model.buffers()]
        evaluated, changed_in_eval = self._call(context, model, example, grad=False)

        problems: list[tuple[str, list[str]]] = []  # (what broke, the numbers)
        inputs = list(dict.fromkeys([*changed_in_train, *changed_in_eval]))
        if inputs:
            modes = " and ".join(m for m, c in (("train", changed_in_train), ("eval", changed_in_eval)) if c)
            many = len(inputs) > 1
            details = []
            for mode, changed in (("train", changed_in_train), ("eval", changed_in_eval)):
                for name, lines in changed.items():
                    details.append(f"{name} in {mode} mode (after the call, then before):")
                    details.extend(_indent(lines))
            problems.append(
                (
                    f"forward modified its input{'s' if many else ''} {', '.join(inputs)} in place "
                    f"(in {modes} mode): the caller's tensor{'s are' if many else ' is'} not the same "
                    "after the call. Work on a copy (x = x + noise, not x.add_(noise)).",
                    details,
                )
            )
        changed_state = _state_changes(model, before, _state(model, copy=False))
        del held
        if changed_state is not None:
            read = self._read_later(context, model, example, evaluated, changed_state.names)
            if read is None:
                problems.append((changed_state.headline(), changed_state.details))
            elif read:  # buffers outside the state_dict, and the next call reads them
                problems.append((changed_state.headline(read_later=True), [
                    *changed_state.details,
                    "the next eval call reads them (from the state the first left, other outputs):",
                    *_indent(read[:4]),
                ]))
        if not problems:
            if not before and not _tensor_args(dict(example.args)):
                return context.nothing_to_compare(
                    "forward takes no tensor argument and the model has no parameters or buffers: nothing it could change"
                )
            return context.compared()
        path = trained.path if changed_in_train else evaluated.path
        if len(problems) == 1:
            headline, details = problems[0]
        else:
            headline, details = f"forward is not pure ({len(problems)} problems):", []
            for problem, lines in problems:
                details.append(f"- {problem}")
                details.extend(f"  {line}" for line in lines)
        # One raise for every finding: Hypothesis tells failures apart by where they are raised.
        raise InvariantViolation(headline, details, path=path)

    def _read_later(
        self, context: Context, model: nn.Module, example: Example, evaluated: Trace, changed: list[str]
    ) -> list[str] | None:
        """None unless every buffer the eval call changed is registered with
        ``persistent=False``; then how a second eval call's outputs differ (empty: the
        buffers are scratch state, noted in the summary). A scratch buffer is one outside
        the state_dict that no later call reads: a second eval call from the state the first
        left gives the same outputs, bitwise. snntorch's neurons keep the last membrane
        potential in such a buffer while the caller passes and gets the state itself
        (``spk, mem = lif(cur, mem)``). A buffer a later call reads (a running statistic, a
        cache of keys, an ``init_hidden`` state) is reported."""
        from dyncheck.invariants.determinism import _differences

        if not set(changed) <= _non_persistent_buffers(model):
            return None
        again, _ = self._call(context, model, example, grad=False)
        differences = _differences(evaluated.output, again.output)
        if differences:
            return differences
        seen: dict[str, None] = context.memo.setdefault("scratch_buffers", {})
        seen.update(dict.fromkeys(changed))
        shown = ", ".join(list(seen)[:3]) + (" …" if len(seen) > 3 else "")
        context.note("scratch_buffers", lambda count: (
            f"forward rewrote {shown} in eval mode on {count} example{'s' if count != 1 else ''}: "
            "buffers outside the state_dict (persistent=False) that the next call does not read "
            "(the same outputs again), taken for scratch state, as snntorch's neurons keep"
        ))
        return []


def _non_persistent_buffers(model: nn.Module) -> set[str]:
    """The names of the buffers registered with ``persistent=False`` (every name a shared
    module gives them)."""
    return {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules(remove_duplicate=False)
        for name in getattr(module, "_non_persistent_buffers_set", ())
        if name in module._buffers
    }
