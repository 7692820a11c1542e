"""episode_reset: a step flagged as an episode's start reads nothing of the state before it.

A recurrent policy takes the state its last call returned beside flags saying where a new
episode starts (sb3-contrib's ``episode_starts``, DreamerV3's
``is_first``, CleanRL's ``done``), and zeroes the state there: ``h * (1 - done)``. A reset
that is missing, applied after the step, or applied to the wrong samples lets one episode's
memory leak into the next, which no other invariant sees (the model stays deterministic,
its samples apart, its gradients finite).

Applies where forward takes such flags (by name: ``episode_starts``,
``is_first``, ``resets``, then ``done``, ``dones``; not torchrl's ``is_init``, whose recurrent
mode reads the state its rollout stored, zeroed there, by design; not ``terminated`` or ``truncated``,
which mark an episode's end; a tensor or one Python bool) beside a state (by name: ``h``,
``h0``, ``hx``, ``hidden``, ``*_hidden``; or an input inferred as a recurrent layer's hidden
state, which a ``state`` or ``memory`` must be to count: other inputs have those names too). Flags that reach a layer as input features (RL²'s memory across
episodes, on purpose) are not judged. On each example, in eval mode and under the example's
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
from torch.utils._pytree import tree_map

from dyncheck.compare import mismatch, tolerances
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.target import Target
from dyncheck.tracing import floating_leaves, same_floats

__all__ = ["EpisodeReset", "flags_and_states"]

#: Flags that say a step starts an episode (or, for ``done``, may say so: see the module),
#: the unambiguous names first: a model taking ``done`` beside ``is_first`` resets on the latter.
_START_FLAGS = ("episode_starts", "episode_start", "is_first", "resets", "reset", "dones", "done")
#: Flags whose name may also mean the step that ended an episode (see the module).
_MAYBE_ENDS = ("done", "dones")
#: Forward arguments holding a recurrent state, by name alone. Names other inputs have too (a
#: critic's ``state``, a robot's ``joint_state``, a decoder's ``memory``, an episodic memory
#: table kept across episodes on purpose) count only where inference found the input to be a
#: recurrent layer's hidden state.
_STATE_NAME = re.compile(r"^(h|h0|hx|c0|hidden|hiddens|carry)$|_hidden$")
#: What a model resets to, not what it resets (``initial_state``).
_RESET_TO = re.compile(r"^(init|initial|default)_")
#: Words of an inferred note that say the input is a recurrent layer's state.
_STATE_NOTE = "hidden state"

_ENDED = (
    "with every step flagged, the state the call returns is the same for both states while the outputs read the "
    "state given: the flags mark the step that ended an episode (the state is zeroed after it), and whether a "
    "start reads the state is not seen"
)
_IGNORED = "no output changes with the state given, flagged or not: the state reaches nothing to compare"


def flags_and_states(target: Target) -> tuple[str | None, list[str]]:
    """(the flags argument, the state arguments) of ``target``'s forward: named like a state
    (``h``, ``hidden``), or inferred as a recurrent layer's hidden state (a name other inputs
    have too, ``state`` or ``memory``, counts only so); never what the model resets to."""
    inputs = target.spec.inputs
    flag = next((name for name in _START_FLAGS if name in inputs), None)
    states = []
    for name in inputs:
        if name == flag or _RESET_TO.match(name):
            continue
        if _STATE_NAME.search(name) or _STATE_NOTE in target.inferred_inputs.get(name, ""):
            states.append(name)
    return flag, states


def _flag_as_data(target: Target, flag: str) -> str | None:
    """The layer the flags reach as input features (RL²'s ``done`` beside the observation,
    a memory kept across episodes on purpose), from inference's note; None otherwise."""
    note = target.inferred_inputs.get(flag, "")
    found = re.match(r"first consumed by (\S+) \(", note)
    return found.group(1) if found and _STATE_NOTE not in note else None


