"""episode_reset: a step flagged as an episode's start reads nothing of the state before it.

A recurrent policy takes the state its last call returned beside flags saying where a new
episode starts (sb3-contrib's ``episode_starts``, torchrl's ``is_init``, DreamerV3's
``is_first``, CleanRL's ``done``), and zeroes the state there: ``h * (1 - done)``. A reset
that is missing, applied after the step, or applied to the wrong samples lets one episode's
memory leak into the next, which no other invariant sees (the model stays deterministic,
its samples apart, its gradients finite).

Applies where forward takes such flags (by name: ``episode_starts``, ``is_init``,
``is_first``, ``resets``, ``done``, ``dones``; not ``terminated`` or ``truncated``, which
mark an episode's end) beside a state (by name: ``h``, ``h0``, ``hx``, ``hidden``,
``state``, ``memory``, ``*_state``, ``*_states``, ``*_hidden``; or an input inferred as a
recurrent layer's hidden state). On each example, in eval mode and under the example's
seed, with every flag set (every step starts an episode), the model is called with the
state drawn and with another state (values from -1 to 1): every output must be the same.

Compared only where the state matters at all: where no output changes with the state when
no flag is set either, the example compares nothing (a state forward ignores). For flags
named ``done`` or ``dones``, one innocent explanation is ruled out before a failure: flags
that mark the step that ended an episode (``done`` in the sense of ``terminated``, the state
zeroed after the step for the next call): the state a call returns (an output shaped like
the state given) then is the same for both states, while the step itself read the state
given. Such an example compares nothing, and the summary says so. The other names say a
start, and a reset after the step is the bug.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from dyncheck.compare import mismatch, tolerances
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.target import Target
from dyncheck.tracing import floating_leaves

__all__ = ["EpisodeReset", "flags_and_states"]

#: Flags that say a step starts an episode (or, for ``done``, may say so: see the module).
_START_FLAGS = re.compile(r"^(episode_starts?|is_init|is_first|resets?|dones?)$")
#: Flags whose name may also mean the step that ended an episode (see the module); the
#: others say a start.
_MAYBE_ENDS = ("done", "dones")
#: Forward arguments holding a recurrent state.
_STATE_NAME = re.compile(r"^(h|h0|hx|c0|hidden|hiddens|state|states|memory|carry)$|_(state|states|hidden|memory)$")
#: Words of an inferred note that say the input is a recurrent layer's state.
_STATE_NOTE = "hidden state"

_ENDED = (
    "with every step flagged, the state the call returns is the same for both states while the outputs read the "
    "state given: the flags mark the step that ended an episode (the state is zeroed after it), and whether a "
    "start reads the state is not seen"
)
_IGNORED = "no output changes with the state given, flagged or not: the state reaches nothing to compare"


def flags_and_states(target: Target) -> tuple[str | None, list[str]]:
    """(the flags argument, the state arguments) of ``target``'s forward, by name or, for a
    state, by what inference found it to be."""
    inputs = target.spec.inputs
    flag = next((name for name in inputs if _START_FLAGS.match(name)), None)
    states = [
        name for name in inputs
        if name != flag and (_STATE_NAME.search(name) or _STATE_NOTE in target.inferred_inputs.get(name, ""))
    ]
    return flag, states


class EpisodeReset(Invariant):
    name = "episode_reset"
    summary = (
        "with every step flagged as an episode's start (episode_starts, is_init, done), no output reads the "
        "state passed in"
    )

    def applies_to(self, target: Target) -> str | None:
        flag, states = flags_and_states(target)
        if flag is None:
            return (
                "forward takes no episode-start flags (named like episode_starts, is_init, is_first, resets or done)"
            )
        if not states:
            return (
                f"forward takes {flag} but no recurrent state to reset (named like h, hidden, state or *_state, or "
                "inferred as a recurrent layer's hidden state)"
            )
        return None

    def check(self, context: Context, example: Example) -> None:
        flag, states = flags_and_states(context.target)
        args = example.args
        if not isinstance(args.get(flag), torch.Tensor):
            return context.nothing_to_compare(f"{flag} is not a tensor in this example")
        generator = torch.Generator().manual_seed(example.seed)
        other = {name: _another(args[name], generator) for name in states}
        if all(_same_values(other[name], args[name]) for name in states):
            held = ", ".join(states)
            return context.nothing_to_compare(f"{held} hold{'s' if len(states) == 1 else ''} no floating values to change")

        def outputs(flagged: bool, state: dict[str, Any]) -> dict[str, torch.Tensor]:
            value = torch.ones_like(args[flag]) if flagged else torch.zeros_like(args[flag])
            call = Example({**args, flag: value, **state}, example.seed, example.dims)
            model = context.fresh_model().eval()
            trace = context.run(model, call, grad=False, record=False)
            return dict(floating_leaves(trace.output))

        given = {name: args[name] for name in states}
        flagged, flagged_other = outputs(True, given), outputs(True, other)
        changed = _changed(flagged, flagged_other)
        if not changed:
            unflagged, unflagged_other = outputs(False, given), outputs(False, other)
            if not _changed(unflagged, unflagged_other):
                return context.nothing_to_compare(_IGNORED)
            context.compared()
            return None
        returned = [
            name for name, value in flagged.items()
            if any(_shaped_like(value, args[state]) for state in states)
        ]
        if flag in _MAYBE_ENDS and returned and all(name not in changed for name in returned):
            context.note("ended", lambda count: f"on {count} example{'s' if count != 1 else ''} {_ENDED}")
            return context.nothing_to_compare(_ENDED)
        context.compared()
        name = changed[0]
        rtol, atol = tolerances(flagged[name].dtype)
        lines = mismatch(flagged_other[name], flagged[name], rtol=rtol, atol=atol)
        shown = ", ".join(states)
        raise InvariantViolation(
            f"With every step flagged as an episode's start ({flag} all {_one(args[flag])}), {name} still depends on "
            f"the state passed in ({shown}): another state gives another {name}. A step that starts an episode must "
            f"not read the previous episode's state: reset it where {flag} is set, before the step reads it "
            f"(state * (1 - {flag})).",
            [
                *lines,
                f"changed: {', '.join(changed)}",
                f"If {flag} marks the step that ended an episode (the state zeroed after it), say so by returning the "
                f"reset state, or declare Spec(skip={{'episode_reset': '...'}}).",
            ],
        )


def _another(value: Any, generator: torch.Generator) -> Any:
    """``value`` with each floating tensor replaced by values from -1 to 1 (a state tanh
    leaves), drawn from ``generator``; tuples, lists and dicts of them alike."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        drawn = torch.rand(value.shape, generator=generator, dtype=torch.float64) * 2 - 1
        return drawn.to(dtype=value.dtype, device=value.device)
    if isinstance(value, tuple):
        items = [_another(v, generator) for v in value]
        return type(value)._make(items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_another(v, generator) for v in value]
    if isinstance(value, dict):
        return {k: _another(v, generator) for k, v in value.items()}
    return value


def _same_values(a: Any, b: Any) -> bool:
    left = [v for _, v in floating_leaves(a) if v.is_floating_point()]
    right = [v for _, v in floating_leaves(b) if v.is_floating_point()]
    return len(left) == len(right) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(left, right))


def _changed(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> list[str]:
    """The floating outputs that differ between two calls beyond their dtype's tolerances."""
    names = []
    for name, value in first.items():
        other = second.get(name)
        if not value.is_floating_point() or other is None or other.shape != value.shape:
            continue
        rtol, atol = tolerances(value.dtype)
        if not torch.allclose(value, other, rtol=rtol, atol=atol, equal_nan=True):
            names.append(name)
    return names


def _shaped_like(value: torch.Tensor, state: Any) -> bool:
    return any(value.shape == leaf.shape for _, leaf in floating_leaves(state))


def _one(flags: torch.Tensor) -> str:
    return "True" if flags.dtype == torch.bool else "1"
