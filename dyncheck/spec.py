"""Spec: how to build and call one model.

A Spec is a frozen description; nothing in it touches torch until dyncheck builds the
model. Fields that name things inside the model (``branches`` modules, ``ties``
parameters, ``inputs`` arguments) are checked against a built instance by
:func:`dyncheck.target.resolve`, which names the bad entry and the close matches.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from dyncheck.errors import InvalidArgument

__all__ = ["Spec", "lengths_slot"]

#: ``batch['n_valid']``, ``batch['text']['ids']``, ``batch[1]``: an entry of a dict of inputs
#: (of a dict inside it) or a member of a tuple of inputs, as ``Spec(lengths=...)`` and
#: ``Spec(padding_value={...})`` name one.
_ENTRY = re.compile(r"""([A-Za-z_]\w*)((?:\[(?:'[^'\[\]]+'|"[^"\[\]]+"|0|[1-9]\d*)\])+)""")
_KEY = re.compile(r"""\[(?:(['"])([^'"\[\]]+)\1|(0|[1-9]\d*))\]""")


def lengths_slot(text: str) -> tuple[str, str | int | None] | None:
    """``Spec(lengths=...)`` as ``(argument, None)`` for ``"n_valid"``, or ``(argument,
    key)`` for an entry of a dict of inputs, ``"batch['n_valid']"``, or a member of a tuple
    of them, ``"batch[1]"``; None for anything else."""
    found = padding_slot(text)
    if found is None or len(found[1]) > 1:
        return None
    argument, keys = found
    return argument, keys[0] if keys else None


def padding_slot(text: str) -> tuple[str, tuple[str | int, ...]] | None:
    """A key of ``Spec(padding_value={...})`` as ``(argument, keys)``: ``"input_values"``,
    ``"batch['frames']"``, ``"batch['text']['ids']"`` or ``"batch[0]"`` (a member of a tuple
    of inputs, an int key); None for anything else."""
    if not isinstance(text, str):
        return None
    if text.isidentifier():
        return text, ()
    match = _ENTRY.fullmatch(text)
    if match is None:
        return None
    return match.group(1), tuple(
        key.group(2) if key.group(3) is None else int(key.group(3)) for key in _KEY.finditer(match.group(2))
    )


def _padding_value(value: Any) -> Any:
    """``Spec(padding_value=...)``: None, a number, or a dict of numbers keyed by inputs."""
    if value is None:
        return None
    if _is_number(value):
        return value
    if isinstance(value, Mapping) and value:
        for key, number in value.items():
            if padding_slot(key) is None:
                raise InvalidArgument(
                    f"Spec(padding_value={{{key!r}: ...}}) must be keyed by a forward argument, e.g. "
                    f"\"input_values\", or an entry of a dict of inputs, e.g. \"batch['frames']\", or a member "
                    f"of a tuple of inputs, e.g. \"batch[0]\""
                )
            if not _is_number(number):
                raise InvalidArgument(
                    f"Spec(padding_value={{{key!r}: {number!r}}}) needs a number, e.g. {{{key!r}: 0.0}}"
                )
        return dict(value)
    raise InvalidArgument(
        f"Spec(padding_value={value!r}) must be a number for every padded input, e.g. padding_value=0.0, "
        "or a dict of numbers keyed by input, e.g. padding_value={\"input_values\": 0.0}"
    )


def _causal(value: Any) -> Any:
    """``Spec(causal=...)``: a bool, an axis name, or ``{"axis": name, "lookahead": steps}``."""
    if isinstance(value, bool) or (isinstance(value, str) and value.isidentifier()):
        return value
    if isinstance(value, Mapping) and value and set(value) <= {"axis", "lookahead"}:
        axis, ahead = value.get("axis", "time"), value.get("lookahead", 0)
        if (
            isinstance(axis, str) and axis.isidentifier()
            and isinstance(ahead, int) and not isinstance(ahead, bool) and ahead >= 0
        ):
            return dict(value)
    raise InvalidArgument(
        f"Spec(causal={value!r}) must be True (the inputs' \"time\" axis), the name of the time axis the inputs' "
        "shapes use, e.g. causal=\"frames\", or a dict with a look-ahead, e.g. causal={\"axis\": \"frames\", "
        "\"lookahead\": 2}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float)) and not (isinstance(value, float) and value != value)


def _tolerance(invariant: Any, given: Any) -> tuple[float, float]:
    """``Spec(tolerances={invariant: {"rtol": ..., "atol": ...}})``'s entry as ``(rtol, atol)``,
    or one line saying what is wrong."""
    from dyncheck.project import TOLERANCE_INVARIANTS

    example = f'tolerances={{"batch_invariance": {{"rtol": 1e-3, "atol": 1e-4}}}}'
    if invariant not in TOLERANCE_INVARIANTS:
        raise InvalidArgument(
            f"Spec(tolerances={{{invariant!r}: ...}}): {invariant!r} takes no tolerances; the invariants with "
            f"tolerances are {', '.join(TOLERANCE_INVARIANTS)}"
        )
    if isinstance(given, Mapping) and set(given) == {"rtol", "atol"}:
        values = (given["rtol"], given["atol"])
    elif isinstance(given, tuple) and len(given) == 2:
        values = given  # already read (a Spec copied with dataclasses.replace)
    else:
        values = None
    if values is None or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values
    ):
        raise InvalidArgument(
            f"Spec(tolerances={{{invariant!r}: {given!r}}}) needs rtol and atol, two numbers of 0 or more, e.g. {example}"
        )
    return float(values[0]), float(values[1])


def _frozen_mapping(name: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"Spec({name}={value!r}) must be a dict")
    for key in value:
        if not isinstance(key, str):
            raise InvalidArgument(f"Spec({name}=...) has key {key!r}; keys must be strings")
    return dict(value)


def _check_guard_fields(against: Any, state_map: Any) -> None:
    """``against`` names a model and ``state_map`` renames or restructures keys (see Spec)."""
    if against is not None and not (isinstance(against, str) or callable(against) or _is_module(against)):
        raise InvalidArgument(
            f"Spec(against={against!r}) must name the old model: a target string such as "
            "'old_module:Model' or 'git:main', a Spec, an nn.Module class or a factory"
        )
    if isinstance(against, str) and not against.strip():
        raise InvalidArgument("Spec(against='') is empty; give e.g. against='old_module:Model' or against='git:main'")
    if state_map is None or callable(state_map):
        return
    if not isinstance(state_map, Mapping):
        raise InvalidArgument(
            f"Spec(state_map={state_map!r}) must be a dict {{old name: new name}} or a callable "
            "old_state_dict -> new_state_dict"
        )
    for old, new in state_map.items():
        if not isinstance(old, str) or not (new is None or isinstance(new, str)):
            raise InvalidArgument(
                f"Spec(state_map=...) has entry {old!r}: {new!r}; each entry maps an old parameter or "
                "module name to its new name (or None to drop it), e.g. {'fc1': 'encoder'}"
            )


def _is_module(value: Any) -> bool:
    try:
        from torch import nn
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(value, (nn.Module, Spec))


@dataclass(frozen=True)
class Spec:
    """How dyncheck builds and calls one model.

    Args:
        model: an ``nn.Module`` subclass, a callable returning a module, or a module
            instance (dyncheck works on deep copies and never changes it). May be left
            out in a class's ``__dyncheck__``, where it is that class.
        init: keyword arguments for ``model(**init)``.
        inputs: forward argument name -> Hypothesis strategy. Arguments not named here
            are inferred; arguments with defaults and no entry keep their defaults.
        dims: dimension name -> size, ``(min, max)`` or strategy; the named dimensions
            (``"batch"``, ``"time"``, ...) that ``inputs`` share within one example.
        branches: module name -> predicate over forward arguments, "this module runs
            exactly when the predicate holds": ``{"fc2": lambda control: control > 0.5}``.
        ties: groups of parameter names that must be one shared Parameter.
        loss: output -> scalar tensor, used as given; default: a fixed random projection of
            every floating output, drawn from the example's seed (so a final LayerNorm or
            softmax, whose output sums to a constant, does not blind it).
        skip: invariant name -> the reason it does not apply to this model.
        frozen: parameter names that are not meant to receive gradients.
        unused: module name -> why forward never runs it (a head another method uses,
            ``{"contact_head": "run by predict_contacts()"}``): ``coverage`` does not call
            its parameters dead, and fails if forward does run it.
        optimizer: ``params -> torch.optim.Optimizer``, used by checks that take
            optimizer steps (default: SGD with momentum and weight decay, and AdamW).
        xfail: invariant name -> why the model is known to break it. The check still
            runs and must fail (strict): a known bug stays visible, and its fix shows.
        lengths: the forward argument that holds the lengths of a padded batch, when its
            name does not say so (``lengths``, ``seq_lengths``, ``lens`` and ``*_lengths``
            are recognised): it is drawn as sequence lengths, the argument beside it as a
            padded batch, and ``padding_invariance`` and ``packed_rnn`` use it. An entry of
            a dict of inputs is named as forward reads it: ``"batch['n_valid']"``.
        padding_value: what the padded steps of the model's inputs hold, when the model
            counts on it (a first convolution over raw features reads zero padding as the
            zeros it pads a row alone with): a number for every padded input,
            ``padding_value=0.0``, or a dict for some, ``{"input_values": 0.0}`` (an entry
            of a dict of inputs as ``"batch['frames']"``). ``padding_invariance`` sets
            those steps to it, and appends steps of it, instead of other values.
        causal: the model is causal over its inputs' ``"time"`` axis (``True``) or another
            named axis (``"frames"``): no output step depends on a later input step, as in a
            language model, a causal convolution or a streaming encoder; one that may read
            ``k`` steps ahead (a streaming encoder's right context) is
            ``{"axis": "frames", "lookahead": k}``. ``causality`` then runs by default
            (``--dyncheck-invariants=causality`` runs it on any model).
        load_with_assign: the model is meant to be loaded with
            ``load_state_dict(assign=True)``, so its ties must survive that (they need a
            re-tie in a load post-hook); otherwise untying there is only a warning.
        name: how reports name the model (default: the target string).
        against: the model this one must keep computing what it computed (a refactor's
            old version): a target string (``"old_module:Model"``, ``"git:main"``), a Spec,
            an ``nn.Module`` class or a factory; checked by ``refactor_agreement``.
        state_map: how the old model's ``state_dict`` keys become this model's: a dict
            ``{old name or module: new name}`` (``None`` drops an old key), or a callable
            ``old_state_dict -> new_state_dict`` for structural changes (three projections
            concatenated into one). Used by ``refactor_agreement`` and ``baseline``.
        tolerances: invariant -> ``{"rtol": ..., "atol": ...}`` for this model alone, over
            ``[tool.dyncheck.<invariant>]``'s: an adaptive ODE solver that picks one step
            size for the whole batch couples its samples within its own tolerance,
            ``{"batch_invariance": {"rtol": 1e-3, "atol": 1e-4}}``. For the agreement
            checks (batch_invariance, dtype_agreement, device_agreement, compile_agreement,
            refactor_agreement, baseline); used as written, with no rounding margins.
    """

    model: Any = None
    init: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    dims: Mapping[str, Any] = field(default_factory=dict)
    branches: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    ties: Sequence[Sequence[str]] = ()
    loss: Callable[[Any], Any] | None = None
    skip: Mapping[str, str] = field(default_factory=dict)
    frozen: Sequence[str] = ()
    unused: Mapping[str, str] = field(default_factory=dict)
    optimizer: Callable[[Any], Any] | None = None
    xfail: Mapping[str, str] = field(default_factory=dict)
    load_with_assign: bool = False
    lengths: str | None = None
    padding_value: Any = None
    causal: bool | str | Mapping[str, Any] = False
    name: str | None = None
    against: Any = None
    state_map: Any = None
    tolerances: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("init", "inputs", "dims", "branches", "skip", "xfail", "unused", "tolerances"):
            set_(self, name, _frozen_mapping(name, getattr(self, name)))
        set_(self, "tolerances", _frozen_mapping("tolerances", {
            invariant: _tolerance(invariant, given) for invariant, given in self.tolerances.items()
        }))
        from hypothesis.strategies import SearchStrategy

        for arg, strategy in self.inputs.items():
            if not isinstance(strategy, SearchStrategy):
                raise InvalidArgument(
                    f"Spec(inputs={{{arg!r}: {strategy!r}}}): {strategy!r} is not a Hypothesis "
                    f"strategy; write e.g. inputs={{{arg!r}: dyncheck.strategies.tensors(shape=(\"batch\", 4))}}"
                    f" or st.just({strategy!r})"
                )
        from dyncheck.strategies import _dim_strategy

        for dim, value in self.dims.items():
            _dim_strategy(value, argument=f"Spec(dims={{{dim!r}: ...}})")
        for module, predicate in self.branches.items():
            if not callable(predicate):
                raise InvalidArgument(
                    f"Spec(branches={{{module!r}: {predicate!r}}}) needs a predicate, e.g. "
                    f"{{{module!r}: lambda control: control > 0.5}}"
                )
        if isinstance(self.ties, (str, bytes)) or not isinstance(self.ties, Sequence):
            raise InvalidArgument(
                f"Spec(ties={self.ties!r}) must be a list of groups, e.g. "
                "ties=[(\"decoder.weight\", \"encoder.weight\")]"
            )
        ties = []
        for group in self.ties:
            if (
                isinstance(group, (str, bytes))
                or not isinstance(group, Sequence)
                or len(group) < 2
                or not all(isinstance(n, str) for n in group)
            ):
                raise InvalidArgument(
                    f"Spec(ties=...) has group {group!r}; each group is two or more parameter "
                    "names, e.g. (\"decoder.weight\", \"encoder.weight\")"
                )
            ties.append(tuple(group))
        set_(self, "ties", tuple(ties))
        if self.loss is not None and not callable(self.loss):
            raise InvalidArgument(f"Spec(loss={self.loss!r}) must be a callable output -> scalar")
        for field_name in ("skip", "xfail"):
            for invariant, reason in getattr(self, field_name).items():
                if not isinstance(reason, str) or not reason.strip():
                    raise InvalidArgument(
                        f"Spec({field_name}={{{invariant!r}: {reason!r}}}) needs a reason, e.g. "
                        f"{field_name}={{{invariant!r}: \"the model is stochastic by design\"}}"
                    )
        for module, reason in self.unused.items():
            if not isinstance(module, str) or not module or not isinstance(reason, str) or not reason.strip():
                raise InvalidArgument(
                    f"Spec(unused={{{module!r}: {reason!r}}}) needs a module name and a reason, e.g. "
                    "unused={\"contact_head\": \"run by predict_contacts(), not by forward\"}"
                )
        both = sorted(set(self.skip) & set(self.xfail))
        if both:
            raise InvalidArgument(
                f"Spec(skip=..., xfail=...) both name {', '.join(both)}: a check is either "
                "skipped (it does not apply) or expected to fail (a known bug), not both"
            )
        if self.optimizer is not None and not callable(self.optimizer):
            raise InvalidArgument(
                f"Spec(optimizer={self.optimizer!r}) must be a callable params -> optimizer, e.g. "
                "optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3)"
            )
        if isinstance(self.frozen, (str, bytes)) or not all(isinstance(n, str) for n in self.frozen):
            raise InvalidArgument(f"Spec(frozen={self.frozen!r}) must be a list of parameter names")
        set_(self, "frozen", tuple(self.frozen))
        _check_guard_fields(self.against, self.state_map)
        if self.lengths is not None and lengths_slot(self.lengths) is None:
            raise InvalidArgument(
                f"Spec(lengths={self.lengths!r}) must name a forward argument, e.g. lengths=\"n_valid\", "
                f"or an entry of a dict of inputs, e.g. lengths=\"batch['n_valid']\", or a member of a "
                f"tuple of inputs, e.g. lengths=\"batch[1]\""
            )

        set_(self, "padding_value", _padding_value(self.padding_value))
        set_(self, "causal", _causal(self.causal))

    @classmethod
    def coerce(cls, value: Any, *, model: Any) -> Spec:
        """A Spec from a class's ``__dyncheck__``: a Spec or a dict of Spec fields."""
        if isinstance(value, Spec):
            return value if value.model is not None else replace(value, model=model)
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                import difflib

                close = [c for n in unknown for c in difflib.get_close_matches(n, sorted(known), n=1)]
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise InvalidArgument(
                    f"__dyncheck__ has unknown Spec field(s) {', '.join(unknown)}; "
                    f"{hint}the fields are {', '.join(sorted(known))}"
                )
            return cls(**{"model": model, **value})
        raise InvalidArgument(
            f"__dyncheck__ = {value!r} must be a dyncheck.Spec or a dict of Spec fields"
        )

    def replace(self, **changes: Any) -> Spec:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def model_name(self) -> str:
        model = self.model
        if inspect.isclass(model) or inspect.isfunction(model):
            return f"{model.__module__}:{model.__qualname__}"
        return type(model).__qualname__