class EpisodeReset(Invariant):
    name = "episode_reset"
    summary = (
        "with every step flagged as an episode's start (episode_starts, is_first, done), no output reads the "
        "state passed in"
    )

    def applies_to(self, target: Target) -> str | None:
        flag, states = flags_and_states(target)
        if flag is None:
            return (
                "forward takes no episode-start flags (named like episode_starts, is_first, resets or done)"
            )
        if not states:
            return (
                f"forward takes {flag} but no recurrent state to reset (named like h, hx or hidden, or named like "
                "state or memory and inferred as a recurrent layer's hidden state)"
            )
        layer = _flag_as_data(target, flag)
        if layer is not None:
            return (
                f"{flag} reaches {layer} as input features, not as a reset of the state: a memory kept across "
                "episodes on purpose (RL²) is not judged; declare Spec(inputs=...) for the flags to check the reset"
            )
        return None

    def check(self, context: Context, example: Example) -> None:
        flag, states = flags_and_states(context.target)
        args = example.args
        flags = _all_set(args.get(flag))
        if flags is None:
            return context.nothing_to_compare(f"{flag} is neither a tensor nor a bool in this example")
        zeros = _none_set(args[flag])
        generator = torch.Generator().manual_seed(example.seed)

        def outputs(flagged: bool, state: dict[str, Any]) -> dict[str, torch.Tensor]:
            call = Example({**args, flag: flags if flagged else zeros, **state}, example.seed, example.dims)
            model = context.fresh_model().eval()
            trace = context.run(model, call, grad=False, record=False)
            return dict(floating_leaves(trace.output))

        flagged = outputs(True, {})
        other = {name: _another(args[name], generator) for name in states}
        if all(same_floats(other[name], args[name]) for name in states):
            held = ", ".join(states)
            return context.nothing_to_compare(f"{held} hold{'s' if len(states) == 1 else ''} no floating values to change")
        flagged_other = outputs(True, other)
        changed = _changed(flagged, flagged_other)
        unflagged = _changed(outputs(False, {}), outputs(False, other))
        if not unflagged:
            return context.nothing_to_compare(_IGNORED)
        if not changed:
            return context.compared()
        # the state a call returns (shaped like the state given): reset while the step read the
        # state given, flags that mark an episode's end (done as terminated)
        reset = [
            name for name, value in flagged.items()
            if name in unflagged and name not in changed and any(_shaped_like(value, args[s]) for s in states)
        ]
        if flag in _MAYBE_ENDS and reset:
            return context.nothing_to_compare(_ENDED)
        context.compared()
        name = changed[0]
        rtol, atol = tolerances(flagged[name].dtype)
        lines = mismatch(flagged_other[name], flagged[name], rtol=rtol, atol=atol)
        # the states that change an output alone, where there are several
        blamed = [s for s in states if len(states) == 1 or _changed(flagged, outputs(True, {s: other[s]}))]
        shown = ", ".join(blamed or states)
        raise InvariantViolation(
            f"With every step flagged as an episode's start ({flag} all {_one(flags)}), {name} still depends on "
            f"the state passed in ({shown}): another state gives another {name}. A step that starts an episode must "
            f"not read the previous episode's state: reset it where {flag} is set, before the step reads it "
            f"(state * (1 - {flag})).",
            [
                *lines,
                f"changed: {', '.join(changed)} (the example below is as drawn; the check set every flag of it)",
                f"If {flag} marks the step that ended an episode (the state zeroed after it), say so by returning the "
                f"reset state; if the model keeps its memory across episodes on purpose (RL²), declare "
                f"Spec(skip={{'episode_reset': '...'}}).",
            ],
        )


def _all_set(flags: Any) -> Any:
    """``flags`` with every flag set: ones (True) of a tensor's shape and dtype, or True for
    a Python bool (``if reset:``); None for anything else."""
    if isinstance(flags, torch.Tensor):
        return torch.ones_like(flags)
    if isinstance(flags, bool):
        return True
    return None


def _none_set(flags: Any) -> Any:
    return torch.zeros_like(flags) if isinstance(flags, torch.Tensor) else False


def _another(value: Any, generator: torch.Generator) -> Any:
    """``value`` with each floating tensor replaced by values from -1 to 1 (a state tanh
    leaves), drawn from ``generator``; tuples, lists and dicts of them alike."""

    def drawn(leaf: Any) -> Any:
        if not (isinstance(leaf, torch.Tensor) and leaf.is_floating_point()):
            return leaf
        values = torch.rand(leaf.shape, generator=generator, dtype=torch.float64) * 2 - 1
        return values.to(dtype=leaf.dtype, device=leaf.device)

    return tree_map(drawn, value)


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
    """Whether ``value`` has the shape of a tensor of ``state``, axes of size 1 aside (an
    LSTM's ``[1, batch, hidden]`` handed back as ``[batch, hidden]``)."""
    return any(value.squeeze().shape == leaf.squeeze().shape for _, leaf in floating_leaves(state))


def _one(flags: Any) -> str:
    return "True" if flags is True or (isinstance(flags, torch.Tensor) and flags.dtype == torch.bool) else "1"
