"""One generated example: the forward arguments, the seed, and the named sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from hypothesis import strategies as st

from dyncheck.strategies import control_corners, current_dims, dim_scope, seeds
from dyncheck.tracing import tuple_like

if TYPE_CHECKING:
    from dyncheck.target import Target

__all__ = ["Example", "corner_examples", "describe_value", "find", "from_target", "search", "strategy_arguments", "strategy_entries", "strategy_kind"]


@dataclass(frozen=True, eq=False)
class Example:
    """Forward arguments by name, the seed every global RNG gets, and the named sizes."""

    args: Mapping[str, Any]
    seed: int
    dims: Mapping[str, int] = field(default_factory=dict)

    def fresh_args(self) -> dict[str, Any]:
        """Copies of the arguments (tensors cloned, strides kept), so a model that writes
        into its inputs cannot change the example seen by a second call."""
        return {name: _clone(value) for name, value in self.args.items()}

    def describe(self) -> str:
        parts = [describe_value(name, value) for name, value in self.args.items()]
        parts.append(f"seed={self.seed}")
        return ", ".join(parts)

    __repr__ = describe


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if 0 in value.stride() and value.numel() > 1:
            # An expand()ed view: its elements share memory, which copy_ cannot write into.
            return value.clone()
        out = torch.empty_strided(value.size(), value.stride(), dtype=value.dtype, device=value.device)
        out.copy_(value)
        return out
    if isinstance(value, tuple):
        return tuple_like(value, map(_clone, value))
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _shortest(value: torch.Tensor) -> str:
    """The shortest decimal that gives back this element in its own dtype:
    ``0.4`` for a float32 0.4, not ``0.4000000059604645``."""
    item = value.reshape(()).item()
    if not value.is_floating_point():
        return repr(item)
    for digits in range(1, 18):
        text = f"{item:.{digits}g}"
        if torch.tensor(float(text), dtype=value.dtype).item() == item:
            return text if any(c in text for c in ".en") else text + ".0"
    return repr(item)


def _format_number(value: float) -> str:
    return f"{value:.3g}"


def describe_value(name: str, value: Any) -> str:
    """``x float32[2, 10] non-contiguous, rows [1] all zero, max |x| 1e+03``; small integer
    tensors and one-element tensors show their values."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        if value.numel() == 1 and value.dim() <= 1:
            shown = _shortest(value)
            return f"{name}=tensor([{shown}])" if value.dim() else f"{name}=tensor({shown})"
        text = f"{name} {dtype}[{', '.join(map(str, value.shape))}]"
        if not value.is_floating_point() and value.numel() <= 16:
            return f"{text} = {value.tolist()}"
        if value.is_floating_point() and value.dim() == 1 and value.numel() <= 16 and _lengths_named(name):
            # relative lengths (SpeechBrain's wav_lens): each value, as it gives back its float
            return f"{text} = [{', '.join(_shortest(v) for v in value)}]"
        notes = []
        if not value.is_contiguous():
            notes.append("non-contiguous")
        if value.is_floating_point() and value.numel():
            if value.dim() >= 1 and value.shape[0] > 0:
                zero = [i for i in range(value.shape[0]) if not value[i].any()]
                if zero and len(zero) < value.shape[0]:
                    notes.append(f"rows {zero} all zero")
                elif zero:
                    notes.append("all zero")
            if value.any():
                notes.append(f"max |{name}| {_format_number(value.abs().max().item())}")
        if value.device.type != "cpu":
            notes.append(str(value.device))
        return text + (" " + ", ".join(notes) if notes else "")
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        # the sequences' lengths, in the batch's order, and the data they are packed into
        lengths = [len(s) for s in torch.nn.utils.rnn.unpack_sequence(value)]
        data = describe_value("data", value.data).removeprefix("data ")
        return f"{name} PackedSequence of {len(lengths)} (lengths {lengths}, data {data})"
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return ", ".join(describe_value(f"{name}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, dict) and any(_tensors_inside(v) for v in value.values()) and all(
        v is None or _tensors_inside(v) for v in value.values()
    ):
        # entries left at None beside tensors (neuralforecast's windows_batch: hist_exog=None)
        return ", ".join(describe_value(f"{name}[{k!r}]", v) for k, v in value.items())
    return f"{name}={value!r}"


def _lengths_named(name: str) -> bool:
    """Whether an argument's name says lengths (``wav_lens``, ``seq_lengths``)."""
    from dyncheck.infer import _LENGTHS_NAME

    return bool(_LENGTHS_NAME.search(name))


def _tensors_inside(value: Any) -> bool:
    """A tensor, or a non-empty dict of them (a dict inside a dict of inputs too)."""
    if isinstance(value, dict):
        return bool(value) and all(_tensors_inside(v) for v in value.values())
    return isinstance(value, torch.Tensor)


def strategy_arguments(strategy: Any) -> Mapping[str, Any]:
    """The keyword arguments a dyncheck strategy was made with (``tensors(shape=...)``).

    Hypothesis keeps them on its lazy strategy under a private name; for any other
    strategy (or another Hypothesis) this is empty and the axes are found by their sizes."""
    kwargs = getattr(strategy, "_LazyStrategy__kwargs", None)
    return kwargs if isinstance(kwargs, Mapping) else {}


def strategy_entries(strategy: Any) -> Mapping[Any, Any]:
    """The entry strategies of a dict of inputs drawn by ``fixed_dictionaries`` (inferred
    or a spec's own), by key; empty for any other strategy.

    Hypothesis keeps the mapping on its lazy strategy under a private name, as it keeps
    :func:`strategy_arguments`'."""
    if getattr(getattr(strategy, "function", None), "__name__", None) == "fixed_dictionaries":
        args = getattr(strategy, "_LazyStrategy__args", ())
        if args and isinstance(args[0], Mapping):
            return args[0]
    return {}


def strategy_members(strategy: Any) -> tuple[Any, ...]:
    """The member strategies of a tuple of inputs drawn by ``tuples`` (an LSTM's
    ``(h_0, c_0)``), in order; empty for any other strategy, ``tuples(...).map(f)`` included
    (``f`` may reorder or retype the members)."""
    if (
        getattr(getattr(strategy, "function", None), "__name__", None) == "tuples"
        and not getattr(strategy, "_transformations", ())
    ):
        return tuple(getattr(strategy, "_LazyStrategy__args", ()))
    return ()


def strategy_elements(strategy: Any) -> Any:
    """The strategy of every element of a list of inputs drawn by ``lists`` (per-view
    batches, multi-crop images); None for any other strategy, ``lists(...).map(f)``
    included."""
    if (
        getattr(getattr(strategy, "function", None), "__name__", None) == "lists"
        and not getattr(strategy, "_transformations", ())
    ):
        args = getattr(strategy, "_LazyStrategy__args", ())
        return args[0] if args else getattr(strategy, "_LazyStrategy__kwargs", {}).get("elements")
    return None


def strategy_child(strategy: Any, key: Any) -> Any:
    """The strategy that draws ``value[key]`` of what ``strategy`` draws: an entry of a dict
    of inputs (:func:`strategy_entries`), or, for an int key, a member of a tuple of them
    (:func:`strategy_members`); None when it draws no such thing."""
    entries = strategy_entries(strategy)
    if key in entries:
        return entries[key]
    if not isinstance(key, int):
        return None
    members = strategy_members(strategy)
    return members[key] if 0 <= key < len(members) else None


def quiet(examples: int, *, shrink: bool = False) -> Any:
    """Hypothesis settings for a search dyncheck makes beside a check's own run: the same
    examples in every run and on every xdist worker (derandomized, no database), no deadline
    or health checks, at most ``examples`` of them, shrunk only when ``shrink``."""
    from hypothesis import HealthCheck, Phase, settings

    return settings(
        max_examples=examples,
        database=None,
        derandomize=True,
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def search(target: Target, condition: Any, settings: Any) -> Example:
    """``hypothesis.find`` over ``target``'s examples, as :func:`find` makes it. Raises
    ``NoSuchExample`` as ``find`` does."""
    return find(from_target(target), condition, settings)


def find(strategy: st.SearchStrategy, condition: Any, settings: Any) -> Any:
    """``hypothesis.find``, made beside a running check as if outside it: kept out of the
    check's Hypothesis statistics (``--hypothesis-show-statistics`` reports the check's own
    run, and a search made inside it, coverage's directed search, would otherwise replace
    it), and with the example it finds formatted without the running pytest item. ``find``
    signals what it found by an exception, which Hypothesis formats twice, through the
    item's ``repr_failure`` when there is one: pytest's traceback, each frame's source read,
    about 90 ms a search, a sixth of a one-example run of every check on a control target.
    Raises ``NoSuchExample`` as ``find`` does."""
    import contextlib

    from hypothesis import find as hypothesis_find

    with contextlib.ExitStack() as stack:
        try:  # Hypothesis's own names for both, private: without them, a search as it comes
            from hypothesis.internal.escalation import current_pytest_item
            from hypothesis.statistics import collector
        except ImportError:  # pragma: no cover - another Hypothesis
            pass
        else:
            stack.enter_context(collector.with_value(None))
            stack.enter_context(current_pytest_item.with_value(None))
        return hypothesis_find(strategy, condition, settings=settings)


def strategy_kind(strategy: Any) -> str | None:
    """Which dyncheck strategy made ``strategy`` when it marks what it draws
    (``"attention_masks"``: right- or left-padded masks, 1 at tokens; ``"tensors"``: tensors
    of the shape and dtype :func:`strategy_arguments` reads; ``"sequence_lengths"``: the
    lengths of a padded batch); None for any other, including
    a strategy made from a marked one (``.map``, ``.filter``)."""
    return getattr(strategy, "_dyncheck_strategy", None)


def from_target(target: Target, dims: Mapping[str, Any] | None = None) -> st.SearchStrategy[Example]:
    """Examples for one resolved target: every forward input its spec names, drawn with
    shared named dimensions, then a seed. ``dims`` replace the spec's ranges of those
    names."""
    spec = target.spec
    return _examples(spec.inputs, {**spec.dims, **(dims or {})})


# Defined once: st.composite reads the function's source (inspect) each time it decorates.
@st.composite
def _examples(draw: Any, inputs: Mapping[str, st.SearchStrategy[Any]], ranges: Mapping[str, Any]) -> Example:
    with dim_scope(ranges):
        args = {name: draw(strategy) for name, strategy in inputs.items()}
        dims = current_dims()
    return Example(args=args, seed=draw(seeds()), dims=dims)


def corner_examples(target: Target) -> list[Example]:
    """The examples a check runs before its random ones when the target has control inputs:
    the simplest example, then, for each control, the same example with the control's
    simplest value in each other piece :func:`~dyncheck.strategies.controls` draws from (a
    threshold, a range beside one, a boolean, a choice), so a branch behind
    ``control > 0.5`` is taken in every run. Hypothesis repeats and mutates the examples it
    drew, so 20 random ones took only one side of such a threshold in about one run in a
    hundred. Worked out once per target."""
    if target.corners is None:
        from hypothesis.errors import NoSuchExample

        corners = []
        simplest = None
        for name, strategy in target.spec.inputs.items():
            for _, holds in control_corners(strategy):
                if simplest is None:
                    # Hypothesis's first example is the simplest: nothing to shrink.
                    simplest = search(target, lambda e: True, quiet(1))
                if holds(simplest.args[name]):
                    continue  # Hypothesis runs the simplest example first
                try:
                    value = find(strategy, holds, quiet(200, shrink=True))
                except NoSuchExample:  # a piece a user's strategy around it never reaches
                    continue
                # A control draws no sizes: the rest of the simplest example goes with it.
                corners.append(Example(args={**simplest.args, name: value}, seed=simplest.seed, dims=simplest.dims))
        if corners:
            # First, as Hypothesis would run it: a failure there is the plainest to read.
            corners.insert(0, simplest)
        target.corners = corners
    return target.corners
