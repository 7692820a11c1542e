"""Turning ``module.path:Name`` into a complete Spec dyncheck can build and call.

Every user error here raises :class:`~dyncheck.errors.TargetError` with one line that
names the problem and the fix; the plugin turns it into a pytest usage error.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import itertools
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import jit, nn

from dyncheck import probing
from dyncheck.cloning import clone, uncopyable
from dyncheck.errors import InvalidArgument, TargetError, exit_hint, import_failure, one_line
from dyncheck.infer import (
    _LENGTHS_NAME,
    Inferred,
    Uninferable,
    check_forward_arguments,
    infer_attention_mask,
    infer_dims,
    infer_init,
    PACKED_LENGTHS_NOTE,
    infer_input,
    optional_control,
    last_steps_as_lengths,
    packs_as_lengths,
    sequence_axis,
    predicate_thresholds,
    primary_input,
)
from dyncheck.seeding import seeded
from dyncheck.spec import Spec, lengths_slot, padding_slot

__all__ = ["Target", "load", "resolve", "resolve_spec"]

#: Every model is built under this seed, so its initial weights are the same in every
#: run, on every xdist worker, and in a reproduce command.
BUILD_SEED = 0


@dataclass
class Target:
    """A resolved target: its complete spec and how each inferred part was decided."""

    text: str
    spec: Spec
    #: argument name -> why it got its value/strategy ("first consumed by fc1 (Linear...)")
    inferred_init: dict[str, str] = field(default_factory=dict)
    inferred_inputs: dict[str, str] = field(default_factory=dict)
    #: dimension name -> why its range was narrowed ("bn is BatchNorm1d, which ...")
    inferred_dims: dict[str, str] = field(default_factory=dict)
    #: optional forward argument -> why it was left at its default (a ``mask=None`` that a
    #: mask of all True does not leave as it is, so not drawn as a padding mask)
    kept_defaults: dict[str, str] = field(default_factory=dict)
    #: forward arguments that must be passed positionally
    positional: tuple[str, ...] = ()
    #: the class of the model, for messages and the census
    model_class: type | None = None
    #: whether deep copies of the model are its own (a dyncheck.copies.Copies), found once
    #: by dyncheck.copies.verdict; None until then
    copies: Any = field(default=None, repr=False, compare=False)
    #: the examples every check runs first (dyncheck.examples.corner_examples); None until
    #: worked out
    corners: Any = field(default=None, repr=False, compare=False)

    def build(self, seed: int = BUILD_SEED) -> nn.Module:
        """A fresh model, built under the fixed build seed (or ``seed``); the user's objects are never
        handed out (instances and factory results are deep-copied). When copies of the
        model compute with the original's parameters, a factory's result is handed out as
        it is (the factory was found to build a new model on every call) and an instance
        cannot be built."""
        copies_safe = self.copies is None or self.copies.safe
        if not copies_safe and self.copies.unbuildable:
            raise TargetError(f"{self.text}: a model cannot be built anew: {self.copies.unbuildable}")
        with seeded(seed):
            return _instantiate(self.spec, copy_result=copies_safe)

    def call(self, model: nn.Module, args: dict[str, Any]) -> Any:
        # positionally up to the first one missing (a later one there would take its place)
        given = list(itertools.takewhile(lambda name: name in args, self.positional))
        keywords = {name: value for name, value in args.items() if name not in given}
        return model(*(args[name] for name in given), **keywords)


def _instantiate(spec: Spec, *, copy_result: bool = True) -> nn.Module:
    model = spec.model
    if isinstance(model, nn.Module):
        return clone(model)
    built = model(**spec.init)
    if not inspect.isclass(model) and copy_result:
        # A factory may hand back a cached or global instance: work on a copy.
        built = clone(built)
    return built


def _fail(text: str, message: str) -> TargetError:
    return TargetError(f"--dyncheck {text}: {message}")


def _import(text: str) -> Any:
    if text.count(":") != 1:
        raise _fail(
            text,
            "a target is module.path:Name (an nn.Module class, a dyncheck.Spec or a factory), "
            "e.g. --dyncheck mypackage.models:Net",
        )
    module_name, _, attribute = text.partition(":")
    if not module_name or not attribute:
        raise _fail(text, "both parts are needed: module.path:Name, e.g. mypackage.models:Net")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the target module (or a package on its path) being missing is "not found";
        # a missing dependency of the user's module (even one whose name is a prefix,
        # like ``import my`` in ``mymod``) is an import failure with its location.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _fail(
                text,
                f"no module named {exc.name!r} (searched the current directory and sys.path; "
                "run pytest from the project root or install the package)",
            ) from None
        raise _fail(text, import_failure(module_name, exc)) from None
    except (Exception, SystemExit) as exc:  # the user's module raised (or exited) while importing
        raise _fail(text, import_failure(module_name, exc)) from None
    value: Any = module
    for index, part in enumerate(attribute.split(".")):
        if not hasattr(value, part):
            owner = ".".join([module_name, *attribute.split(".")[:index]])
            names = [n for n in dir(value) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.5)
            suggestion = (
                f"; did you mean {' or '.join(f'{module_name}:{n}' for n in close)}?"
                if close
                else (f"; it has {', '.join(_model_like(value)[:6])}" if _model_like(value) else "")
            )
            raise _fail(text, f"{owner!r} has no attribute {part!r}{suggestion}")
        value = getattr(value, part)
    return value


def load(text: str) -> Any:
    """The object ``module.path:Name`` names, imported; a :class:`TargetError` starting
    with ``--dyncheck TEXT:`` says what is wrong."""
    return _import(text)


def _model_like(namespace: Any) -> list[str]:
    out = []
    for name in dir(namespace):
        value = getattr(namespace, name, None)
        if isinstance(value, Spec) or (inspect.isclass(value) and issubclass(value, nn.Module)
                                       and value.__module__ == getattr(namespace, "__name__", None)):
            out.append(name)
    return out


def _as_spec(text: str, value: Any) -> Spec:
    if isinstance(value, Spec):
        if value.model is None:
            raise _fail(text, "this Spec has no model; write dyncheck.Spec(MyModel, ...)")
        return value
    if inspect.isclass(value) and issubclass(value, nn.Module):
        declared = value.__dict__.get("__dyncheck__", getattr(value, "__dyncheck__", None))
        if declared is None:
            return Spec(model=value)
        try:
            return Spec.coerce(declared, model=value)
        except InvalidArgument as exc:
            raise _fail(text, str(exc)) from None
    if isinstance(value, nn.Module):
        return Spec(model=value)
    if callable(value) and not inspect.isclass(value):
        try:
            parameters = inspect.signature(value).parameters.values()
        except (TypeError, ValueError):
            parameters = []
        required = [
            p.name for p in parameters
            if p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            name = getattr(value, "__name__", type(value).__name__)
            init = ", ".join(f"{n!r}: ..." for n in required)
            raise _fail(
                text,
                f"{name}() needs arguments ({', '.join(required)}); a factory takes none "
                f"— or write dyncheck.Spec({name}, init={{{init}}})",
            )
        return Spec(model=value)
    raise _fail(
        text,
        f"{type(value).__name__} {value!r:.60} is not an nn.Module subclass, a dyncheck.Spec "
        "or a zero-argument factory returning a module",
    )


def resolve(text: str) -> Target:
    """Import and resolve ``module.path:Name``; infer whatever its spec leaves out."""
    handed = _handed.pop(text, None)
    if handed is not None:
        return handed
    value = _import(text)
    return resolve_spec(_as_spec(text, value), text=text)


#: Targets ``python -m dyncheck`` resolved while choosing which models of a module it can
#: check, kept for the plugin's own :func:`resolve` in the same process (resolution builds
#: the model and may probe its sizes with calls): each is taken once, and the command drops
#: what is left when it ends.
_handed: dict[str, Target] = {}


def _longest_time(dims: Any) -> int:
    """The longest size the spec's dims draw (``"time"``'s or another's, a sequence named
    otherwise; the default ``"time"``'s top where they say none)."""
    from dyncheck.strategies import DEFAULT_DIMS

    def top(size: Any) -> int | None:
        if isinstance(size, int):
            return size
        if isinstance(size, tuple) and len(size) == 2 and all(isinstance(t, int) for t in size):
            return size[1]
        elements = getattr(size, "elements", None)  # st.sampled_from([...])
        if elements and all(isinstance(e, int) for e in elements):
            return max(elements)
        end = getattr(getattr(size, "wrapped_strategy", size), "end", None)  # st.integers(2, 24)
        return end if isinstance(end, int) else None

    # every size the spec gives, as its sequence may be named otherwise (dims={"seq": (1, 24)})
    tops = [t for size in dict(dims).values() if (t := top(size)) is not None]
    return max([top(dict(dims).get("time", DEFAULT_DIMS["time"])) or DEFAULT_DIMS["time"][1], *tops])


def resolve_spec(spec: Spec, *, text: str | None = None) -> Target:
    """Complete ``spec`` against a built instance: infer the constructor arguments and
    forward inputs it leaves out, and check every name it gives."""
    text = text or spec.name or spec.model_name
    model = spec.model
    inferred_init: dict[str, str] = {}
    if inspect.isclass(model):
        try:
            found = infer_init(model, dict(spec.init), _longest_time(spec.dims))
        except Uninferable as exc:
            raise _fail(text, str(exc)) from None
        if found:
            spec = spec.replace(init={**spec.init, **{k: v.value for k, v in found.items()}})
            inferred_init = {k: v.why for k, v in found.items()}
    try:
        with seeded(BUILD_SEED):
            instance = _instantiate(spec)
    except (Exception, SystemExit) as exc:  # SystemExit: a constructor that parses the command line
        shown = ", ".join(f"{k}={v!r}" for k, v in spec.init.items())
        # The name, not a repr: a module instance's repr spans many lines.
        name = getattr(model, "__qualname__", type(model).__qualname__)
        fix = exit_hint(exc, building=True) or (
            f"; {name}() takes no arguments, so the error is the factory's own: call it in Python to see where"
            if not inspect.isclass(model) and _takes_nothing(model)
            else f"; pass constructor arguments with dyncheck.Spec({name}, init={{...}})"
        )
        raise _fail(text, f"building {name}({shown}) raised {type(exc).__name__}: {one_line(exc)}{fix}") from None
    if isinstance(instance, Spec):
        # a Spec is a target itself, resolved once; a factory is called for every copy
        name = getattr(model, "__name__", "make")
        raise _fail(
            text,
            f"the factory returned a dyncheck.Spec, which is a target itself: name it at module level "
            f"(spec = {name}()) and check module:spec",
        )
    if not isinstance(instance, nn.Module):
        raise _fail(text, f"the factory returned {type(instance).__name__}, not an nn.Module")
    wrapped = getattr(instance, "module", None)
    if isinstance(instance, (nn.DataParallel, nn.parallel.DistributedDataParallel)) and isinstance(wrapped, nn.Module):
        raise _fail(
            text,
            f"{type(instance).__qualname__} only spreads batches over devices: check the model it wraps, "
            f"{type(wrapped).__qualname__} (a factory returning it, before the wrapping)",
        )
    compiled = getattr(instance, "_orig_mod", None)
    if type(instance).__name__ == "OptimizedModule" and isinstance(compiled, nn.Module):  # torch.compile(model)
        raise _fail(
            text,
            f"the model is torch.compile's wrapper of {type(compiled).__qualname__}: check that model (a factory "
            "returning it before torch.compile); --dyncheck-invariants=compile_agreement compares it compiled "
            "with eager",
        )
    scripted = _scripted(instance)
    if scripted is not None:
        raise _fail(
            text,
            f"{scripted} is a TorchScript module (torch.jit.script or torch.jit.trace), and torch refuses it the "
            "forward hooks dyncheck follows paths with: check the eager module it is made from (a factory that "
            "builds the model without scripting), and script it after",
        )
    try:
        clone(instance)
    except Exception as exc:  # noqa: BLE001 - said in one line, with the attribute
        raise _fail(
            text,
            f"dyncheck works on copies of the model and cannot copy it: {uncopyable(instance, exc)}; keep something "
            "copy.deepcopy copies there (a function or method instead of the object)",
        ) from None
    # The probes below call the model on inputs of dyncheck's making; what it warns of there
    # (torch's nested-tensor prototype warning from nn.TransformerEncoder's fast path, once
    # in each process: three times at the top of `make check`) is not the user's to read
    # before the run. The checks' own calls run under pytest's capture, which lists their
    # warnings in the summary; a warning torch gives once per process is not given again
    # (but is in an xdist worker that replays the controller's calls: docs/inference.md).
    # Under a fixed seed: the probes' random inputs are the same in every run, and the
    # caller's random streams are left as they were.
    with warnings.catch_warnings(), seeded(BUILD_SEED), probing.probing(text):
        warnings.simplefilter("ignore")
        try:
            return _complete(spec, text, instance, inferred_init)
        except TargetError as exc:
            named = _as_given(exc, spec.model, instance)
            if named is exc:
                raise
            raise named from None


def _takes_nothing(factory: Any) -> bool:
    """Whether ``factory`` can take no argument at all (``def tcn(): return TCN(...)``), so
    that ``Spec(init=...)`` cannot help it."""
    try:
        return not inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _as_given(exc: TargetError, given: Any, instance: nn.Module) -> TargetError:
    """``exc`` with the Spec it suggests built as the target is: a factory by its own name
    (``dyncheck.Spec(small_vq, ...)``), not the class it returns, which a pasted Spec would
    build with inferred arguments instead of the factory's."""
    name = getattr(given, "__qualname__", None)
    if inspect.isclass(given) or not callable(given) or not name or "<" in name:
        return exc
    built = f"dyncheck.Spec({type(instance).__qualname__},"
    return TargetError(str(exc).replace(built, f"dyncheck.Spec({name},")) if built in str(exc) else exc


def _scripted(instance: nn.Module) -> str | None:
    """The first TorchScript module in ``instance`` (``"the model"`` when it is one itself),
    or None."""
    for name, module in instance.named_modules():
        if isinstance(module, jit.ScriptModule):
            return repr(name) if name else "the model"
    return None


def _beside_given(message: str, given: dict[str, Any]) -> str:
    """A refusal whose Spec line names only the argument refused, said to a user whose Spec
    already gives other inputs: those stay, the new one joins them."""
    if not given or "write dyncheck.Spec(" not in message:
        return message
    names = ", ".join(map(repr, given))
    return f"{message}; keep the input{'s' if len(given) > 1 else ''} your Spec gives ({names}) beside it"


#: Where a refusal's Spec line starts.
_WRITE_SPEC = "write dyncheck.Spec("


def _refusals(refused: list[tuple[str, str]]) -> str:
    """The refusals of forward's arguments as one line: each reason, then one Spec that
    gives every refused input (their ``inputs``, ``dims`` and ``skip`` entries merged), and
    what each one's line added after its Spec. Where a refusal's Spec line cannot be read,
    the first refusal, naming the others."""
    if len(refused) == 1:
        return refused[0][1]
    reasons: list[str] = []
    covered: set[str] = set()  # the arguments an earlier refusal's Spec line gives (x and y split one layer)
    merged: dict[str, dict[str, str]] = {}  # keyword -> the key of each entry -> the entry
    owners: set[str] = set()
    afters: list[str] = []
    unmerged = f"{refused[0][1]}; dyncheck cannot infer {', '.join(repr(n) for n, _ in refused[1:])} either"
    for name, message in refused:
        reason, found, rest = message.partition(_WRITE_SPEC)
        call = _spec_call(rest) if found else None
        reason = reason.rstrip(" ;:")  # "(...); write" and a dict's "(...); a dict of inputs: write"
        if call is None:
            return unmerged
        owner, keywords, after = call
        if name in covered:
            continue
        covered.update(entry.partition(":")[0].strip().strip("'\"") for entry in keywords.get("inputs", ()))
        owners.add(owner)
        reasons.append(reason)
        for keyword, entries in keywords.items():
            held = merged.setdefault(keyword, {})
            for entry in entries:
                key = entry.partition(":")[0].strip()
                if key in held and held[key] != entry and keyword != "skip":
                    return unmerged  # two bounds of one dimension: not for a merge to choose
                held.setdefault(key, entry)  # a skip's first reason serves for all
        if after.strip(" ,;"):
            afters.append(f"for {name!r}: {after.strip(' ,;').removeprefix('with ').removeprefix('its ')}")
    if len(owners) != 1:
        return unmerged
    if len(reasons) == 1:
        return refused[0][1]
    fields = "".join(f", {keyword}={{{', '.join(entries.values())}}}" for keyword, entries in merged.items())
    return "; ".join(reasons) + f"; {_WRITE_SPEC}{owners.pop()}{fields})" + "".join(f"; {a}" for a in afters)


def _spec_call(rest: str) -> tuple[str, dict[str, list[str]], str] | None:
    """What follows ``write dyncheck.Spec(`` in a refusal: the model's name, each keyword's
    dict entries as written (``{'inputs': ["'x': tensors(...)"]}``) and the text after the
    call's closing parenthesis; None where it is not that."""
    parts, end = _top_level_items(rest)
    if end is None or not parts:
        return None
    keywords: dict[str, list[str]] = {}
    for part in parts[1:]:
        keyword, equals, value = part.partition("=")
        if not equals or not keyword.isidentifier() or not (value.startswith("{") and value.endswith("}")):
            return None
        keywords[keyword] = _top_level_items(value[1:-1])[0]
    return parts[0], keywords, rest[end + 1:]


def _top_level_items(text: str) -> tuple[list[str], int | None]:
    """``text`` split at its commas outside brackets and quotes, up to a closing bracket
    opened before it, and that bracket's index (None where there is none)."""
    items, depth, start, quote = [], 0, 0, None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                items.append(text[start:index].strip())
                return [item for item in items if item], index
        elif char == "," and depth == 0:
            items.append(text[start:index].strip())
            start = index + 1
    items.append(text[start:].strip())
    return [item for item in items if item], None


def _complete(spec: Spec, text: str, instance: nn.Module, inferred_init: dict[str, str]) -> Target:
    """:func:`resolve_spec` once the instance is built: its forward inputs inferred and
    probed, every name the spec gives checked."""
    _check_names(text, spec, instance)
    parameters = _forward_parameters(instance)
    declared_lengths = lengths_slot(spec.lengths) if spec.lengths is not None else None
    named = [(f"Spec(lengths={spec.lengths!r})", declared_lengths[0])] if declared_lengths is not None else []
    if isinstance(spec.padding_value, Mapping):
        named += [(f"Spec(padding_value={{{key!r}: ...}})", padding_slot(key)[0]) for key in spec.padding_value]
    for field_text, argument in named:
        if argument not in parameters:
            raise _fail(
                text,
                f"{field_text} names an argument {type(instance).__qualname__}.forward does not "
                f"take{_close(argument, list(parameters))} (it takes {', '.join(parameters) or 'nothing'})",
            )
    unknown = sorted(set(spec.inputs) - set(parameters))
    if unknown:
        raise _fail(
            text,
            f"Spec(inputs=...) names {', '.join(map(repr, unknown))}, which "
            f"{type(instance).__qualname__}.forward does not take "
            f"(it takes {', '.join(parameters) or 'nothing'})",
        )
    if not spec.inputs:
        try:
            check_forward_arguments(instance, parameters)
        except Uninferable as exc:
            raise _fail(text, str(exc)) from None
    inputs: dict[str, Any] = {}
    inferred_inputs: dict[str, str] = {}
    kept_defaults: dict[str, str] = {}
    all_dims = dict(spec.dims)
    # Lengths named otherwise (src_len), known by where forward hands them: to
    # pack_padded_sequence, as its lengths. Then they are the lengths as Spec(lengths=...)
    # would say, for every check.
    packed, packed_note = None, PACKED_LENGTHS_NOTE
    if spec.lengths is None and not any(_LENGTHS_NAME.search(n) for n in parameters):
        required = [
            n for n, p in parameters.items() if n not in spec.inputs and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        packed = next((n for n in required if packs_as_lengths(instance, n)), None)
        if packed is None:
            # a length's short name forward takes 1 from (item_seq_len - 1): each sequence's
            # last valid step, RecBole's; as indices into another input it was refused
            packed, last = next(
                ((n, line) for n in required if (line := last_steps_as_lengths(instance, n))), (None, None)
            )
            packed_note = (
                f"sequence lengths, by its name and as forward takes each sequence's last valid step ({last}): one per "
                "sample, each between 1 and the padded length 'time'"
            )
        if packed is not None:
            spec = spec.replace(lengths=packed)
    # forward(input_ids=None, attention_mask=None, ...) requires nothing: infer the first.
    primary = primary_input(parameters, spec.inputs)
    unmasked: Uninferable | None = None
    uninferred: list[tuple[str, str]] = []  # (argument, why): every argument refused, said at once
    refusals: dict[str, Uninferable] = {}
    switches: dict[str, Any] = {}  # optional controls drawn -> their defaults
    for name, parameter in parameters.items():
        if name in spec.inputs:
            _check_strategy(text, name, spec.inputs[name])
            inputs[name] = spec.inputs[name]
            continue
        if parameter.default is not inspect.Parameter.empty and name != primary and not _decoder_ids(
            name, parameter, parameters, spec.inputs, primary
        ) and (declared_lengths is None or name != declared_lengths[0]):
            # an optional argument, left at its default (unless Spec(lengths=...) names it),
            # but a control forward branches on (if control > 0.5), which is drawn
            switch = optional_control(instance, name, parameter)
            if switch is not None:
                inputs[name], inferred_inputs[name] = switch.value, switch.why
                switches[name] = parameter.default
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        declared = tuple(
            t for predicate in spec.branches.values() for t in predicate_thresholds(predicate, name)
        )
        try:
            inferred: Inferred = infer_input(instance, name, parameter, declared, lengths=spec.lengths)
        except Uninferable as exc:
            if name == primary:  # optional after all: the model is called with its defaults
                continue
            if name == "attention_mask":  # the mask of the token ids, inferred below, if any
                unmasked = exc
                continue
            if _EPISODE_FLAG_NAME.match(name):
                # done flags no layer reads (h * (1 - done) on a state forward returns): one per
                # sample for now, their layout tried by calls below (_episode_flags)
                from dyncheck import strategies as dst

                inputs[name], inferred_inputs[name] = dst.tensors(shape=("batch",)), _UNREAD_FLAG
                refusals[name] = exc
                continue
            try:
                probed = _class_ids(instance, name, inputs, inferred_inputs, parameters, all_dims) or _multiplied_mask(
                    instance, name, inputs, inferred_inputs, parameters, all_dims
                ) or _listed_batches(instance, name, parameters, spec.inputs, exc) or _probe_features(
                    instance, name, parameters, spec.inputs, exc, tell=True
                )
            except Uninferable as refused:
                exc = refused
                probed = None
            if probed is None:
                uninferred.append((name, str(exc)))
                refusals[name] = exc
                continue
            inferred = probed
        inputs[name] = _own_length(name, inferred.value)
        inferred_inputs[name] = inferred.why
        if name == packed:
            inferred_inputs[name] = packed_note
        for dim, bounds in (inferred.dims or {}).items():
            all_dims.setdefault(dim, bounds)
    if len(uninferred) == 1 and uninferred[0][0] in refusals:
        # the one input left, its first consumers giving no shape, beside others inferred
        # (rtdl's FT-Transformer: continuous columns into raw per-feature weights, beside
        # categorical ids): probed at the sizes of those consumers' parameters, with them
        name = uninferred[0][0]
        beside = _features_beside(instance, name, parameters, inputs, inferred_inputs, all_dims, refusals[name])
        if beside is not None:
            inputs[name], inferred_inputs[name] = beside.value, beside.why
            uninferred = []
            # in forward's order, as the Spec to paste lists them
            inputs = {**{n: inputs[n] for n in parameters if n in inputs}, **inputs}
            inferred_inputs = {**{n: inferred_inputs[n] for n in parameters if n in inferred_inputs}, **inferred_inputs}
    if uninferred:
        said: dict[str, str] = {}
        labelled = _step_ids(instance, [n for n, _ in uninferred], inputs, inferred_inputs, parameters, all_dims, said)
        for name, found in (labelled or {}).items():
            inputs[name], inferred_inputs[name] = found.value, found.why
        uninferred = [(n, said.get(n, why)) for n, why in uninferred if n not in inputs]
    if uninferred:
        raise _fail(text, _beside_given(_refusals(uninferred), spec.inputs))
    _lengths_along(inputs, inferred_inputs)
    _confirm_indirect(instance, parameters, spec.inputs, inputs, inferred_inputs, all_dims)
    _probe_relative(instance, inputs, inferred_inputs, all_dims)
    # The mask before the probes, which call the model with it (all tokens).
    mask = infer_attention_mask(parameters, {k: v for k, v in inputs.items() if k in inferred_inputs}, spec.inputs)
    if mask is not None:
        inputs["attention_mask"] = mask.value
        inferred_inputs["attention_mask"] = mask.why
    elif unmasked is not None:
        raise _fail(text, _beside_given(str(unmasked), spec.inputs))
    elif spec.lengths is None and not any(_LENGTHS_NAME.search(n) for n in inputs):
        _add_padding_argument(instance, parameters, inputs, inferred_inputs, kept_defaults)
    if declared_lengths is not None and declared_lengths[1] is not None:
        argument, key = declared_lengths
        declared = argument in spec.inputs
        _, problem = _inside(inputs.get(argument), argument, key, declared=declared)
        if problem is not None:
            hint = f"; if it holds the lengths, write lengths={argument!r}" if " is not a " in problem else ""
            raise _fail(text, f"Spec(lengths={spec.lengths!r}) names {argument}[{key!r}], but {problem}{hint}")
    _check_padding_entries(text, spec, inputs)
    inferred_dims: dict[str, str] = {}
    if primary is not None and primary in inferred_inputs:
        _probe_companions(instance, parameters, primary, inputs, inferred_inputs, all_dims, set(spec.dims), inferred_dims)
    _probe_required_mask(instance, parameters, inputs, inferred_inputs, all_dims)
    _probe_rank(instance, inputs, inferred_inputs, all_dims)
    _probe_layout(instance, inputs, inferred_inputs, all_dims, causal=_causal_over_time(spec.causal))
    if _causal_over_time(spec.causal):
        _probe_causal_sequence(instance, inputs, inferred_inputs, all_dims)
    _confirm_drawn_sequence(instance, inputs, inferred_inputs, all_dims)
    _probe_vectors(instance, inputs, inferred_inputs, all_dims)
    _probe_split(instance, inputs, inferred_inputs, all_dims)
    probed = dict(inputs)
    if not _probe_sizes(instance, inputs, inferred_inputs, all_dims, set(spec.dims), inferred_dims) and (
        _probe_per_sample(instance, inputs, inferred_inputs, all_dims)
    ):
        # one value per sample now (a diffusion timestep): the sizes a U-Net takes are found
        # only with it
        _probe_sizes(instance, inputs, inferred_inputs, all_dims, set(spec.dims), inferred_dims)
    if (
        inputs != probed and mask is None and spec.lengths is None
        and not any(_LENGTHS_NAME.search(n) or _PADDING_MASK_NAME.search(n) or n == "mask" for n in inputs)
    ):
        # Raw samples whose channel axis forward adds itself ([batch, length] into a Conv1d),
        # only now shaped as the model takes them, beside an optional lengths=None.
        _add_padding_argument(instance, parameters, inputs, inferred_inputs, kept_defaults)
    unrun = _episode_flags(instance, inputs, inferred_inputs, all_dims)
    if unrun:
        # as they were refused: as flags, one per sample, per step and sample or one bool, they raised
        raise _fail(text, _beside_given(_refusals([(name, str(refusals[name])) for name in unrun]), spec.inputs))
    _probe_relative(instance, inputs, inferred_inputs, all_dims)
    _probe_longest(instance, inputs, inferred_inputs, all_dims)
    _probe_sorted(instance, inputs, inferred_inputs, all_dims)
    _probe_shortest_row(instance, inputs, inferred_inputs, all_dims)
    _probe_equal_lengths(instance, inputs, inferred_inputs, all_dims)
    for dim, found in infer_dims(instance, dict(spec.dims)).items():
        all_dims[dim] = found.value
        inferred_dims[dim] = found.why
    if "batch" not in spec.dims and "batch" not in inferred_dims:
        _probe_single_sample(instance, inputs, inferred_inputs, all_dims, inferred_dims)
    _check_switches(instance, inputs, inferred_inputs, all_dims, switches, kept_defaults)
    for module_name, predicate in spec.branches.items():
        _check_predicate(text, module_name, predicate, parameters)
    positional = tuple(
        name for name, p in parameters.items() if p.kind is p.POSITIONAL_ONLY
    )
    if getattr(type(instance).forward, "__wrapped__", None) is not None:
        # A decorated forward (tensordict's @dispatch) may read keywords as something else
        # (keys of the dict it builds): "got multiple values for argument 'tensordict'" on
        # every check. Called as users call it, positionally, as far as the inputs go.
        given = []
        for name, p in parameters.items():
            if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or name not in inputs:
                break
            given.append(name)
        positional = tuple(given)
    spec = spec.replace(inputs=inputs, dims=all_dims)
    return Target(
        text=text,
        spec=spec,
        inferred_init=inferred_init,
        inferred_inputs=inferred_inputs,
        inferred_dims=inferred_dims,
        kept_defaults={name: why for name, why in kept_defaults.items() if name not in inputs},
        positional=positional,
        model_class=type(instance),
    )


def _check_strategy(text: str, name: str, strategy: Any) -> None:
    """A strategy the spec gives that Hypothesis refuses (``st.floats(0.05, 0.5, width=32)``:
    0.05 is no float32) is a mistake in the spec, said in one line; drawn by the checks, it
    read as dyncheck's own error in every one of them."""
    import warnings

    from hypothesis.errors import HypothesisSideeffectWarning, InvalidArgument
    from hypothesis.strategies import SearchStrategy

    if not isinstance(strategy, SearchStrategy):
        return
    from hypothesis import configuration

    # Resolution may run while Hypothesis's pytest plugin initialises, or before it loads;
    # Hypothesis warns of a lazy strategy evaluated then (at once, or once the plugin
    # loads). Here it is on purpose: neither warning is the user's to act on.
    earlier = getattr(configuration, "_first_postinit_what", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HypothesisSideeffectWarning)
            strategy.validate()
    except InvalidArgument as exc:
        raise _fail(text, f"Spec(inputs={{{name!r}: ...}}) is not a strategy Hypothesis can draw: {one_line(exc)}") from None
    except Exception as exc:  # a deferred() or composite of the user's own that raises when built
        raise _fail(
            text, f"Spec(inputs={{{name!r}: ...}}) raised {type(exc).__name__} when Hypothesis built it: {one_line(exc)}"
        ) from None
    finally:
        if earlier is None and hasattr(configuration, "notice_initialization_restarted"):
            configuration.notice_initialization_restarted(warn=False)


def _check_padding_entries(text: str, spec: Spec, inputs: dict[str, Any]) -> None:
    """Each ``Spec(padding_value={...})`` key that names an entry of a dict of inputs
    (``"batch['frames']"``) or a member of a tuple of them (``"batch[0]"``) names one the
    input is drawn with."""
    if not isinstance(spec.padding_value, Mapping):
        return
    for key in spec.padding_value:
        argument, path = padding_slot(key)
        strategy = inputs.get(argument)
        for depth, entry in enumerate(path):
            where = argument + "".join(f"[{k!r}]" for k in path[:depth])
            strategy, problem = _inside(strategy, where, entry, declared=not depth and argument in spec.inputs)
            if problem is not None:
                raise _fail(text, f"Spec(padding_value={{{key!r}: ...}}) names {where}[{entry!r}], but {problem}")


def _inside(strategy: Any, where: str, key: str | int, *, declared: bool) -> tuple[Any, str | None]:
    """The strategy of ``where[key]`` (an entry of a dict of inputs drawn by
    ``fixed_dictionaries``, or, for an int key, a member of a tuple drawn by ``tuples``),
    and None; or None and why there is none, worded to follow "names where[key], but"."""
    from dyncheck.examples import strategy_child, strategy_entries, strategy_members

    child = strategy_child(strategy, key)
    if child is not None:
        return child, None
    entries = strategy_entries(strategy)
    if isinstance(key, int) and not entries:
        members = strategy_members(strategy)
        if members:
            listed = ", ".join(f"{where}[{index}]" for index in range(len(members)))
            return None, f"the tuple of inputs {where} has {len(members)} members ({listed})"
        if getattr(getattr(strategy, "function", None), "__name__", None) == "tuples":
            return None, (
                f"{where} is drawn by hypothesis.strategies.tuples(...) and then mapped, which may change "
                "its members: draw the tuple without .map(...)"
            )
        return None, (
            f"Spec(inputs={{{where!r}: ...}}) is not drawn by hypothesis.strategies.tuples, whose members "
            "dyncheck reads: draw the tuple with it" if declared else
            f"{where} is not a tuple of inputs drawn by hypothesis.strategies.tuples"
        )
    keys = list(entries)
    if keys:
        close = _close(key, [k for k in keys if isinstance(k, str)]) if isinstance(key, str) else ""
        return None, f"the dict of inputs {where} holds {', '.join(map(repr, keys))}{close}"
    return None, (
        f"Spec(inputs={{{where!r}: ...}}) is not drawn by hypothesis.strategies.fixed_dictionaries, "
        "whose entries dyncheck reads: draw the dict with it" if declared else
        f"{where} is not a dict of inputs drawn by hypothesis.strategies.fixed_dictionaries"
    )


def _add_padding_argument(
    instance: nn.Module, parameters: dict[str, inspect.Parameter], inputs: dict[str, Any], inferred: dict[str, str],
    kept: dict[str, str],
) -> None:
    """:func:`_padding_argument`'s finds, added to ``inputs`` (and why, to ``inferred``; why
    a candidate stays at its default, to ``kept``)."""
    for name, found in _padding_argument(instance, parameters, inputs, inferred, kept).items():
        inputs[name] = found.value
        inferred[name] = found.why


def _padding_argument(
    instance: nn.Module, parameters: dict[str, inspect.Parameter], inputs: dict[str, Any], inferred: dict[str, str],
    kept: dict[str, str],
) -> dict[str, Inferred]:
    """An optional padding argument beside a batch-first padded sequence (token ids
    ``[batch, time]``, or features ``[batch, time, ...]``): ``forward(x, lens=None)``
    (x-transformers' ``ContinuousTransformerWrapper``), drawn as lengths, or
    ``forward(x, mask=None)`` (its ``TransformerWrapper``), drawn as a padding mask, True
    for tokens, or ``forward(x, src_key_padding_mask=None)`` (a model on
    ``nn.TransformerEncoder``), drawn as a key padding mask, True at padding: each when a
    call with every step valid (lengths of the full padded length, a mask of all True, a
    key padding mask of all False) gives what a call without it gives, tried in that order.
    A ``mask`` of another kind (``nn.Transformer``'s ``[time, time]`` attention mask, True
    where attention is forbidden) raises or differs there, and stays at its default; so
    does an argument named like lengths that means something else, and so do several key
    padding masks (``nn.Transformer``'s source, target and memory masks).

    When the one input was inferred as float vectors ``[batch, features]`` (its first
    consumer, a ``Linear``, takes any rank), it is tried as ``[batch, time, features]``
    too: a padding argument that passes the test there makes it a sequence. Answers what
    to draw: the padding argument and, so, the input it pads; nothing when no test passes.
    ``kept`` gets why each candidate the test turned down stays at its default."""
    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    def kind(name: str) -> str | None:
        return (
            "lengths" if _LENGTHS_NAME.search(name) else "mask" if name == "mask"
            else "padding" if _PADDING_MASK_NAME.search(name) else None
        )

    candidates = [
        name for name, p in parameters.items() if name not in inputs and p.default is None and kind(name)
    ]
    if sum(kind(name) == "padding" for name in candidates) > 1:
        # nn.Transformer's src_, tgt_ and memory_key_padding_mask: which goes with which
        # sequence (and that the memory's must repeat the source's) is not for a probe to guess.
        candidates = [name for name in candidates if kind(name) != "padding"]
    if not candidates:
        return {}
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return {}
    upgraded: dict[str, tuple[tuple, Any]] = {}
    if len(shapes) == 1:
        (only, (shape, dtype)), = shapes.items()
        if len(shape) == 2 and shape[0] == "batch" and isinstance(shape[1], int) and not isinstance(dtype, tuple):
            shapes = upgraded = {only: (("batch", "time", shape[1]), dtype)}
    sequences = [
        (name, shape) for name, (shape, dtype) in shapes.items()
        if len(shape) >= 2 and shape[0] == "batch" and isinstance(shape[1], str) and shape[1] != "batch" and (
            (len(shape) == 2 and isinstance(dtype, tuple) and not isinstance(dtype[0], str))
            # raw samples a Conv1d reads along its "length" ([batch, length]: torchaudio's wav2vec2)
            or (len(shape) == 2 and not isinstance(dtype, tuple) and shape[1] != "features")
            or (len(shape) >= 3 and not isinstance(dtype, tuple))
        )
    ]
    if not sequences:
        return {}
    sequence, time = sequences[0][0], sequences[0][1][1]
    model = clone(instance).eval()
    # The padded length: 5 steps, or more for convolutions over raw samples that need more.
    for padded in _PADDED_PROBED:

        def size_of(dim: Any, padded: int = padded) -> int:
            return dim if isinstance(dim, int) else 3 if dim == "batch" else padded if dim == time else 2

        args = {n: _probe_tensor([size_of(d) for d in shape], dtype, size_of) for n, (shape, dtype) in shapes.items()}
        plain = _outputs_of(model, args)
        if plain is not None:
            break
    else:
        for name in candidates:  # said, not dropped in silence: padding_invariance's skip names it
            kept[name] = (
                f"not probed as {kind(name)}: the model raised without it at every padded length tried "
                f"({', '.join(map(str, _PADDED_PROBED))} steps)"
            )
        return {}
    # kind -> (every step valid, in words and as a value; the strategy; what it is)
    table = {
        "lengths": ("lengths of the full padded length", torch.full((3,), padded, dtype=torch.long),
                    dst.sequence_lengths(batch_size="batch", max_length=time),
                    f"the lengths of {sequence}: one per sample, each between 1 and the padded length {time!r}"),
        "mask": ("a mask of all True", torch.ones(3, padded, dtype=torch.bool),
                 dst.attention_masks(batch_size="batch", max_length=time, dtype=torch.bool),
                 f"the padding mask of {sequence}: True for tokens, False for padding on the right"),
        "padding": ("a mask of all False", torch.zeros(3, padded, dtype=torch.bool),
                    dst.attention_masks(batch_size="batch", max_length=time, dtype=torch.bool, marks="padding"),
                    f"the key padding mask of {sequence} (PyTorch's convention): True at padding on the right, "
                    "False at tokens"),
    }
    # kind -> the same with every step but the first padding in every row: an argument
    # forward takes and ignores (Time-Series-Library forecasters' mask=None) gives the plain
    # output here too (a single step of padding may not reach a strided output's frames)
    padded_last = {
        "lengths": torch.ones(3, dtype=torch.long),
        "mask": torch.zeros(3, padded, dtype=torch.bool).index_fill_(1, torch.tensor([0]), True),
        "padding": torch.ones(3, padded, dtype=torch.bool).index_fill_(1, torch.tensor([0]), False),
    }
    for name in sorted(candidates, key=lambda n: list(table).index(kind(n))):
        every, value, strategy, what = table[kind(name)]
        # SpeechBrain's forward(x, lengths=None): None is every step, and so is 1.0 (see
        # _probe_relative); lengths of 1.0 that give the plain output are asked the rest
        fractions = (
            _reads_fractions(model, args, name, padded, 3)
            if kind(name) == "lengths" and _same_floats(_outputs_of(model, {**args, name: torch.ones(3)}), plain)
            else None
        )
        if fractions is not None:
            return {name: Inferred(
                dst.sequence_lengths(batch_size="batch", max_length=time, relative=True, pad_to_longest=True),
                f"{what}, {RELATIVE_NOTE} (forward takes {name}=None, and a call with lengths of 1.0 gave the output "
                f"of a call without one; {fractions})",
            )}
        given = _outputs_of(model, {**args, name: value})
        if padded > 1 and given is not None:
            some = _outputs_of(model, {**args, name: padded_last[kind(name)]})
            if some is not None and _agree_on_kept(plain, some, padded, padded):
                kept[name] = f"marking steps of {sequence} as padding with it changed nothing: forward ignores it"
                continue  # ignored: padding marked there changes nothing
        if given is None or not _agree_on_kept(plain, given, padded, padded):
            outcome = "raised" if given is None else "gave other outputs than a call without one"
            meant = "its lengths" if kind(name) == "lengths" else "a padding mask"
            kept[name] = f"a call with {every} {outcome} ({sequence} of {padded} steps), so it was not read as {meant}"
        else:
            why = f"forward takes {name}=None, and a call with {every} gave the output of a call without one"
            found = {name: Inferred(strategy, f"{what} ({why})")}
            for vectors, (shape, _) in upgraded.items():
                found[vectors] = Inferred(
                    dst.tensors(**{**strategy_arguments(inputs[vectors]), "shape": shape}),
                    f"{inferred[vectors]}; drawn as sequences [batch, time, {shape[-1]}], not vectors: forward "
                    f"takes {name}=None, and on sequences a call with {every} gave the output of a call without one",
                )
            return found
    return {}


#: A required argument that may hold which elements of a set or sequence are real (a
#: DeepSets or attention-pooling model's ``mask``, ``node_mask``): not a mask between
#: positions (``attn_mask``, ``src_mask``, ``causal_mask``).
_REQUIRED_MASK_NAME = re.compile(r"^(?!.*(attn|attention|causal|src_mask|tgt_mask|memory_mask))(\w+_)?mask$")


def _probe_required_mask(
    instance: nn.Module, parameters: dict[str, inspect.Parameter], inputs: dict[str, Any], inferred: dict[str, str],
    dims: dict[str, Any],
) -> None:
    """A required ``mask`` that forward multiplies into what a layer made of the other
    inputs (DeepSets: ``h = self.phi(x) * mask.unsqueeze(-1)``, then a masked mean over
    the set) was inferred as features of the layer after that; the others as vectors, from
    their first layer. When a call on those raises, the others are tried as sequences
    ``[batch, time, F]`` (token ids stay ``[batch, time]``) and the mask as a padding mask
    over their steps: True at real elements, then True at padding, each as bool and as
    float. The first under which a call on three steps padded to five (the mask marking
    the padding) gives the call on the three steps alone is drawn as that padding mask.
    When none does but the bool mask runs, the mask means something else (a masked-token
    model's positions to hide) or the model reads its padding, which no call tells apart:
    it is drawn as any pattern of booleans, and padding_invariance does not run through
    it. The note says why. Inputs all inferred."""
    import torch

    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return
    masks = [
        name for name, (_, dtype) in shapes.items()
        if _REQUIRED_MASK_NAME.match(name) and parameters[name].default is inspect.Parameter.empty
        and not isinstance(dtype, tuple)
    ]
    if len(masks) != 1:
        return
    mask = masks[0]
    sequences: dict[str, tuple[tuple, Any]] = {}
    for name, (shape, dtype) in shapes.items():
        if name == mask:
            continue
        if isinstance(dtype, tuple):
            if isinstance(dtype[0], str) or tuple(shape) != ("batch", "time"):
                return  # lengths or a mask already, or ids of another layout
            sequences[name] = (tuple(shape), dtype)
        elif len(shape) == 2 and shape[0] == "batch" and isinstance(shape[1], int):
            sequences[name] = (("batch", "time", shape[1]), dtype)
        elif len(shape) == 3 and tuple(shape[:2]) == ("batch", "time"):
            sequences[name] = (tuple(shape), dtype)
        else:
            return
    if not sequences or _call_at_smallest(instance, inputs, inferred, dims) is None:
        return
    def size_of(dim: Any) -> int:
        return dim if isinstance(dim, int) else 3 if dim == "batch" else _PADDED

    with seeded(BUILD_SEED):
        full = {n: _probe_tensor([size_of(d) for d in shape], dtype, size_of) for n, (shape, dtype) in sequences.items()}
    model = clone(instance).eval()
    ran: list[tuple[str, torch.dtype]] = []
    for dtype in (torch.bool, torch.float32):
        for marks in ("tokens", "padding"):
            agrees = _padded_as_alone(model, full, mask, marks, dtype)
            if agrees is None:
                continue
            ran.append((marks, dtype))
            if agrees:
                return _adopt_mask(inputs, inferred, mask, sequences, marks, dtype)
    if any(dtype is torch.bool for _, dtype in ran):
        # It runs as a mask over the steps, but under neither polarity is padding ignored:
        # a mask with another meaning (a masked-token model's positions to hide), or a
        # padding mask the model reads wrong, which no call can tell apart. Any pattern is
        # drawn, and padding_invariance does not run through it.
        _adopt_mask(inputs, inferred, mask, sequences, None, torch.bool)


#: A padding mask's probe: a call on this many steps padded to that many, the mask marking
#: the padding, against the call on the steps alone.
_KEPT, _PADDED = 3, 5


def _padded_as_alone(
    model: nn.Module, full: dict[str, Any], mask: str, marks: str, dtype: Any, others: dict[str, Any] | None = None
) -> bool | None:
    """Whether ``model`` (resolution's copy, in eval mode) called on the sequences ``full``
    (``[batch, _PADDED, ...]``; ``others`` as they are) with ``mask`` marking all but their
    first ``_KEPT`` steps as padding (True at tokens for ``marks="tokens"``, at padding for
    ``"padding"``; in ``dtype``) gives the outputs of the call on those steps alone: True or
    False; None when either call raised."""
    import torch

    real = marks == "tokens"
    batch = len(next(iter(full.values())))
    beyond = torch.full((batch, _PADDED), not real)
    beyond[:, :_KEPT] = real
    alone = {n: value[:, :_KEPT] for n, value in full.items()}
    trimmed = _outputs_of(model, {**(others or {}), **alone, mask: torch.full((batch, _KEPT), real).to(dtype)})
    whole = _outputs_of(model, {**(others or {}), **full, mask: beyond.to(dtype)})
    if trimmed is None or whole is None:
        return None
    return _agree_on_kept(trimmed, whole, _KEPT, _PADDED)


def _required(parameters: dict[str, inspect.Parameter]) -> list[str]:
    """The names of the forward arguments a call must give (no default, not ``*args`` or
    ``**kwargs``)."""
    return [
        n for n, p in parameters.items()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _outputs_of(model: nn.Module, args: dict[str, Any]) -> list[Any] | None:
    """The output leaves of ``model`` (resolution's own copy, in eval mode) called on
    ``args`` under the build seed without autograd; None when it raised."""
    import torch

    from dyncheck.tracing import leaves

    try:
        with seeded(BUILD_SEED), torch.no_grad():
            return [value for _, value in leaves(model(**args))]
    except Exception:
        return None


def _first_output(model: nn.Module, args: dict[str, Any]) -> Any:
    """The first tensor of ``model``'s output on ``args`` (see :func:`_outputs_of`); None
    when it raised or gave no tensor."""
    import torch

    found = _outputs_of(model, args)
    return next((value for value in found if isinstance(value, torch.Tensor)), None) if found is not None else None


def _agree_on_kept(trimmed: list[Any], whole: list[Any], kept: int, padded: int) -> bool:
    """Whether each floating output of a call on ``kept`` steps equals the one on the same
    steps padded to ``padded`` (an output with a step axis compared on the kept steps; with
    ``kept == padded``, two calls on the same steps, compared whole)."""
    import torch

    pairs = [(a, b) for a, b in zip(trimmed, whole) if isinstance(a, torch.Tensor) and a.is_floating_point()]
    if len(trimmed) != len(whole) or not pairs:
        return False
    for a, b in pairs:
        if not isinstance(b, torch.Tensor) or a.dim() != b.dim():
            return False
        moved = [axis for axis in range(a.dim()) if a.shape[axis] != b.shape[axis]]
        if moved and (len(moved) > 1 or (a.shape[moved[0]], b.shape[moved[0]]) != (kept, padded)):
            return False
        if moved:
            b = b.narrow(moved[0], 0, kept)
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True):
            return False
    return True


#: What the note of a mask whose padding polarity no probe could read says (padding_invariance's
#: skip gives that note).
UNREAD_POLARITY = "under neither polarity did 3 steps padded to 5 give the output of the 3 alone"


def _adopt_mask(
    inputs: dict[str, Any], inferred: dict[str, str], mask: str, sequences: dict[str, tuple[tuple, Any]],
    marks: str | None, dtype: Any,
) -> None:
    """Draw ``mask`` over the steps of ``sequences`` (see :func:`_probe_required_mask`), as
    their padding mask (``marks``), or, with ``marks=None``, as any pattern of booleans;
    and those as sequences, saying why."""
    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    names = ", ".join(sequences)
    kind = str(dtype).removeprefix("torch.")
    if marks is None:
        inputs[mask] = dst.tensors(shape=("batch", "time"), dtype=torch.bool)
        # the Spec to paste names the sequences' shapes too: given the mask alone, they are
        # inferred without it, as vectors
        shapes = ", ".join(f"{name!r}: dyncheck.strategies.tensors(shape={shape!r})" for name, (shape, _) in sequences.items())
        inferred[mask] = (
            f"a required mask over the steps of {names} ({kind}, any pattern): read as features the model raised, "
            f"over the steps of {names} it ran, but {UNREAD_POLARITY} (the padding changes the output either way: a mask that does not hide it everywhere, or not "
            f"a padding mask), so it is not taken for padding and padding_invariance does not run through it; if it "
            f"marks padding, give Spec(inputs={{{shapes}, {mask!r}: dyncheck.strategies.attention_masks(dtype=torch.bool)}}) "
            f"(True at real elements; marks='padding' if True marks padding)"
        )
    else:
        inputs[mask] = dst.attention_masks(batch_size="batch", max_length="time", dtype=dtype, marks=marks)
        where = "True at real elements" if marks == "tokens" else "True at padding"
        inferred[mask] = (
            f"a required mask: the padding mask of {names} ({kind}, {where}, padding on the right); read as "
            f"features the model raised, over the steps of {names} it ran, and 3 steps padded to 5 gave the output "
            "of the 3 alone"
        )
    for name, (shape, _) in sequences.items():
        if tuple(strategy_arguments(inputs[name]).get("shape", ())) != shape:
            inputs[name] = _reshaped(inputs[name], shape)
            inferred[name] += f"; a sequence [batch, time, {shape[-1]}], the steps {mask} marks"


#: The padded lengths :func:`_padding_argument` calls a model at, until one runs.
#: Shorter ones last, for a model built for a longest length (a table of 4 learned positions).
_PADDED_PROBED = (5, 16, 64, 256, 4, 3)


#: Optional arguments read as a key padding mask, True at padding (``nn.TransformerEncoder``'s
#: ``src_key_padding_mask``, ``nn.MultiheadAttention``'s ``key_padding_mask``, fairseq's
#: ``encoder_padding_mask``).
_PADDING_MASK_NAME = re.compile(r"(^|_)padding_mask$")


#: How many of the consumers' parameter sizes :func:`_probe_features` tries, first seen first.
_FEATURES_PROBED = 6


#: A forward argument named as a mask (input_mask, mask, obs_mask).
_MASK_NAME = re.compile(r"(^|_)mask($|_)")


#: Names of an argument that holds one class index per sample (what a loss inside forward takes).
_CLASS_IDS_NAME = re.compile(r"^(y|y_true|targets?|labels?|class_ids?|classes|target_ids)$")

#: The most class counts :func:`_class_ids` tries.
_CLASSES_PROBED = 8


def _class_ids(
    instance: nn.Module, name: str, inputs: dict[str, Any], inferred: dict[str, str],
    parameters: dict[str, inspect.Parameter], dims: dict[str, Any],
) -> Inferred | None:
    """Class indices for an argument named like targets or labels that no layer takes (a
    loss computed in forward: ``F.cross_entropy(logits, labels)``, a label-smoothed target
    scattered into a tensor like the logits): one per sample, below the number of classes,
    found by calling the model beside the inputs inferred before it with the last index of
    each size the model's parameters have (from the smallest): the first that runs where
    that size itself raises. None for any other argument, or when no size does so."""
    import torch

    from dyncheck import strategies as dst

    if not _CLASS_IDS_NAME.search(name) or set(_required(parameters)) - {*inputs, name}:
        return None
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if not shapes or not any(shape[:1] == ("batch",) for shape, _ in shapes.values()):
        return None
    args = _padded_probe(shapes, None, 0, dims)
    batch = next(len(value) for n, value in args.items() if shapes[n][0][:1] == ("batch",))
    sizes = sorted(set(_parameter_sizes([instance])))[:_CLASSES_PROBED]

    def runs(top: int) -> bool:
        ids = torch.zeros(batch, dtype=torch.long)
        ids[0] = top
        return _probe_call(instance, {**args, name: ids}) is None

    for count in sizes:
        if runs(count - 1) and not runs(count):
            return Inferred(
                dst.tensors(shape=("batch",), dtype=torch.long, min_value=0, max_value=count - 1),
                f"named like class targets, and no layer takes it: one per sample, 0 to {count - 1} (called beside "
                f"the other inputs with {count - 1} it ran, with {count} it raised)",
            )
    return None


#: Names of an argument that holds one index per step and sample (a tagger's tags).
_STEP_IDS_NAME = re.compile(r"^(y|tags?|labels?|targets?|tag_ids|label_ids|target_ids)$")


def _step_ids(
    instance: nn.Module, names: list[str], inputs: dict[str, Any], inferred: dict[str, str],
    parameters: dict[str, inspect.Parameter], dims: dict[str, Any], refused: dict[str, str],
) -> dict[str, Inferred] | None:
    """Tag ids beside a sequence, and the mask of its tokens, that no layer takes: a
    BiLSTM-CRF's ``forward(tokens, tags, mask)``, which hands both to a CRF that indexes its
    own transition scores by the tags (pytorch-crf's ``CRF``, a loss computed in forward).
    ``names`` are the arguments inference left: one named like tags or labels and, beside
    it, at most one named like a mask (one the Spec gives is called with as all tokens).
    The ids are drawn laid out as the sequence inferred before them, ``[batch, time]``, one
    per step and sample, below the number of tags, found as :func:`_class_ids` finds a
    number of classes (called with every id at the last index of each size the model's
    parameters have, from the smallest: the first that runs where that size itself raises).
    The mask is read as :func:`_probe_required_mask` reads one: a padding mask of the
    polarity under which three steps padded to five (ids and sequence alike, the mask
    marking the padding) give the output of the three alone; under neither, any pattern of
    booleans where the model runs on one, not taken for padding; else it is left to the
    Spec, and ``refused`` says why. None for other arguments, or when no call runs."""
    import torch

    from dyncheck import strategies as dst

    ids = [n for n in names if _STEP_IDS_NAME.search(n)]
    masks = [n for n in names if _MASK_NAME.search(n)]
    if len(ids) != 1 or len(masks) > 1 or set(names) - {*ids, *masks}:
        return None
    if set(_required(parameters)) - {*inputs, *names}:
        return None
    shapes = _inferred_tensors(inputs, inferred, tokens=True, given=True)
    if not shapes or not any(shape[:2] == ("batch", "time") for shape, _ in shapes.values()):
        return None
    steps = 3
    args = _padded_probe(shapes, "time", steps, dims)
    batch = next(len(value) for n, value in args.items() if shapes[n][0][:2] == ("batch", "time"))

    def runs(top: int, mask: torch.Tensor | None = None) -> bool:
        given = {masks[0]: torch.ones(batch, steps, dtype=torch.bool) if mask is None else mask} if masks else {}
        return _probe_call(instance, {**args, **given, ids[0]: torch.full((batch, steps), top)}) is None

    count = next(
        (c for c in sorted(set(_parameter_sizes([instance])))[:_CLASSES_PROBED] if runs(c - 1) and not runs(c)),
        None,
    )
    if count is None:
        return None
    found = {
        ids[0]: Inferred(
            dst.tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=count - 1),
            f"named like tags beside a sequence, and no layer takes it: one per step and sample, laid out as the "
            f"sequence, 0 to {count - 1} (called with {count - 1} it ran, with {count} it raised)",
        )
    }
    if masks:
        mask = masks[0]
        sequences = ", ".join(n for n, (shape, _) in shapes.items() if shape[:2] == ("batch", "time"))
        marks = _padding_marks(instance, shapes, ids[0], count, mask)
        if marks is not None:
            where = "True at tokens" if marks == "tokens" else "True at padding"
            found[mask] = Inferred(
                dst.attention_masks(dtype=torch.bool, **({"marks": "padding"} if marks == "padding" else {})),
                f"the padding mask of {sequences} and {ids[0]}, no layer takes it: {where}, padding on the right "
                f"(3 steps padded to 5, the mask marking the padding, gave the output of the 3 alone)",
            )
        else:
            pattern = torch.ones(batch, steps, dtype=torch.bool)
            pattern[0, 0] = pattern[-1, 1] = False
            if not runs(count - 1, pattern):
                refused[mask] = (
                    f"cannot infer forward argument {mask!r} of {type(instance).__qualname__} (a mask over the steps of "
                    f"{sequences} and {ids[0]}, no layer takes it: {UNREAD_POLARITY}, the padding changes the output "
                    "either way (a padding mask the model does not hide everywhere, or not a padding mask), and the model "
                    f"raised on a mask of other patterns); write dyncheck.Spec({type(instance).__qualname__}, inputs="
                    f"{{{mask!r}: dyncheck.strategies.attention_masks(dtype=torch.bool)}}) if it marks padding, True at "
                    "tokens (marks='padding' if True marks padding)"
                )
                return found
            found[mask] = Inferred(
                dst.tensors(shape=("batch", "time"), dtype=torch.bool),
                f"a required mask over the steps of {sequences} and {ids[0]} (bool, any pattern): {UNREAD_POLARITY} "
                "(the padding changes the output either way: a mask that does not hide it everywhere, or not a padding "
                f"mask), so it is not taken for padding and padding_invariance does not run through it; if it marks "
                f"padding, give Spec(inputs={{{mask!r}: dyncheck.strategies.attention_masks(dtype=torch.bool)}}) (True "
                "at tokens; marks='padding' if True marks padding)",
            )
    trial = {**inputs, **{n: f.value for n, f in found.items()}}
    notes = {**inferred, **{n: f.why for n, f in found.items()}}
    return found if _runs_with(instance, trial, notes, parameters, dims) else None


def _padding_marks(
    instance: nn.Module, shapes: dict[str, tuple[tuple, Any]], ids: str, count: int, mask: str
) -> str | None:
    """``"tokens"`` or ``"padding"``: the polarity of ``mask`` under which a call on three
    steps padded to five (the sequences in ``shapes`` and the tag ids ``ids``, below
    ``count``, alike; the mask marking the padding) gives the call on the three alone
    (:func:`_padded_as_alone`), True at tokens tried first; None when neither does (or
    another input is not a sequence)."""
    import torch

    if any(shape[:2] != ("batch", "time") and not isinstance(dtype, tuple) for shape, dtype in shapes.values()):
        return None

    def size_of(dim: Any) -> int:
        return dim if isinstance(dim, int) else 3 if dim == "batch" else _PADDED

    with seeded(BUILD_SEED):
        full = {
            n: _probe_tensor([size_of(d) for d in shape], dtype, size_of)
            for n, (shape, dtype) in shapes.items() if shape[:2] == ("batch", "time")
        }
        full[ids] = torch.randint(0, count, (3, _PADDED))
    others = {
        n: _probe_tensor([size_of(d) for d in shape], dtype, size_of)
        for n, (shape, dtype) in shapes.items() if n not in full
    }
    model = clone(instance).eval()
    return next((m for m in ("tokens", "padding") if _padded_as_alone(model, full, mask, m, torch.bool, others)), None)


def _state_shares(modules: Sequence[nn.Module]) -> list[int]:
    """For each Linear in ``modules`` that may take a step concatenated with a recurrent
    state of its own output's width (``Linear(input + hidden, hidden)``, or ``k * hidden``
    outputs for a cell's ``k`` gates), the width left for the step: ``in - out / k`` for k
    of 1 to 4, above 1, first seen first."""
    from torch.nn.parameter import is_lazy

    return list(dict.fromkeys(
        layer.in_features - layer.out_features // gates
        for module in modules for layer in module.modules()
        if isinstance(layer, nn.Linear) and not is_lazy(layer.weight)
        for gates in (1, 2, 3, 4)
        if layer.out_features % gates == 0 and layer.in_features - layer.out_features // gates > 1
    ))


def _parameter_sizes(modules: Sequence[nn.Module], *, recurse: bool = True) -> list[int]:
    """The sizes above 1 the parameters of ``modules`` have, first seen first: the widths a
    probe tries. A lazy layer's parameters have no shape yet (it takes any size, which an
    error asks for)."""
    from torch.nn.parameter import is_lazy

    return list(dict.fromkeys(
        size for module in modules for parameter in module.parameters(recurse=recurse)
        if not is_lazy(parameter) for size in parameter.shape if size > 1
    ))


def _confirm_indirect(
    instance: nn.Module, parameters: dict[str, inspect.Parameter], given: Any, inputs: dict[str, Any],
    inferred: dict[str, str], dims: dict[str, Any],
) -> None:
    """An input read from a layer that takes what another layer made of it (see
    ``INDIRECT_NOTE``), or given an even share of a layer's features it takes concatenated
    with another (``SHARE_NOTE``), is kept where the model runs on it; where it raises
    (``z, _ = self.rec(x); self.fc(z)``: ``fc``'s width is not ``x``'s; a cell's
    ``cat([input, hx], 1)`` whose ``hx`` is the state it carries, not the argument of that
    name), the sizes of the model's parameters are probed instead (:func:`_probe_features`).
    ``inputs`` and ``inferred`` are updated in place."""
    from dyncheck.infer.forward import INDIRECT_NOTE, SHARE_NOTE

    for name, why in list(inferred.items()):
        if INDIRECT_NOTE not in why and SHARE_NOTE not in why:
            continue
        error = _call_at_smallest(instance, inputs, inferred, dims)
        if error is None or error is _UNPROBED:
            continue
        probed = _probe_features(instance, name, parameters, given, Uninferable(why))
        if probed is not None:
            inputs[name] = probed.value
            inferred[name] = probed.why


def _multiplied_mask(
    instance: nn.Module, name: str, inputs: dict[str, Any], inferred: dict[str, str],
    parameters: dict[str, inspect.Parameter], dims: dict[str, Any],
) -> Inferred | None:
    """A mask no layer consumes that forward multiplies into values computed from an input
    inferred before it (N-BEATS' ``residuals = (residuals - backcast) * input_mask``, the
    residuals a flip of ``x``): drawn with that input's shape, floats from 0 to 1, when a
    call with it runs (the value it multiplies may have another shape: a layer's output).
    None for any other argument, or when the call raises."""
    import ast

    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind
    from dyncheck.infer.flow import _flow
    from dyncheck.infer.source import _forward_tree

    tree = _forward_tree(type(instance)) if _MASK_NAME.search(name) else None
    if tree is None:
        return None
    products = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
        and any(isinstance(side, ast.Name) and side.id == name for side in (node.left, node.right))
    ]
    for other, strategy in inputs.items():
        arguments = strategy_arguments(strategy)
        if other not in inferred or strategy_kind(strategy) != "tensors" or not isinstance(arguments.get("shape"), tuple):
            continue
        if not arguments.get("dtype", torch.float32).is_floating_point:
            continue
        derived = _flow(tree, other, instance).tainted | {other}
        for node in products:
            side = node.right if isinstance(node.left, ast.Name) and node.left.id == name else node.left
            if any(isinstance(n, ast.Name) and n.id in derived for n in ast.walk(side)):
                found = Inferred(
                    dst.tensors(shape=arguments["shape"], min_value=0.0, max_value=1.0),
                    f"a mask no layer consumes, multiplied into values computed from {other} "
                    f"({ast.unparse(node)}): {other}'s shape, drawn from 0 to 1",
                )
                trial = {**inputs, name: found.value}
                return found if _runs_with(instance, trial, {**inferred, name: found.why}, parameters, dims) else None
    return None


def _runs_with(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], parameters: dict[str, inspect.Parameter],
    dims: dict[str, Any],
) -> bool:
    """Whether the model runs on ``inputs`` at their smallest sizes (:func:`_call_at_smallest`),
    when every argument it requires is among them, all inferred tensors; True when not (a
    required argument still to infer, a control value: nothing to call it with here)."""
    if not all(n in inputs for n in _required(parameters)):
        return True
    return _call_at_smallest(instance, inputs, inferred, dims) in (None, _UNPROBED)


def _probe_features(
    instance: nn.Module, name: str, parameters: dict[str, inspect.Parameter], given: Any, exc: Uninferable,
    *, tell: bool = False,
) -> Inferred | None:
    """An input whose first consumers give no shape (a mixture of experts whose gate and
    experts are raw parameters used through ``einsum``): the model, when this is the one
    input it needs, is called on vectors and on sequences of each size the consumers'
    parameters have (first seen first); the first that runs is drawn, the note says how it
    was found. When no consumer is seen or none has parameters (x-transformers' ``Encoder``
    hands its input first to projections left as None, then to layers in a loop over a
    zip), the sizes are the model's own parameters'. Other required inputs may be control
    values, and one named like lengths, given with the sequences only (every step: whole
    steps, or 1.0 where those raise); None when there are others, or no size runs. With
    ``tell``, where every call raised, ``exc`` is raised again saying what they raised."""
    import torch

    from dyncheck import strategies as dst

    required = _required(parameters)
    if given or name not in required:
        return None
    # The others must be control values (a slimmable net's width_mult): called at the top
    # of their range (the full width), or their first choice.
    controls = {}
    lengths = None  # lengths beside it (a wrapper's forward(feats, wav_lens)): given with sequences
    for other in required:
        if other != name:
            if lengths is None and _LENGTHS_NAME.search(other):
                lengths = other
                continue
            value = _control_probe(instance, other, parameters[other])
            if value is _UNPROBED:
                return None
            controls[other] = value

    sizes = (_parameter_sizes(exc.consumers, recurse=False) or _parameter_sizes(exc.consumers))[:_FEATURES_PROBED]
    whose = "their parameters' sizes"
    if not sizes:
        sizes, whose = _parameter_sizes([instance])[:_FEATURES_PROBED], "the model's parameters' sizes"
    listed = f"{whose} {', '.join(map(str, sizes))}"
    shares = [size for size in _state_shares(exc.consumers or [instance]) if size not in sizes][:_FEATURES_PROBED]
    # a step concatenated with the state its cell carries (cat([input, hx], 1) into a Linear
    # of input + hidden features, or of 4 * hidden outputs for an LSTM's gates); named in
    # the note where they were tried
    sizes = [*sizes, *shares]
    shared = f"{listed}, and in what a Linear's inputs leave beside a state of its outputs' width {', '.join(map(str, shares))}"

    def tried(features: int | None = None) -> str:
        return shared if shares and (features is None or features in shares) else listed

    from dyncheck.infer.constructor import _annotation
    from dyncheck.infer.forward import _tensor_list

    if _tensor_list(_annotation(parameters[name].annotation, type(instance).forward)):
        # annotated as a list of tensors: a list of sequences of their own lengths, each
        # [length, F] (what pad_sequence and pack_sequence take, or a list of sets)
        for features in sizes:
            if _probe_call(instance, {name: [torch.randn(3, features), torch.randn(2, features)], **controls}) is None:
                return Inferred(
                    dst.sequence_lists(feature_shape=(features,)),
                    f"annotated as a list of tensors, whose layers give no shape: called on two sequences [3, F] "
                    f"and [2, F] for F in {tried(features)}, it first ran with F = {features}; "
                    "one sequence of its own length per sample",
                )
        for features in sizes:
            views = _per_view_batches(instance, name, features, controls, whose, sizes)
            if views is not None:
                return views
        return None
    called = "sequences [2, 3, F]" if lengths else "vectors [2, F] and sequences [2, 3, F]"
    beside = f" (with {', '.join(f'{k}={v!r}' for k, v in controls.items())})" if controls else ""
    beside += f" (beside {lengths} of every step)" if lengths else ""
    last: tuple[tuple[int, ...], Exception] | None = None
    first_sequences = None  # what sequences of the first size raised: the likeliest size
    for features in sizes:
        for shape, drawn in (((2, features), ("batch", features)), ((2, 3, features), ("batch", "time", features))):
            if lengths is None:
                error = _probe_call(instance, {name: torch.randn(shape), **controls})
            elif len(shape) == 2:
                continue  # lengths are of sequences
            else:
                # every step: 3 steps, or 1.0 of them (relative lengths, SpeechBrain's, which it multiplies by 3)
                values = torch.randn(shape)
                error = _probe_call(instance, {name: values, lengths: torch.full((2,), 3), **controls})
                if error is not None and _probe_call(instance, {name: values, lengths: torch.ones(2), **controls}) is None:
                    error = None
            if error is not None:
                last = (shape, error)
                if shape == (2, 3, sizes[0]):
                    first_sequences = last
                continue
            consumers = ", ".join(type(m).__name__ for m in exc.consumers[:3])
            seen = f"its first consumers ({consumers}) give no input shape" if consumers else "no layer gives its shape"
            failed = f" (on {list(last[0])} it raised {type(last[1]).__name__}: {one_line(last[1])})" if last else ""
            layout = ""
            if len(drawn) == 3 and lengths is None:
                # [2, 3, F] runs either way round: the steps' axis as the model says it
                steps = sequence_axis(instance, name, last[1] if last else None)
                if steps is not None and steps[0] == 0:
                    drawn, layout = ("time", "batch", features), f"; time-major: {steps[1]}"
            return Inferred(
                dst.tensors(shape=drawn),
                f"{seen}: called on {called} for F in {tried(features)}{beside}, it first ran "
                f"on {list(shape)}{failed}{layout}",
            )
    if last is not None and tell and not exc.reshaped:
        # Say what the calls raised: the model's own crash (a routing policy's missing
        # unsqueeze) reads as a shape no layer gives otherwise. Not where a layer reshapes
        # the input first (an image cut into patches): vectors and sequences are not its shape.
        head, found, spec = str(exc).partition(f"); {_WRITE_SPEC}")
        shape, error = first_sequences or last
        if found:
            raise Uninferable(
                f"{head}; called on {called} for F in {tried()}{beside}, it raised on "
                f"each, on {list(shape)} {type(error).__name__}: {one_line(error)}{found}{spec}",
                consumers=exc.consumers,
            )
    return None


def _view_counts(instance: nn.Module, name: str, shape: Sequence[Any], controls: dict[str, Any]) -> list[int]:
    """How many batches of ``shape`` (``"batch"`` there 3 or 2, ``"time"`` 3, another name 6)
    the model takes as a list, one per view of the same samples: it is called on two batches
    of 3 and on three of 2, and a call counts where its output's first axis has a row per
    sample (``z[0] * z[1]``) or per sample in each view (``torch.cat`` of the views'
    outputs), not one per element of the list (a list of samples stacked into a batch)."""
    import torch

    counts = []
    for count, batch in ((2, 3), (3, 2)):
        sizes = [batch if d == "batch" else 3 if d == "time" else 6 if isinstance(d, str) else d for d in shape]
        views = [torch.randn(sizes) for _ in range(count)]
        first = _first_output(clone(instance), {name: views, **controls})  # None: the model's own refusal
        if first is not None and first.dim() and first.shape[0] in (batch, count * batch):
            counts.append(count)
    return counts


def _features_beside(
    instance: nn.Module, name: str, parameters: dict[str, inspect.Parameter], inputs: dict[str, Any],
    inferred: dict[str, str], dims: dict[str, Any], exc: Uninferable,
) -> Inferred | None:
    """:func:`_probe_features` for an input beside others already inferred: the model called
    on vectors ``[2, F]`` and sequences ``[2, 3, F]`` of ``name`` for F in its consumers'
    parameters' sizes, with the others at a batch of 2 (:func:`_own_samples`); the first
    under which each sample alone gives the outputs it gives in the pair is drawn (a size
    that runs only by broadcasting against the other inputs, a memory of vectors ``[2, F]``
    that every token attends to whole, is not). None unless every other input the model
    requires is inferred as a tensor, or when no size does."""
    import torch

    from dyncheck import strategies as dst

    if set(_required(parameters)) - {*inputs, name} or exc.reshaped or _STEP_IDS_NAME.search(name) or _MASK_NAME.search(name):
        return None  # tags or a mask beside a sequence: _step_ids's
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if not shapes:
        return None
    sizes = (_parameter_sizes(exc.consumers, recurse=False) or _parameter_sizes(exc.consumers))[:_FEATURES_PROBED]
    for features in sizes:
        for shape, drawn in (((2, features), ("batch", features)), ((2, 3, features), ("batch", "time", features))):
            if _own_samples(instance, {**shapes, name: (drawn, torch.float32)}, dims) is True:
                consumers = ", ".join(type(m).__name__ for m in exc.consumers[:3])
                return Inferred(
                    dst.tensors(shape=drawn),
                    f"its first consumers ({consumers}) give no input shape: called on vectors [2, F] and sequences "
                    f"[2, 3, F] for F in their parameters' sizes {', '.join(map(str, sizes))}, beside "
                    f"{', '.join(shapes)} as inferred, it first ran on {list(shape)} with each sample's outputs its own",
                )
    return None


def _per_view_batches(
    instance: nn.Module, name: str, features: int, controls: dict[str, Any], whose: str, sizes: list[int]
) -> Inferred | None:
    """A list of tensors that is no batch of sequences but several batches, one per view of
    the samples (a contrastive model's two augmentations, ``z[0] * z[1]``), when the model,
    which ran on no list of sequences, takes lists of batches of vectors (then sequences)
    with F features (see :func:`_view_counts`). None where it takes neither."""
    from hypothesis import strategies as st

    from dyncheck import strategies as dst

    for shape in (("batch", features), ("batch", "time", features)):
        counts = _view_counts(instance, name, shape, controls)
        if counts:
            drawn = "vectors" if len(shape) == 2 else "sequences"
            return Inferred(
                st.lists(dst.tensors(shape=shape), min_size=min(counts), max_size=max(counts)),
                f"annotated as a list of tensors, whose layers give no shape: on no list of sequences of their own "
                f"lengths did it run (F in {whose} {', '.join(map(str, sizes))}), on {' and '.join(map(str, counts))} "
                f"batches of {drawn} with F = {features} it gave a row per sample; a list of batches, one per view "
                "of the samples",
            )
    return None


def _listed_batches(
    instance: nn.Module, name: str, parameters: dict[str, inspect.Parameter], given: Any, exc: Uninferable
) -> Inferred | None:
    """An argument annotated as a list of tensors whose consumer takes a batch of no
    sequences (``exc.shape``: ``[batch, 6]``, images ``[batch, 3, height, width]``): a list
    of batches, one per view of the samples, where the model takes lists of them (see
    :func:`_view_counts`), when it is the one input forward needs. Inferred where the
    batches' other axes are sizes or time steps; with named axes of another kind (an
    image's height and width, whose range the model may limit), the refusal names the
    Spec to write. None where the model takes no list of such batches."""
    from hypothesis import strategies as st

    from dyncheck import strategies as dst

    shape = getattr(exc, "shape", None)
    if not shape or "batch" not in shape or given or _required(parameters) != [name]:
        return None
    counts = _view_counts(instance, name, shape, {})
    if not counts:
        return None
    strategy = st.lists(dst.tensors(shape=tuple(shape)), min_size=min(counts), max_size=max(counts))
    took = f"on {' and '.join(map(str, counts))} such batches it gave a row per sample (in each)"
    named = [d for d in shape if isinstance(d, str) and d not in ("batch", "time")]
    if named:
        qualname = type(instance).__qualname__
        ranges = ", ".join(f"{d!r}: (..., ...)" for d in named)
        raise Uninferable(
            f"cannot infer forward argument {name!r} of {qualname} (annotated as a list of tensors; its consumer takes "
            f"{list(shape)}, not sequences; {took}: a batch per element, one per view of the samples, whose "
            f"{' and '.join(named)} the model may limit); write dyncheck.Spec({qualname}, inputs={{{name!r}: "
            f"hypothesis.strategies.lists(dyncheck.strategies.tensors(shape={tuple(shape)!r}), min_size={min(counts)}, "
            f"max_size={max(counts)})}}, dims={{{ranges}}})"
        )
    return Inferred(
        strategy,
        f"annotated as a list of tensors, whose consumer takes {list(shape)}, not sequences; {took}: a list of "
        "batches, one per view of the samples",
    )


def _control_probe(instance: nn.Module, name: str, parameter: inspect.Parameter) -> Any:
    """A value to call the model with for ``name`` when it is inferred as a control value
    (the top of its range, or its first choice); ``_UNPROBED`` when it is not one."""
    from dyncheck.examples import strategy_arguments, strategy_kind

    try:
        found = infer_input(instance, name, parameter, ())
    except Uninferable:
        return _UNPROBED
    if strategy_kind(found.value) != "controls":
        return _UNPROBED
    return _control_value(strategy_arguments(found.value))


def _own_length(name: str, strategy: Any) -> Any:
    """A decoder's inferred tokens with a length of their own, ``"target"`` (a translation
    is not as long as its source; padding_invariance trims the source's ``"time"`` only)."""
    from dyncheck.examples import strategy_arguments, strategy_kind

    shape = strategy_arguments(strategy).get("shape")
    if not name.startswith("decoder_") or strategy_kind(strategy) != "tensors" or not isinstance(shape, tuple):
        return strategy
    if "time" not in shape or "target" in shape:
        return strategy
    return _reshaped(strategy, tuple("target" if d == "time" else d for d in shape))


def _decoder_ids(
    name: str, parameter: inspect.Parameter, parameters: dict[str, inspect.Parameter], given: Any, primary: str | None
) -> bool:
    """Whether an optional ``decoder_input_ids`` is drawn anyway: an encoder-decoder
    (WhisperModel, T5Model) raises without it ("You have to specify either
    decoder_input_ids or decoder_inputs_embeds"), and one that derives it from the input
    (BartModel shifts input_ids) takes it as well. Not when the Spec gives embeddings for
    the decoder, or when forward requires some input (then only the required ones are)."""
    return (
        name == "decoder_input_ids"
        and parameter.default is None
        and primary is not None
        and "decoder_inputs_embeds" not in given
    )


def _probe_call(instance: nn.Module, args: dict[str, Any], *, training: bool | None = None) -> Exception | None:
    """What calling a copy of ``instance`` (dyncheck's own, built by resolution and thrown
    away after it) on ``args`` raised, under a fixed seed and without autograd; None when
    it ran. Recorded, and taken from another process's record (:mod:`dyncheck.probing`)."""
    return probing.call(instance, args, seed=BUILD_SEED, training=training)


def _inferred_tensors(
    inputs: dict[str, Any], inferred: dict[str, str], *, tokens: bool = False, given: bool = False,
) -> dict[str, tuple[tuple, Any]] | None:
    """Each input's (shape, dtype) when every input was inferred as floating ``tensors()``
    (what resolution may probe and reshape), else None. With ``tokens``, integer ones
    (token ids) count too, their dtype given as ``(dtype, low, high)``, and so do lengths
    and attention masks beside them, given as ``("lengths", max_length, relative)`` (every
    sequence as long as the padded length) and ``("mask", dtype, marks padding)`` (every position a token).
    Inferred control values count too, given as ``((), ("control", value))`` with the value
    a probe calls with (:func:`_control_value`): a flag beside an image leaves its sizes to
    probe. With ``given``, inputs the Spec gives count as well, drawn alike (for a probe
    that only reads: none of them is reshaped)."""
    import torch

    from dyncheck.examples import strategy_arguments, strategy_kind
    from dyncheck.strategies import _length_plan, _mask_plan

    if not inputs or (set(inputs) - set(inferred) and not given):
        return None
    shapes: dict[str, tuple[tuple, Any]] = {}
    for name, strategy in inputs.items():
        kwargs = strategy_arguments(strategy)
        if strategy_kind(strategy) == "controls":
            shapes[name] = ((), ("control", _control_value(kwargs)))
            continue
        if tokens and strategy_kind(strategy) == "sequence_lengths":
            batch, longest, _, _, _, relative = _length_plan(**kwargs)
            shapes[name] = ((batch,), ("lengths", longest, relative))
            continue
        if tokens and strategy_kind(strategy) == "attention_masks":
            _, longest, _, dtype, at_padding = _mask_plan(**kwargs)
            shapes[name] = ((kwargs.get("batch_size", "batch"), longest), ("mask", dtype, at_padding))
            continue
        shape, dtype = kwargs.get("shape"), kwargs.get("dtype", torch.float32)
        if strategy_kind(strategy) != "tensors" or not isinstance(shape, tuple):
            return None
        if dtype.is_floating_point:
            shapes[name] = (shape, dtype)
        elif tokens and dtype in (torch.int64, torch.int32) and {"min_value", "max_value"} <= set(kwargs):
            shapes[name] = (shape, (dtype, kwargs["min_value"], kwargs["max_value"]))
        else:
            return None
    padding = [isinstance(dtype, tuple) and dtype[0] in ("lengths", "mask") for _, dtype in shapes.values()]
    if any(padding) and all(padding):
        return None  # lengths or masks alone: nothing of the model's own input to probe
    return shapes


#: How the explain says an optional control was left at its default (not a padding argument).
CONTROL_KEPT = "an optional control, not drawn: "


def _check_switches(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any],
    switches: dict[str, Any], kept_defaults: dict[str, str],
) -> None:
    """An optional control drawn (:func:`~dyncheck.infer.forward.optional_control`) is kept
    only where the model runs at each of its values, on the other inputs at their smallest
    sizes: a mode that needs an argument left at its default (mmengine's ``mode="loss"``
    beside ``data_samples=None``) or other inputs (``mode="decode"`` of a latent) is another
    use of the model, not a branch of this one. Otherwise, or where the inputs cannot be
    made here, it is left at its default, and ``kept_defaults`` says why."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    for name, default in switches.items():
        arguments = strategy_arguments(inputs[name])
        values = _switch_values(arguments, default)
        raised = None
        for value in values:
            error = _call_at_smallest(instance, {**inputs, name: dst.controls(choices=[value])}, inferred, dims)
            if error is _UNPROBED:
                raised = ("the other inputs could not be made to try it", None)
                break
            if error is not None:
                raised = (f"with {name}={value!r} the model raised {type(error).__name__} ({one_line(error)})", error)
                break
        if raised is not None:
            del inputs[name], inferred[name]
            kept_defaults[name] = f"{CONTROL_KEPT}{raised[0]}"


def _switch_values(arguments: dict[str, Any], default: Any) -> list[Any]:
    """The values an optional control is tried at: each choice, both booleans, or each side of
    each threshold and the ends of its range; the default first."""
    if arguments.get("choices") is not None:
        values = list(arguments["choices"])
    elif arguments.get("dtype") is bool:
        values = [False, True]
    else:
        low, high = arguments.get("min_value", 0.0), arguments.get("max_value", 1.0)
        step = 1 if arguments.get("dtype") is int else 1e-3
        values = [low, high]
        for threshold in arguments.get("thresholds", ()):
            values += [v for v in (threshold - step, threshold + step) if low <= v <= high]
    return list(dict.fromkeys([default, *values]))


def _given_constants(inputs: dict[str, Any], inferred: dict[str, str]) -> dict[str, tuple[tuple, Any]] | None:
    """The inputs the Spec gives (not in ``inferred``) as ``((), ("control", value))``, the
    value the first of a ``st.just``'s or ``st.sampled_from``'s; None when one is given
    otherwise (a strategy whose values a probe cannot take without drawing)."""
    constants: dict[str, tuple[tuple, Any]] = {}
    for name, strategy in inputs.items():
        if name in inferred:
            continue
        elements = getattr(strategy, "elements", None)
        if not elements or getattr(strategy, "_transformations", ()):
            return None
        constants[name] = ((), ("control", elements[0]))
    return constants


def _control_value(arguments: dict[str, Any]) -> Any:
    """The value a probe calls a control of these strategy arguments with: its first choice,
    True, or the top of its range (a step count's most steps), as a one-element tensor
    where it is drawn so."""
    import torch

    if arguments.get("choices") is not None:
        return list(arguments["choices"])[0]
    dtype = arguments.get("dtype", float)
    if dtype is bool:
        return True
    value = dtype(arguments.get("max_value", 1.0))
    return torch.tensor([value]) if arguments.get("as_tensor") else value


def _probe_tensor(shape: list[int], dtype: Any, size_of: Callable[[Any], int]) -> Any:
    """A random input for a probe call: normal floats, token ids in their range, lengths
    that fill the padded length (``size_of`` the named length), or a mask of all tokens."""
    import torch

    if isinstance(dtype, tuple) and dtype[0] == "control":
        return dtype[1]
    if isinstance(dtype, tuple) and dtype[0] == "lengths":
        if len(dtype) > 2 and dtype[2]:  # relative lengths: every sequence the whole padded length
            return torch.ones(shape)
        return torch.full(shape, size_of(dtype[1]), dtype=torch.long)
    if isinstance(dtype, tuple) and dtype[0] == "mask":
        return (torch.zeros if dtype[2] else torch.ones)(shape, dtype=dtype[1])
    if isinstance(dtype, tuple):
        dtype, low, high = dtype
        return torch.randint(low, high + 1, shape, dtype=dtype)
    return torch.randn(shape, dtype=dtype)


#: Optional forward arguments that are never another input a model needs beside its first
#: (targets, positions, caches, alternatives to the first, flags).
_NOT_A_COMPANION = re.compile(
    r"(^|_)(labels?|position_ids|token_type_ids|head_mask|past_key_values|cache\w*|\w*embeds)$|^(return|output|use)_"
)


def _allowed_sizes(dim: Any, dims: dict[str, Any]) -> list[int]:
    """Every size ``dims`` (or dyncheck's default ranges) allow the dimension ``dim``,
    smallest first: a range's, a ``sampled_from``'s, a fixed size."""
    from dyncheck.strategies import DEFAULT_DIMS

    bounds = dim if isinstance(dim, int) else dims.get(dim, DEFAULT_DIMS.get(dim, (2, 2)))
    elements = getattr(bounds, "elements", None)
    if isinstance(elements, Sequence) and elements:
        return sorted(e for e in elements if isinstance(e, int))
    if isinstance(bounds, tuple):
        return list(range(bounds[0], bounds[1] + 1))
    return [bounds] if isinstance(bounds, int) else [2]


def _smallest_size(dim: Any, dims: dict[str, Any]) -> int:
    """The smallest size ``dims`` (or dyncheck's default ranges) allow the dimension ``dim``."""
    return (_allowed_sizes(dim, dims) or [2])[0]


def _padded_probe(shapes: dict[str, tuple[tuple, Any]], time: Any, padded: int, dims: dict[str, Any]) -> dict[str, Any]:
    """Probe inputs of ``shapes`` (:func:`_inferred_tensors`) with the padded length ``time``
    at ``padded`` and every other dimension at its smallest (a batch of at least 2)."""

    def size_of(dim: Any) -> int:
        if dim == time:
            return padded
        low = _smallest_size(dim, dims)
        return max(2, low) if dim == "batch" else max(1, low)

    return {name: _probe_tensor([size_of(d) for d in shape], dtype, size_of) for name, (shape, dtype) in shapes.items()}


def _is_sampled(dim: Any, dims: dict[str, Any]) -> bool:
    """Whether ``dims`` gives ``dim`` as a ``sampled_from`` of sizes (taken as they are)."""
    from dyncheck.strategies import DEFAULT_DIMS

    elements = getattr(dims.get(dim, DEFAULT_DIMS.get(dim)), "elements", None)
    return isinstance(elements, Sequence) and bool(elements)


#: What :func:`_call_at_smallest` answers for inputs it cannot build.
_UNPROBED = object()


def _call_at_smallest(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any], *, least: int = 1,
    batch: int | None = None,
) -> Any:
    """What a call on inputs at the smallest sizes ``dims`` allows raised (None when it
    ran); ``_UNPROBED`` when the inputs are not all inferred tensors. ``least``: the
    smallest size a dimension other than the batch is given, where the spec allows it (2:
    a sequence of more than one step). ``batch``: the batch's size instead of its smallest
    of 2 or more."""
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return _UNPROBED

    def size_of(dim: Any) -> int:
        if isinstance(dim, int):
            return dim
        low = _smallest_size(dim, dims)
        if dim == "batch" and batch is not None:
            return batch
        if _is_sampled(dim, dims):
            return low
        if dim == "batch":
            return max(2, low)
        return next((size for size in _allowed_sizes(dim, dims) if size >= least), max(1, low))

    return _probe_call(instance, {
        name: _probe_tensor([size_of(d) for d in shape], dtype, size_of) for name, (shape, dtype) in shapes.items()
    })


#: The widest concatenation :func:`_probe_split` tries the splits of.
_SPLIT_PROBED = 64


def _probe_split(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """Two arguments concatenated along their features into one layer were given an even
    share each (the layer sees only the sum); where the model raises so (``memory`` also
    multiplies a gate of its own width: ``g * memory``), the first split that runs, tried in
    the order below; ``inputs`` and ``inferred`` updated in place."""
    from dyncheck.infer.forward import EVEN_SHARE

    said_even = re.compile(re.escape(EVEN_SHARE).replace(r"\{share\}", r"\d+").replace(r"\{total\}", r"\d+"))
    shared = [n for n, why in inferred.items() if said_even.search(why)]
    shapes = _inferred_tensors(inputs, inferred, tokens=True) if len(shared) == 2 else None
    if shapes is None:
        return
    (first, (a, _)), (second, (b, _)) = ((n, shapes[n]) for n in shared)
    if a[:-1] != b[:-1] or not (isinstance(a[-1], int) and isinstance(b[-1], int)) or a[-1] + b[-1] > _SPLIT_PROBED:
        return
    total = a[-1] + b[-1]
    even = _call_at_smallest(instance, inputs, inferred, dims)
    if even is None or even is _UNPROBED:
        return
    # Splits where a side is as wide as something the model holds first (a gate of the
    # memory's width), nearest the even split first; a width of 1 broadcasts against
    # anything, so the splits with one last.
    sizes = set(_parameter_sizes([instance]))
    widths = sorted(
        (w for w in range(1, total) if w != a[-1]),
        key=lambda w: (w in (1, total - 1), not ({w, total - w} & sizes), abs(2 * w - total), w),
    )
    for width in widths:
        trial = {**inputs, first: _reshaped(inputs[first], (*a[:-1], width)),
                 second: _reshaped(inputs[second], (*b[:-1], total - width))}
        if _call_at_smallest(instance, trial, inferred, dims) is None:
            inputs.update(trial)
            said = EVEN_SHARE.format(share=total // 2, total=total)
            for name, size in ((first, width), (second, total - width)):
                inferred[name] = inferred[name].replace(said, (
                    f"{size} of {total} features: at an even split the model raised {type(even).__name__} "
                    f"({one_line(even)}), and {width} and {total - width} ran (give other sizes with Spec(inputs=...))"
                ))
            return


def _probe_layout(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any], *,
    causal: bool = False,
) -> None:
    """Confirm by calling the model each layout the source alone suggested: token ids
    time-major because a ``batch_first=False`` layer reads their embeddings, features a
    sequence because a sequence layer reads what a Linear made of them. The suggested layout
    stays only when, in eval mode on a batch of two, it runs and each sample's outputs are
    its outputs alone, and the layout drawn before (``[batch, time]`` ids; vectors) does not
    give that. Otherwise the earlier layout is drawn, its note saying why: forward may
    arrange the axes itself (a transpose in the layer's call), index steps one at a time, or
    make a sequence of one step (``unsqueeze``) or an initial state of the vectors.

    The other way round, in a model with a time-major layer the source did not connect to
    them (inside a submodule of the model's own), batch-first ids or sequences are drawn
    time-major when only that layout gives each sample its own outputs.

    A model the spec declares ``causal`` keeps the sequence where it runs with each sample's
    outputs its own, also where vectors run too (titans-pytorch's NeuralMemory unsqueezes
    one step): as vectors, every sequence was one step long and causality had no time axis
    to cut."""
    from dyncheck.infer.forward import SEQUENCE_NOTE, TIME_MAJOR_NOTE, _batch_first

    marked = [
        (name, marker) for name in inputs for marker in (TIME_MAJOR_NOTE, SEQUENCE_NOTE)
        if marker in inferred.get(name, "")
    ]
    time_major = any(_batch_first(m) is False for m in instance.modules())
    shapes = _inferred_tensors(inputs, inferred, tokens=True) if marked or time_major else None
    if shapes is None:
        return
    verdicts: dict[tuple, Any] = {}

    def own(layout: dict[str, tuple[tuple, Any]]) -> Any:
        """:func:`_own_samples` on ``layout``, called once per distinct layout."""
        key = tuple((name, tuple(shape)) for name, (shape, _) in layout.items())
        if key not in verdicts:
            verdicts[key] = _own_samples(instance, layout, dims)
        return verdicts[key]

    for name, marker in marked:
        shape, dtype = shapes[name]
        before = ("batch", "time") if marker == TIME_MAJOR_NOTE else tuple(d for d in shape if d != "time")
        if before == tuple(shape) or "batch" not in before:
            continue
        suggested = own(shapes)
        if suggested is True and causal and marker == SEQUENCE_NOTE:
            continue
        earlier = own({**shapes, name: (before, dtype)})
        if suggested is True and earlier is not True:
            continue
        if isinstance(earlier, Exception):
            continue  # nothing better to draw
        inputs[name] = _reshaped(inputs[name], before)
        shapes[name] = (before, dtype)
        note = inferred[name]
        inferred[name] = note[:note.index(marker)] + f"; {list(before)}, not {list(shape)}: on {list(shape)} " + (
            f"the model raised {type(suggested).__name__} ({one_line(suggested)})" if isinstance(suggested, Exception)
            else "each sample's outputs were its outputs alone either way" if suggested
            else "a sample's outputs depended on the other sample in its batch"
        )
    if not time_major:
        return
    for name, (shape, dtype) in list(shapes.items()):
        if any(marker in inferred.get(name, "") for marker in (TIME_MAJOR_NOTE, SEQUENCE_NOTE)):
            continue
        tokens = isinstance(dtype, tuple) and not isinstance(dtype[0], str)
        if tuple(shape[:2]) != ("batch", "time") or len(shape) != (2 if tokens else 3):
            continue
        flipped = ("time", "batch", *shape[2:])
        if own({**shapes, name: (flipped, dtype)}) is not True or own(shapes) is True:
            continue
        inputs[name] = _reshaped(inputs[name], flipped)
        shapes[name] = (flipped, dtype)
        inferred[name] += (
            f"; time-major: on {list(shape)} a sample's outputs depended on the other sample in its batch, "
            f"on {list(flipped)} each sample's were its own"
        )


def _causal_over_time(causal: Any) -> bool:
    """Whether ``Spec(causal=...)`` names the ``"time"`` axis (True, ``"time"``, or a dict with it)."""
    if isinstance(causal, dict):
        causal = causal.get("axis", True)
    return causal is True or causal == "time"


def _probe_causal_sequence(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """A model declared causal over ``"time"`` whose inputs were all inferred without one:
    each input inferred as vectors ``[batch, F]`` is drawn ``[batch, time, F]`` where the
    model runs so with each sample's outputs its own. A scan written in forward's own code
    over what a Linear made of the input (minGRU's ``cumsum``/``logcumsumexp`` over dim 1)
    also runs on vectors, reading the features as steps: every check passed on a layout the
    model never takes, and causality had no time axis to cut."""
    from dyncheck.infer.forward import scans_over_steps

    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None or any("time" in shape for shape, _ in shapes.values()):
        return
    for name, (shape, dtype) in list(shapes.items()):
        if len(shape) != 2 or shape[0] != "batch" or not isinstance(shape[1], int) or isinstance(dtype, tuple):
            continue
        scan = scans_over_steps(instance, name)
        if scan is None:
            continue  # a model of one step (a streaming policy) is no sequence model because a Linear runs on 3-D
        sequence = ("batch", "time", shape[1])
        if _own_samples(instance, {**shapes, name: (sequence, dtype)}, dims) is not True:
            continue
        inputs[name] = _reshaped(inputs[name], sequence)
        inferred[name] += (
            f"; a sequence: the model is declared causal over 'time', scans over axis 1 ({scan}), and on "
            f"{list(sequence)} each sample's outputs are its own"
        )
        return  # one input holds the steps; the others (a per-sample vector beside it) stay


def _confirm_drawn_sequence(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """An input drawn ``[batch, time, F]`` only because forward names, cuts and scans its
    axis 1 (``NAMED_SCAN_NOTE``, minGRU's parallel form), or ``[time, batch, F]`` only
    because a layer it reaches after its first loops over axis 0 carrying a state
    (``STEPPED_LAYER_NOTE``, norse's LIF), stays a sequence where the model, called so at a
    batch of two, gives each sample the outputs it has alone; else it is drawn as the
    vectors its first layer reads, and the note says what the call gave."""
    from dyncheck.infer.forward import NAMED_SCAN_NOTE, STEPPED_LAYER_NOTE

    for name, why in list(inferred.items()):
        stepped = STEPPED_LAYER_NOTE.search(why)
        scanned = why.find(NAMED_SCAN_NOTE)
        if stepped is None and scanned < 0:
            continue
        shapes = _inferred_tensors(inputs, inferred, tokens=True, given=True)
        if shapes is None or name not in shapes:
            return
        shape, dtype = shapes[name]
        if len(shape) != 3 or shape[:2] != (("time", "batch") if stepped else ("batch", "time")):
            continue
        own = _own_samples(instance, shapes, dims)
        if own is True:
            continue
        inputs[name] = _reshaped(inputs[name], ("batch", shape[2]))
        called = f"it raised {type(own).__name__}: {one_line(own)}" if isinstance(own, Exception) else "a sample's outputs were not its own"
        if stepped:
            said, probed, before = "a layer it reaches carries a state through axis 0", f"[3, 2, {shape[2]}]", stepped.start()
        else:
            said, probed, before = "forward names, cuts and scans its axis 1", f"[2, 3, {shape[2]}]", scanned
        inferred[name] = f"{why[:before]}; vectors, though {said}: on {probed} {called}"


def _own_samples(instance: nn.Module, shapes: dict[str, tuple[tuple, Any]], dims: dict[str, Any]) -> Any:
    """Whether ``instance`` in eval mode, called on inputs of ``shapes`` at a batch of two
    (every other named size its smallest of 3 or more), gives each sample the outputs it has
    alone: True or False (False too when no output has a batch axis to compare), or what
    the call raised."""
    import torch

    from dyncheck.invariants.batch_invariance import _output_batch_axis
    from dyncheck.tracing import floating_leaves

    def size_of(dim: Any) -> int:
        if isinstance(dim, int):
            return dim
        if dim == "batch":
            return 2
        allowed = _allowed_sizes(dim, dims)
        return next((size for size in allowed if size >= 3), allowed[-1] if allowed else 3)

    args = {name: _probe_tensor([size_of(d) for d in shape], dtype, size_of) for name, (shape, dtype) in shapes.items()}
    model = clone(instance).eval()

    def run(call: dict[str, Any]) -> Any:
        with seeded(BUILD_SEED), torch.no_grad():
            return dict(floating_leaves(model(**call)))

    try:
        whole = run(args)
        alone = [
            run({
                name: value.narrow(shapes[name][0].index("batch"), row, 1) if "batch" in shapes[name][0] else value
                for name, value in args.items()
            })
            for row in range(2)
        ]
    except Exception as exc:
        return exc
    compared = False
    for leaf, value in whole.items():
        axis = _output_batch_axis(value, alone[0].get(leaf), 2)
        if not isinstance(axis, int):
            continue
        for row in range(2):
            own = alone[row].get(leaf)
            if own is None or own.shape != value.narrow(axis, row, 1).shape:
                return False
            if not torch.allclose(value.narrow(axis, row, 1), own, rtol=1e-3, atol=1e-4, equal_nan=True):
                return False
        compared = True
    return compared


def _probe_vectors(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """An input inferred with an axis the model does not take, when a call at the smallest
    sizes raises and runs without it: a sequence ``[batch, time, F]`` (from the recurrent
    layer that first consumes it) that forward makes into one step itself, image features
    put before a caption's embeddings (``features.unsqueeze(1)``), is drawn as vectors
    ``[batch, F]``; token ids ``[batch, time]`` (or ``[time, batch]``) of one unbatched
    sentence (a tagger that views them as ``(len(sentence), 1, -1)`` for a time-major LSTM)
    as ``[time]``. The note says why. Only for a model with a recurrent layer (time-major,
    for the second), and inputs all inferred (as :func:`_probe_sizes`)."""
    recurrent = [m for m in instance.modules() if isinstance(m, nn.RNNBase)]
    if not recurrent:
        return
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return
    time_major = any(not m.batch_first for m in recurrent)
    trials = [
        (name, (shape[0], shape[2]), "vectors, not sequences")
        for name, (shape, dtype) in shapes.items()
        if len(shape) == 3 and shape[0] == "batch" and isinstance(shape[1], str) and shape[1] != "batch"
        and isinstance(shape[2], int) and not isinstance(dtype, tuple)
    ] + [
        # token ids [batch, time], or [time, batch] as a time-major layer takes them
        (name, (other,), "one sequence, not a batch of them")
        for name, (shape, dtype) in shapes.items()
        if time_major and len(shape) == 2 and "batch" in shape
        and isinstance(other := shape[1 - shape.index("batch")], str) and other != "batch"
        and isinstance(dtype, tuple) and not isinstance(dtype[0], str)
    ]
    if not trials:
        return
    # Sequences of 2 steps or more: at 1 step, one unbatched sentence viewed as
    # (len(sentence), 1, -1) still runs on a batch of them.
    _first_that_runs(instance, inputs, inferred, dims, trials)


def _first_that_runs(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any],
    trials: list[tuple[str, tuple[Any, ...], str]], *, pairs: bool = False,
) -> bool:
    """When a call at the smallest sizes (sequences of 2 steps or more) raises, the first of
    ``trials`` (an input, another shape for it, what that shape means) that makes it run:
    the input is drawn so, and its note says both calls' outcomes. True when one did.

    At the smallest sizes the batch and a sequence are both 2, and a wrong shape can
    broadcast against the right one (``[batch, 16] + [batch, time, 16]``): a trial is taken
    first where the call runs with a batch of 3 too. With ``pairs``, two trials together are
    tried next (a diffusion model's timestep and class label, each inferred with an axis
    more); only then the first trial that ran at the smallest sizes alone."""
    error = _call_at_smallest(instance, inputs, inferred, dims, least=2)
    if error is None or error is _UNPROBED:
        return False
    shapes = _inferred_tensors(inputs, inferred, tokens=True) or {}
    apart = 3 if 3 in _allowed_sizes("batch", dims) else None

    def runs(trial: dict[str, Any], batch: int | None = None) -> bool:
        return _call_at_smallest(instance, trial, inferred, dims, least=2, batch=batch) is None

    def take(chosen: list[tuple[str, tuple[Any, ...], str]]) -> bool:
        for name, shape, what in chosen:
            beside = [other for other, _, _ in chosen if other != name]
            inputs[name] = _reshaped(inputs[name], shape)
            inferred[name] += (
                f"; {what}: on {list(shapes[name][0])} the model raised {type(error).__name__} "
                f"({one_line(error)}), on {list(shape)}{f' (and {beside[0]} so)' if beside else ''} it ran"
            )
        return True

    fallback = None
    for name, shape, what in trials:
        trial = {**inputs, name: _reshaped(inputs[name], shape)}
        if runs(trial):
            if apart is None or runs(trial, apart):
                return take([(name, shape, what)])
            fallback = fallback or (name, shape, what)
    if pairs and apart is not None:
        for i, first in enumerate(trials):
            for second in trials[i + 1:]:
                if first[0] == second[0]:
                    continue
                trial = {**inputs, **{n: _reshaped(inputs[n], shape) for n, shape, _ in (first, second)}}
                if runs(trial) and runs(trial, apart):
                    return take([first, second])
    return take([fallback]) if fallback else False


def _probe_per_sample(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> bool:
    """An input that holds one value per sample, inferred with an axis more from the layer
    that reads it: a class label embedded beside a noise vector (a conditional GAN's
    ``torch.cat([self.label_emb(labels), noise], -1)``: ids ``[batch]``, not
    ``[batch, time]``), a diffusion timestep that a parameter-free sinusoidal embedding
    turns into the features the next layer reads (``[batch]``, not ``[batch, F]``). When a
    call at the smallest sizes raises and one with that input as ``[batch]`` runs, it is
    drawn so, and the note says why. Inputs all inferred (as :func:`_probe_sizes`); one
    input changed, token ids tried first, or two where only both together run (a diffusion
    model's timestep and class label). True when one was."""
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return False
    trials = sorted(
        (not isinstance(dtype, tuple), name)
        for name, (shape, dtype) in shapes.items()
        if len(shape) == 2 and shape[0] == "batch" and (not isinstance(dtype, tuple) or not isinstance(dtype[0], str))
    )
    return bool(trials) and _first_that_runs(
        instance, inputs, inferred, dims, [(n, ("batch",), "one value per sample") for _, n in trials], pairs=True
    )


def _probe_companions(
    instance: nn.Module,
    parameters: dict[str, inspect.Parameter],
    primary: str,
    inputs: dict[str, Any],
    inferred: dict[str, str],
    dims: dict[str, Any],
    given: set[str],
    why: dict[str, str],
) -> None:
    """``forward(input_ids=None, pixel_values=None, ...)`` requires nothing, and inference
    gives it its first argument (and that one's mask); a model that needs another beside it
    (CLIP: the text and the images) raises on every example. When a call on the inferred
    inputs raises, each other argument that defaults to None (not labels, positions, caches,
    embeddings or flags) is inferred in turn, its sizes probed, and the first with which the
    call runs joins the inputs, the inference note saying why. ``inputs``, ``inferred``,
    ``dims`` and ``why`` are updated in place."""
    candidates = [
        (name, parameter) for name, parameter in parameters.items()
        if name not in inputs and parameter.default is None and not _NOT_A_COMPANION.search(name)
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if not candidates:
        return  # nothing could join: no call needed
    error = _call_at_smallest(instance, inputs, inferred, dims)
    if error is None or error is _UNPROBED:
        return
    # The size, not a missing companion, may be what the call refuses (Speech2Text's
    # convolutions need more frames than the smallest): then the size probe after this
    # finds what runs, and no argument joins for having run at a larger size.
    alone, notes, sizes = dict(inputs), dict(inferred), dict(dims)
    _probe_sizes(instance, alone, notes, sizes, given, {})
    if _call_at_smallest(instance, alone, notes, sizes) is None:
        return
    for name, parameter in candidates:
        try:
            found = infer_input(instance, name, parameter)
        except Uninferable:
            continue
        more, notes, sizes, reasons = {**inputs, name: found.value}, {**inferred, name: found.why}, dict(dims), {}
        for dim, bounds in (found.dims or {}).items():
            sizes.setdefault(dim, bounds)
        _probe_sizes(instance, more, notes, sizes, given, reasons)
        if _call_at_smallest(instance, more, notes, sizes) is not None:
            continue
        notes[name] += (
            f"; forward needs it beside {primary}: with {primary} alone it raised {type(error).__name__} "
            f"({one_line(error)})"
        )
        inputs.update(more)
        inferred.update(notes)
        dims.update(sizes)
        why.update(reasons)
        return
    _probe_companions_together(instance, candidates, primary, inputs, inferred, dims, given, why, error)


def _probe_companions_together(
    instance: nn.Module,
    candidates: list[tuple[str, inspect.Parameter]],
    primary: str,
    inputs: dict[str, Any],
    inferred: dict[str, str],
    dims: dict[str, Any],
    given: set[str],
    why: dict[str, str],
    error: Exception,
) -> None:
    """No one companion was enough: a forward that needs several beside its first (a
    Decision Transformer's ``actions``, ``returns_to_go`` and ``timesteps`` beside
    ``states``). Every candidate that can be inferred joins at once (vectors made sequences
    when only sequences run, sizes probed), or, when that call raises, all but one; when a
    call runs, each is left out again in turn, and those the call runs without stay out.
    Updates in place as :func:`_probe_companions` does; nothing changes when no such call
    runs."""
    found = {}
    for name, parameter in candidates:
        try:
            found[name] = infer_input(instance, name, parameter)
        except Uninferable:
            continue
    if len(found) < 2:
        return  # one alone was tried already

    def together(names: list[str]) -> tuple[dict, dict, dict, dict] | None:
        more = {**inputs, **{name: found[name].value for name in names}}
        notes = {**inferred, **{name: found[name].why for name in names}}
        sizes, reasons = dict(dims), {}
        for name in names:
            for dim, bounds in (found[name].dims or {}).items():
                sizes.setdefault(dim, bounds)
        _probe_rank(instance, more, notes, sizes)
        _probe_sizes(instance, more, notes, sizes, given, reasons)
        if _call_at_smallest(instance, more, notes, sizes) is not None:
            return None
        return more, notes, sizes, reasons

    needed = list(found)
    result = together(needed)
    if result is None:
        # One of them may be what breaks the call (a mask inferred as features): each left out.
        for name in list(needed):
            result = together([n for n in needed if n != name])
            if result is not None:
                needed.remove(name)
                break
        else:
            return
    for name in list(needed):
        trial = together([n for n in needed if n != name])
        if trial is not None:
            needed.remove(name)
            result = trial
    if len(needed) < 2:
        return  # one was enough after all: the loop before would have found it
    more, notes, sizes, reasons = result
    for name in needed:
        beside = [primary, *(n for n in needed if n != name)]
        notes[name] += (
            f"; forward needs it beside {', '.join(beside[:-1])} and {beside[-1]}: with {primary} alone it raised "
            f"{type(error).__name__} ({one_line(error)}), and with any one of them left out too"
        )
    inputs.update(more)
    inferred.update(notes)
    dims.update(sizes)
    why.update(reasons)


def _probe_rank(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """A model whose inputs are inferred as feature vectors (``("batch", F)``, from the
    layer that first consumes them; control values beside them are called with their probe
    value, :func:`_control_value`) may take sequences of them (``("batch", "time", F)``: a
    mixture-of-experts or attention layer that unpacks ``b, n, d = x.shape``). When a call on
    vectors raises and one on sequences runs, the inputs become sequences and the inference
    note says why. Token ids already drawn as sequences (``("batch", "time")``, a Decision
    Transformer's timesteps beside its states) go with them at the same length. ``inputs``
    and ``inferred`` are updated in place; the model (the instance resolution built, in its
    own mode) is called under a fixed seed and without autograd."""
    import torch

    from dyncheck.examples import strategy_kind

    # lengths or a mask the Spec declares count as inferred ones do: what they say of the
    # vectors beside them is the same
    declared = {
        name: "" for name, strategy in inputs.items()
        if name not in inferred and strategy_kind(strategy) in ("sequence_lengths", "attention_masks")
    }
    found = _inferred_tensors(inputs, {**inferred, **declared}, tokens=True)
    if found is None:
        return
    # control values beside them (a step count), at the value a probe gives them
    fixed = {name: dtype[1] for name, (_, dtype) in found.items() if isinstance(dtype, tuple) and dtype[0] == "control"}
    found = {name: value for name, value in found.items() if name not in fixed}

    def padded_length(shape: tuple, dtype: Any) -> Any:
        # lengths or a mask (their dtype a ("lengths", longest) or ("mask", ...) tuple): the
        # padded length they name; None for any other input
        if not (isinstance(dtype, tuple) and isinstance(dtype[0], str)):
            return None
        return dtype[1] if dtype[0] == "lengths" else shape[-1]

    shapes, tokens, padding = {}, {}, {}
    layouts = set()
    for name, (shape, dtype) in found.items():
        length = padded_length(shape, dtype)
        if length is not None:
            # lengths or a mask: the padded length they name no input carries (a GRUCell
            # unrolled by hand over `lengths`) says the vectors beside them are sequences
            if any(length in other for other, kind in found.values() if padded_length(other, kind) is None):
                return
            padding[name] = (shape, dtype)
            continue
        if isinstance(dtype, tuple) and shape in (("batch", "time"), ("time", "batch")):
            tokens[name] = dtype
            layouts.add(tuple(shape))
            continue
        if len(shape) != 2 or shape[0] != "batch" or not isinstance(shape[1], int):
            return
        if dtype not in (torch.float32, torch.float64):
            return
        shapes[name] = shape[1]
    longest = {padded_length(shape, dtype) for shape, dtype in padding.values()}
    if not shapes or len(layouts) > 1 or len(longest) > 1 or (padding and tokens):
        return
    time = longest.pop() if longest else "time"
    # the sequences in the layout of the ids beside them: time-major when the ids are; beside
    # lengths or a mask, batch-first unless only time-major runs
    orders = [layouts == {("time", "batch")}] if not padding else [False, True]

    def runs(sequences: bool, time_major: bool) -> Exception | None:
        sizes = (3, 2) if time_major else (2, 3)
        return _probe_call(instance, {
            **{name: torch.randn(*(sizes if sequences else (2,)), features) for name, features in shapes.items()},
            **{name: torch.randint(low, high + 1, sizes, dtype=dtype) for name, (dtype, low, high) in tokens.items()},
            **{name: _probe_tensor([2, 3][: len(shape)], dtype, lambda _: 3) for name, (shape, dtype) in padding.items()},
            **fixed,
        })

    error = runs(False, orders[0])
    if error is None:
        if not padding and not tokens and not fixed:
            _rows_as_steps(instance, inputs, inferred, shapes, dims)
        return
    for time_major in orders:
        if runs(True, time_major) is None:
            break
    else:
        if not padding:
            _probe_image(instance, inputs, inferred, shapes, tokens, error)
        return
    sizes = (3, 2) if time_major else (2, 3)
    beside = f" beside {' and '.join(padding)}, whose padded length no input had" if padding else ""
    for name, features in shapes.items():
        inputs[name] = _reshaped(inputs[name], (*((time, "batch") if time_major else ("batch", time)), features))
        inferred[name] += (
            f"; a sequence of them{beside}: called on [2, {features}] it raised {type(error).__name__} "
            f"({one_line(error)}), on {[*sizes, features]} it ran"
        )


def _rows_as_steps(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], shapes: dict[str, int], dims: dict[str, Any]
) -> None:
    """Vectors ``("batch", F)`` that run, but as the steps of one sequence: a recurrent
    model that also takes one unbatched sequence ``[time, F]`` (ncps' LTC and CfC) gives a
    row of a batch of two other outputs than the row alone, and each sample of sequences
    ``[2, 3, F]`` (or time-major ``[3, 2, F]``, for a model whose ``batch_first`` is False)
    its own, and its modules run more often on 3 rows than on 2 (a cell called once a step:
    rows a model couples otherwise, a mean over them, stay rows for batch_invariance to
    report). Then the inputs become sequences, and the note says why (drawn as vectors,
    batch_invariance failed a correct model)."""
    import torch

    vectors = {name: (("batch", features), torch.float32) for name, features in shapes.items()}
    if _own_samples(instance, vectors, dims) is not False or not (
        _calls_grow_with_rows(instance, shapes) or _batch_axis_twice(instance, shapes)
    ):
        return
    from dyncheck.infer.forward import _batch_first

    layouts = [("batch", "time")]
    if any(_batch_first(m) is False or getattr(m, "batch_first", None) is False for m in instance.modules()):
        # time-major only for a model that says so (ncps' batch_first=False): a model that
        # averages its rows (x.mean(0)) would give each sample its own outputs that way
        layouts.append(("time", "batch"))
    for layout in layouts:
        sequences = {name: ((*layout, features), torch.float32) for name, features in shapes.items()}
        if _own_samples(instance, sequences, dims) is True:
            break
    else:
        return
    sizes = "2, 3" if layout[0] == "batch" else "3, 2"
    for name, features in shapes.items():
        inputs[name] = _reshaped(inputs[name], (*layout, features))
        inferred[name] += (
            f"; a sequence of them: on [2, {features}] a row's outputs depended on the other row (the model reads "
            f"the rows as one sequence's steps), on [{sizes}, {features}] each sample's outputs were its own"
        )


def _batch_axis_twice(instance: nn.Module, shapes: dict[str, int]) -> bool:
    """Whether ``instance`` in eval mode, on vectors of a number of rows no size of the
    model's parameters and buffers has, computes a tensor with two axes of that size, at two
    such numbers: the rows used as the steps of a sequence too (a Perceiver's latents
    ``[batch, 4, 16]`` cross-attending to keys made of the rows, ``q @ k.transpose(-1, -2)``
    giving ``[batch, 4, batch]``). Rows a model couples otherwise (a mean or a norm over
    them) never make such a tensor."""
    import torch
    from torch.nn.parameter import is_lazy
    from torch.overrides import TorchFunctionMode

    tensors = [t for t in (*instance.parameters(), *instance.buffers()) if not is_lazy(t)]
    taken = {*shapes.values(), *(size for t in tensors for size in t.shape)}
    counts = [n for n in (7, 11, 13, 17, 19, 23, 29, 31) if n not in taken][:2]
    if len(counts) < 2:
        return False

    def twice(rows: int) -> bool:
        seen = [False]

        class Shapes(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                result = func(*args, **(kwargs or {}))
                if isinstance(result, torch.Tensor) and list(result.shape).count(rows) >= 2:
                    seen[0] = True
                return result

        model = clone(instance).eval()
        with Shapes(), seeded(BUILD_SEED), torch.no_grad():
            model(**{name: torch.randn(rows, features) for name, features in shapes.items()})
        return seen[0]

    # at two row counts: a size the model makes itself (torch.eye(7) in forward) does not
    # follow the rows
    try:
        return all(twice(rows) for rows in counts)
    except Exception:
        return False


def _calls_grow_with_rows(instance: nn.Module, shapes: dict[str, int]) -> bool:
    """Whether ``instance`` in eval mode runs its modules more often on vectors of 3 rows
    than of 2: a loop over the rows as steps (a recurrent cell called once a step). Rows a
    model couples otherwise (a mean over them) are run through the same calls."""
    import torch

    from dyncheck.tracing import record_modules

    model = clone(instance).eval()
    counts = []
    try:
        for rows in (2, 3):
            with record_modules(model) as calls, seeded(BUILD_SEED), torch.no_grad():
                model(**{name: torch.randn(rows, features) for name, features in shapes.items()})
            counts.append(len(calls))
    except Exception:
        return False
    return counts[0] != counts[1]


def _probe_image(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], shapes: dict[str, int],
    tokens: dict[str, Any], error: Exception,
) -> None:
    """One input inferred as vectors ``[batch, F]`` from a Linear that reads it pooled
    (``self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))``: a squeeze-excite or CondConv
    layer, whose forward unpacks ``B, C, H, W = x.shape``), that raised as vectors and as
    sequences: tried as images ``[2, F, 5, 5]``, then as ``[2, F, 5]``, ``F`` the channels;
    the first that runs is drawn (the size probe then finds the sizes), the note says why."""
    import torch
    from torch.nn.parameter import is_lazy

    if len(shapes) != 1 or tokens:
        return
    (name, features), = shapes.items()
    # A signal's other axis may be fixed by a layer that broadcasts a parameter over it (a
    # time series' channels, scaled by RevIN's affine weight of one per channel): the sizes
    # of the model's one-dimensional parameters are tried after 5.
    sizes = [5, *sorted({
        p.shape[0] for p in instance.parameters() if not is_lazy(p) and p.dim() == 1 and 1 < p.shape[0] <= 64
    } - {5})]
    for spatial, size in [(("height", "width"), 5), *((("length",), size) for size in sizes[:_SIGNAL_TRIES])]:
        if _probe_call(instance, {name: torch.randn(2, features, *(size for _ in spatial))}) is None:
            # At a parameter's size that the next two sizes do not share, the axis is that
            # size: smaller ones may run only by broadcasting (1 against a per-channel weight).
            fixed = size != 5 and all(
                _probe_call(instance, {name: torch.randn(2, features, more)}) is not None for more in (size + 1, size + 2)
            )
            inputs[name] = _reshaped(inputs[name], ("batch", features, *((size,) if fixed else spatial)))
            inferred[name] += (
                f"; {'images' if len(spatial) == 2 else 'a signal'} of {features} channels: as vectors [2, {features}] "
                f"it raised {type(error).__name__} ({one_line(error)}), as sequences too, on "
                f"[2, {features}, {', '.join(str(size) for _ in spatial)}] it ran"
            )
            return
    # An image that forward cuts into patches itself (x.reshape(b, c, h // p, p, w // p, p),
    # einops' rearrange called in forward) before the layer that sized it: the layer read the
    # patches' features. Tried as RGB, then grey, images of a few square sizes.
    for channels, size in _IMAGE_TRIES:
        if _probe_call(instance, {name: torch.randn(2, channels, size, size)}) is None:
            inputs[name] = _reshaped(inputs[name], ("batch", channels, "height", "width"))
            inferred[name] += (
                f"; images: as vectors [2, {features}] it raised {type(error).__name__} ({one_line(error)}), as "
                f"sequences too, on [2, {channels}, {size}, {size}] it ran (forward reshapes them before that layer; "
                f"tried with {' channels, then '.join(map(str, dict.fromkeys(c for c, _ in _IMAGE_TRIES)))}, at "
                f"sizes {', '.join(map(str, dict.fromkeys(s for _, s in _IMAGE_TRIES)))})"
            )
            return


#: The images :func:`_probe_image` tries last: (channels, height and width), RGB first.
_IMAGE_TRIES = tuple((channels, size) for channels in (3, 1) for size in (16, 32, 8, 28, 64))


#: Lengths a signal is tried at (5, then the model's one-dimensional parameters' sizes).
_SIGNAL_TRIES = 6


#: The named dimensions of a convolution's input that downsampling (pooling, strides)
#: shrinks, and the largest size probed for them.
_SPATIAL = ("length", "depth", "height", "width")
#: Named dimensions probed only when the smallest size of their range raises: a sequence
#: that a convolution over its embeddings needs as long as the kernel (a text CNN).
_SEQUENCE = ("time",)
#: Sizes probed: doubling up to the first; each one in turn up to the second, and that
#: many beyond the smallest that ran.
_LARGEST_PROBED = 256
_LINEAR_PROBED = 64


def _probe_sizes(
    instance: nn.Module,
    inputs: dict[str, Any],
    inferred: dict[str, str],
    dims: dict[str, Any],
    given: set[str],
    why: dict[str, str],
) -> bool | None:
    """A convolutional model's inferred spatial sizes start where its first layer can run
    (a 3x3 convolution without padding needs 3), but pooling and strided layers further in
    shrink them: ``MaxPool2d(2)`` then raises "Output size is too small" on an input of
    height 1, and a Linear over the flattened features takes one size only; every check
    would report the model's crash. The model is called at each size of the inferred range
    (and, when the smallest raises, at larger ones until one runs); when one raised, the
    spatial sizes are those that ran from the smallest on, as many as the range held (a
    range when they follow each other, else ``sampled_from`` them), and ``why`` says so.
    Only for spatial dimensions inference chose (not ``given`` in the spec), on inputs all
    inferred; ``dims`` and ``inputs`` (a single-channel input the forward adds the channel
    axis to) are updated in place. A model with no spatial dimension but a sequence (token
    ids into an embedding and then a convolution over time) is probed the same way when
    its shortest sequence raises, and left alone after that one call in each mode when it
    runs. The model (copies of the instance resolution built) is called under a fixed seed
    and without autograd, in its own mode and in the other. True when a call at some size
    ran, False when none did, None when nothing was probed."""
    import torch
    from hypothesis import strategies as st

    from dyncheck.strategies import _OTHER_DIM, DEFAULT_DIMS

    # Inputs the Spec gives as one value or a few (a flag, st.just(True)) are called with
    # their first, as an inferred control is: the sizes of the others are still probed.
    constants = _given_constants(inputs, inferred)
    shapes = _inferred_tensors({n: v for n, v in inputs.items() if n in inferred}, inferred, tokens=True)
    if shapes is None or constants is None:
        return
    shapes.update(constants)
    # A sequence's range may still be the default one, which dims does not hold yet; so may
    # a spatial one that a probe put in (a signal's length, drawn as any other dimension).
    known = {**DEFAULT_DIMS, **{d: _OTHER_DIM for d in _SPATIAL}, **dims}
    probed = {d for shape, _ in shapes.values() for d in shape if d not in given and isinstance(known.get(d), tuple)}
    spatial = sorted(probed & set(_SPATIAL))
    sequence = not spatial
    if sequence:
        spatial = sorted(probed & set(_SEQUENCE))
    if not spatial:
        return
    low = max(known[d][0] for d in spatial)

    def size_of(dim: Any, size: int | dict[str, int], batch: int | None = None) -> int:
        if isinstance(dim, int):
            return dim
        if dim in spatial:
            return size[dim] if isinstance(size, dict) else size
        if dim == "batch" and batch is not None:
            return batch
        bounds = dims.get(dim, DEFAULT_DIMS.get(dim, (2, 2)))
        return max(2, bounds[0]) if isinstance(bounds, tuple) else 2

    def args_at(size: int | dict[str, int], batch: int | None = None) -> dict[str, Any]:
        return {
            name: _probe_tensor([size_of(d, size, batch) for d in shape], dtype, lambda d: size_of(d, size, batch))
            for name, (shape, dtype) in shapes.items()
        }

    def runs(size: int | dict[str, int], batch: int | None = None) -> Exception | None:
        # In both modes: the checks run the model in training too, where some models need
        # more (wav2vec2's training-time masking spans ten frames). Each call on a copy of
        # its own, as each check's example runs: a forward may change the model for the
        # calls after it (Swin shrinks its windows to an input smaller than them, for good).
        for training in (instance.training, not instance.training):
            error = _probe_call(instance, training=training, args=args_at(size, batch))
            if isinstance(error, NameError) and not isinstance(error, UnboundLocalError):
                # a mistake in the code at this size (a helper using `math` it never imported,
                # hourglass-transformer-pytorch's), not a size the model refuses: kept for the
                # checks to report, where narrowing the sizes hid it. Not an optional package
                # missing here (ImportError), nor a name left unbound at a small size.
                continue
            if error is not None:
                return error
        return None

    def keeps_elements(size: int) -> bool:
        # every floating output of an eval-mode call at this size has elements
        outputs = _outputs_of(clone(instance).eval(), args_at(size))
        return outputs is not None and all(
            value.numel() for value in outputs if isinstance(value, torch.Tensor) and value.is_floating_point()
        )

    failures: list[tuple[int, Exception]] = []
    # A forward argument the probes leave at its default None: a TypeError or AttributeError
    # on NoneType at every size is then that argument missing, and no size helps. Without
    # one, a None is the size's own doing (a table looked up by length), and sizes are tried.
    left_at_none = any(
        parameter.default is None and name not in shapes
        for name, parameter in _forward_parameters(instance).items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )

    def no_size_helps() -> bool:
        return left_at_none and all(_no_size_helps(e) for _, e in failures)

    def runs_at(size: int) -> bool:
        error = runs(size)
        if error is not None:
            failures.append((size, error))
        return error is None

    width = max(known[d][1] - known[d][0] for d in spatial)
    lowered = False
    if runs_at(low):
        if sequence:
            # a sequence is probed only when its shortest raises, and at its longest
            _probe_longest_sequence(spatial, known, low, runs, dims, why)
            return True
        size: int | None = low
        while size > 1 and runs(size - 1) is None and keeps_elements(size - 1):
            # below the first layer's reach: a model that pads its input itself (a causal
            # convolution's F.pad(x, (k - 1, 0)), pytorch-tcn's padding modules) runs on
            # shorter inputs too, where its edges are (and an output of no elements, a
            # transposed convolution's at height 2, is no size to draw)
            size -= 1
            lowered = True
    else:
        size = _smallest_running(runs_at, low, scan=lambda: not no_size_helps())
        if size is None and not sequence and not no_size_helps():
            # A Linear after the convolutions' flattened output takes one size only, maybe
            # beyond the sizes scanned (a DQN's 84x84 Atari frames): solved for from the
            # layers' arithmetic, then called.
            size = next((s for s in _flattened_sizes(instance, len(spatial)) if runs_at(s)), None)
    mono = {name for name, (shape, _) in shapes.items() if len(shape) > 2 and shape[1] == 1}
    if size is None and mono and not no_size_helps():
        # A single-channel convolution whose forward adds the channel axis itself (raw audio
        # as [batch, length], a grayscale image as [batch, height, width]): without it.
        given_shapes, error = dict(shapes), failures[0][1]
        shapes = {
            name: ((shape[0], *shape[2:]), dtype) if name in mono else (shape, dtype)
            for name, (shape, dtype) in shapes.items()
        }
        failures.clear()
        size = low if runs_at(low) else _smallest_running(
            runs_at, low, scan=lambda: not no_size_helps()
        )
        if size is None:
            return False
        for name in mono:
            shape = given_shapes[name][0]
            inputs[name] = _reshaped(inputs[name], shapes[name][0])
            inferred[name] += (
                f"; without its channel axis: on {list(shape)} it raised {type(error).__name__} "
                f"({one_line(error)}) at every size, on {list(shapes[name][0])} it ran (forward adds the axis)"
            )
    if size is None:
        return False  # no size runs: the model's own crash, which the checks report
    # The sizes from there on that run, as many as the range held: all of them for pooling
    # that needs a minimum size; a few for a Linear over the flattened features (sized for
    # one image); every 8th for a U-Net whose skip connections need sizes divisible by 8.
    sizes = [size]
    for other in range(size + 1, size + _LINEAR_PROBED + 1):
        if len(sizes) > width:
            break
        if runs_at(other):
            sizes.append(other)
    flipped = {
        name: (shape[0], shape[2], shape[1])
        for name, (shape, _) in shapes.items()
        if len(spatial) == 1 and width > 0 and sizes == [size] and len(shape) == 3
        and {shape[1], shape[2]} == {size, spatial[0]}
    }
    if flipped:
        # A convolution's channels first, when only a length equal to the channels ran: the
        # model takes [batch, length, channels] and transposes it on the way (Speech2Text's
        # subsampler), seen from here only as the Conv1d it reaches. Channels last, if that
        # runs at other lengths too. The other way round, steps before the features a
        # batch-first RNN or a Linear reads, when only as many steps as features ran: the
        # model takes [batch, features, steps] (tsai's RNN classifiers transpose it first).
        only = size
        given_shapes, given_failures = dict(shapes), list(failures)
        narrow = failures[0][1] if failures else None
        shapes = {name: (flipped.get(name, shape), dtype) for name, (shape, dtype) in shapes.items()}
        failures.clear()
        start = low if runs_at(low) else _smallest_running(runs_at, low)
        ran = [start] if start is not None else []
        for other in range(start + 1, start + width + 1) if start is not None else ():
            if runs_at(other):
                ran.append(other)
        if len(ran) > 1:
            size, sizes = ran[0], ran
            for name, shape in flipped.items():
                inputs[name] = _reshaped(inputs[name], shape)
                last = "channels" if given_shapes[name][0][1] == only else "steps"
                inferred[name] += (
                    f"; {last} last: as {list(given_shapes[name][0])} it ran at {spatial[0]} {only} "
                    + (f"only (elsewhere {type(narrow).__name__}: {one_line(narrow)})" if narrow is not None else "only")
                    + f", as {list(shape)} at several (the model transposes it on the way)"
                )
            if not failures:
                dims[spatial[0]] = (size, sizes[-1]) if sizes[-1] - size == len(sizes) - 1 else st.sampled_from(sizes)
                return True
        else:
            shapes, failures[:] = given_shapes, given_failures
    if failures and len(spatial) == 1 and not sequence:
        tied = _tie_to_sequence(shapes, spatial[0], given, low, width, runs_at, failures)
        if tied is not None:
            other, ran, error = tied
            for name, (shape, _) in shapes.items():
                if spatial[0] in shape:
                    inputs[name] = _reshaped(inputs[name], tuple(other if d == spatial[0] else d for d in shape))
                    inferred[name] += (
                        f"; its {spatial[0]} is the {other} of the inputs beside it: drawn apart, at {spatial[0]} "
                        f"{error[0]} and {other} {size_of(other, low)} it raised {type(error[1]).__name__} ({one_line(error[1])}); as one "
                        f"size it ran at {ran[0]}-{ran[-1]}"
                    )
            dims.pop(spatial[0], None)
            if ran != list(range(low, low + width + 1)):
                dims[other] = (ran[0], ran[-1]) if ran[-1] - ran[0] == len(ran) - 1 else st.sampled_from(ran)
            return True
    folded: list[tuple[int, Exception]] = []
    if failures and any("batch" in shape for shape, _ in shapes.values()):
        # A size that ran only because the batch folded into it: a reshape to
        # [-1, heads, landmarks, fixed_len // landmarks, d] runs a batch of 2 at half the
        # fixed length (Nystromformer's segment_means_seq_len). Each size must run at a
        # batch of 3 as well; when none does, the batch is the model's own trouble.
        folded = [(other, error) for other in sizes if (error := runs(other, batch=3)) is not None]
        if len(folded) < len(sizes):
            sizes = [other for other in sizes if other not in dict(folded)]
            size = sizes[0]
        else:
            folded = []
    square = None
    if len(spatial) > 1 and len(sizes) > 1:
        # Probed square so far: one size for each spatial dim apart (a windowed attention
        # that pads or partitions its height and width as one raises on 2x3).
        apart = {dim: sizes[0] if i == 0 else sizes[-1] for i, dim in enumerate(spatial)}
        square = runs(apart)
        if square is not None:
            shared = "height" if "height" in spatial else spatial[0]
            for name, (shape, dtype) in shapes.items():
                if any(d in spatial for d in shape):
                    inputs[name] = _reshaped(inputs[name], tuple(shared if d in spatial else d for d in shape))
            sides = " and ".join(f"{dim} {apart[dim]}" for dim in spatial)
            inferred[next(iter(shapes))] += (
                f"; square ({', '.join(spatial)} as one size {shared!r}): at {sides} it raised "
                f"{type(square).__name__} ({one_line(square)})"
            )
            spatial = [shared]
    if lowered and not failures and square is None:
        for dim in spatial:
            dims[dim] = (size, sizes[-1])
            why[dim] = (
                f"it ran at {size}-{sizes[-1]}, below {low}, which the first layer's kernel reaches (the model pads "
                "its input itself)"
            )
        return True
    if not failures and square is None:
        return True  # every size of the inferred range runs
    if not failures:
        dims[spatial[0]] = (size, sizes[-1])
        return True
    value: Any = (size, sizes[-1]) if sizes[-1] - size == len(sizes) - 1 else st.sampled_from(sizes)
    if sizes == list(range(size, size + width + 1)):
        ran = f"{size} is the smallest size that ran"
    elif len(sizes) == 1:
        ran = f"it ran at {size} only"
    elif isinstance(value, tuple):
        ran = f"it ran at {size}-{sizes[-1]} only"
    else:
        ran = f"it ran at {', '.join(map(str, sizes))}"
    failed, error = failures[0]
    for dim in spatial:
        dims[dim] = value
        why[dim] = f"at {' and '.join(spatial)} {failed} the model raised {type(error).__name__} ({one_line(error)}); {ran}"
        if folded:
            folding = folded[0][1]
            why[dim] += (
                f" (at {', '.join(str(f) for f, _ in folded)} with a batch of 2 only: with 3 it raised "
                f"{type(folding).__name__} ({one_line(folding)}), the batch folded into the {dim})"
            )
    return True


def _flattened_sizes(instance: nn.Module, rank: int, largest: int = 512) -> list[int]:
    """Square spatial sizes at which the model's convolutions and poolings, taken in the
    order they were registered, leave as many features as the Linear registered after them
    takes: its ``in_features`` equal to the last convolution's channels times the remaining
    size to the power ``rank`` (``Flatten`` then ``Linear(8 * 7 * 7)`` after three convolutions:
    84, ...). Arithmetic only; resolution calls the model at each."""
    modules = list(instance.modules())
    layers = [m for m in modules if isinstance(m, (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd,
                                                   nn.modules.pooling._AvgPoolNd))]
    convs = [m for m in layers if isinstance(m, nn.modules.conv._ConvNd)]
    if not convs or any(isinstance(m, nn.modules.conv._ConvTransposeNd) for m in convs):
        return []
    # the first Linear registered after the last convolution: the one that reads its output
    linear = next((m for m in modules[modules.index(convs[-1]) + 1:]
                   if isinstance(m, nn.Linear) and not isinstance(m, nn.LazyLinear)), None)
    if linear is None:
        return []
    channels = convs[-1].out_channels

    def first(value: Any) -> int:
        return int(value[0] if isinstance(value, (tuple, list)) else value)

    def after(size: int) -> int:
        for layer in layers:
            kernel, stride = first(layer.kernel_size), first(layer.stride or layer.kernel_size)
            padding = first(layer.padding) if not isinstance(layer.padding, str) else (kernel - 1) // 2
            dilation = first(getattr(layer, "dilation", 1))
            size = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
            if size < 1:
                return 0
        return size

    return [size for size in range(1, largest + 1) if (out := after(size)) and channels * out**rank == linear.in_features]


#: The note of done flags no layer reads, until their layout is tried (:func:`_episode_flags`).
_UNREAD_FLAG = "read by no layer"

#: Forward arguments that flag where an episode ended or began, as reinforcement learning
#: rollouts hand them to a recurrent policy (``hidden * (1 - done)``).
_EPISODE_FLAG_NAME = re.compile(
    r"^(dones?|terminals?|terminated|truncated|is_first|is_init|is_terminal|episode_starts?|resets?|not_done)$"
)


def _episode_flags(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]
) -> list[str]:
    """An inferred floating input named like an episode's done flags (``done``,
    ``episode_starts``, torchrl's ``is_init``) holds one flag per step and sample, 0 or 1:
    drawn with the step and batch axes of the sequence beside it (CleanRL's ``done``,
    inferred ``[time, batch, 8]`` from the LSTM its flags scale the state of, was reshaped
    into the wrong samples' flags, a false ``batch_invariance`` failure) and from 0 to 1,
    whatever range the layer it reaches suggested (a hidden state's [-1, 1]); as booleans
    where forward takes no floats there (``torch.where(is_init[t], ...)``). Each layout is
    kept only where the model runs on it, the layer's shape last, as before. Flags no layer
    reads that run as no tensor may be one Python bool (``if reset:``); the names of those
    that run as neither are returned, refused by the caller."""
    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind

    refused: list[str] = []
    for name in [n for n in inputs if n in inferred and _EPISODE_FLAG_NAME.match(n)]:
        kwargs = strategy_arguments(inputs[name])
        if strategy_kind(inputs[name]) != "tensors" or not kwargs.get("dtype", torch.float32).is_floating_point:
            continue
        shape = kwargs.get("shape")
        steps = _flag_axes(inputs, inferred, name)
        # one per step and sample, then one per sample (a sequence's episode start: sb3's
        # h0 * (1 - episode_starts).view(1, -1, 1)), then the layer's shape
        layouts = [
            layout for layout in dict.fromkeys([steps, ("batch",) if steps is not None else None])
            if layout is not None and layout != shape
        ]
        flags = dst.tensors(**{**kwargs, "min_value": 0.0, "max_value": 1.0})
        tried = [
            (layout, boolean) for boolean in (False, True) for layout in layouts
        ] + [(shape, False), (shape, True)]
        chosen = None
        for layout, boolean in tried:
            strategy = (
                dst.tensors(shape=layout, dtype=torch.bool) if boolean
                else dst.tensors(**{**kwargs, "shape": layout, "min_value": 0.0, "max_value": 1.0})
            )
            if _runs_on_simplest(instance, {**inputs, name: strategy}, dims):
                chosen = (layout, boolean, strategy)
                break
        unread = inferred[name] == _UNREAD_FLAG
        if chosen is None and unread and _runs_on_simplest(instance, {**inputs, name: dst.controls(dtype=bool)}, dims):
            # one flag for the whole call, tested in Python (if reset: h = h.new_zeros(...))
            inputs[name] = dst.controls(dtype=bool)
            inferred[name] = "named like an episode's done flags, read by no layer: a bool (tensors raised)"
            continue
        if chosen is None and unread:
            refused.append(name)
            continue
        if chosen is None:
            inputs[name] = flags
            inferred[name] += "; named like an episode's done flags: drawn from 0 to 1"
            continue
        layout, boolean, inputs[name] = chosen
        what = "booleans (it runs on no floats there)" if boolean else "from 0 to 1"
        if layout == shape:
            inferred[name] += f"; named like an episode's done flags: drawn {what}"
        else:
            per = "step and sample" if "time" in layout else "sample"
            inferred[name] = (
                f"named like an episode's done flags: one per {per}, {layout!r} as the input beside it "
                f"(not {shape!r}, the layer's it reaches), drawn {what}"
            )
    return refused


def _flag_axes(inputs: dict[str, Any], inferred: dict[str, str], flag: str) -> tuple | None:
    """The step and batch axes, in order, of the inferred sequence beside ``flag`` (the first
    input drawn with both), or the batch axis alone of one drawn ``[batch, F]``; None when
    there is neither."""
    from dyncheck.examples import strategy_arguments, strategy_kind

    shapes = [
        shape for name, strategy in inputs.items()
        if name != flag and name in inferred and not _EPISODE_FLAG_NAME.match(name)
        and strategy_kind(strategy) == "tensors" and isinstance(shape := strategy_arguments(strategy).get("shape"), tuple)
    ]
    for shape in shapes:
        if "time" in shape and "batch" in shape:
            return tuple(d for d in shape if d in ("time", "batch"))
    return next((("batch",) for shape in shapes if shape[:1] == ("batch",) and len(shape) == 2), None)


def _runs_on_simplest(instance: nn.Module, inputs: dict[str, Any], dims: dict[str, Any]) -> bool:
    """Whether the model runs on the simplest values ``inputs`` draw (zeros, or the nearest
    value allowed; lengths of the padded length; masks of all tokens) at a batch of 2 and 3
    steps where the ranges allow (at 1 and 1, any layout of flags broadcasts), every other
    size its smallest; False where an input is drawn otherwise than these make. Made by
    hand: drawn by Hypothesis here, before pytest loads its plugin, it warns."""
    sizes: dict[Any, int] = {}
    for dim, size in (("batch", 2), ("time", 3)):
        allowed = _allowed_sizes(dim, dims)
        sizes[dim] = next((s for s in allowed if s >= size), allowed[-1]) if allowed else size

    def size_of(dim: Any) -> int:
        if isinstance(dim, int):
            return dim
        return sizes[dim] if dim in sizes else _smallest_size(dim, dims)

    try:
        args = {name: _simplest(strategy, size_of) for name, strategy in inputs.items()}
    except _NotMade:
        return False
    return _probe_call(instance, args) is None


class _NotMade(Exception):
    """A strategy :func:`_simplest` does not make a value of."""


def _simplest(strategy: Any, size_of: Callable[[Any], int]) -> Any:
    """The simplest value of a dyncheck strategy (a tuple or dict of them too), its named
    sizes ``size_of`` gives; raises :class:`_NotMade` for any other strategy."""
    import torch

    from dyncheck.examples import strategy_arguments, strategy_entries, strategy_kind, strategy_members
    from dyncheck.strategies import _length_plan, _mask_plan

    kind, kwargs = strategy_kind(strategy), strategy_arguments(strategy)
    if kind == "tensors":
        dtype = kwargs.get("dtype", torch.float32)
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        fill = low if low is not None and low > 0 else high if high is not None and high < 0 else 0
        return torch.full([size_of(d) for d in kwargs.get("shape", ())], fill, dtype=dtype)
    if kind == "controls":
        return _control_value(kwargs)
    if kind == "sequence_lengths":
        batch, longest, _, _, _, relative = _length_plan(**kwargs)
        return _probe_tensor([size_of(batch)], ("lengths", longest, relative), size_of)
    if kind == "attention_masks":
        _, longest, _, dtype, at_padding = _mask_plan(**kwargs)
        batch = kwargs.get("batch_size", "batch")
        return _probe_tensor([size_of(batch), size_of(longest)], ("mask", dtype, at_padding), size_of)
    if members := strategy_members(strategy):
        return tuple(_simplest(member, size_of) for member in members)
    if entries := strategy_entries(strategy):
        return {key: _simplest(entry, size_of) for key, entry in entries.items()}
    if type(strategy).__name__ == "JustStrategy":  # st.just(v): an argument passed as it is
        return strategy.value
    if getattr(getattr(strategy, "function", None), "__name__", None) == "none":  # st.none(), not evaluated here
        return None
    raise _NotMade


def _lengths_along(inputs: dict[str, Any], inferred: dict[str, str]) -> None:
    """Inferred lengths (drawn against ``"time"``) beside a sequence whose padded axis has
    another name: an input a ``Conv1d`` reads is ``("batch", "length", channels)`` (or
    channels first), and lengths drawn for an unrelated ``"time"`` would not describe it
    (they could exceed it, and padding_invariance would pad nothing). When no input has
    the lengths' axis and exactly one has a ``"length"`` axis, the lengths are drawn for it."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind

    names = [name for name in inputs if name in inferred and strategy_kind(inputs[name]) == "sequence_lengths"]
    if len(names) != 1:
        return
    (name,) = names
    kwargs = strategy_arguments(inputs[name])
    time = kwargs.get("max_length", "time")
    axes = {
        other: {d for d in shape if isinstance(d, str)}
        for other, strategy in inputs.items()
        if other != name and isinstance(shape := strategy_arguments(strategy).get("shape"), tuple)
    }
    if any(time in found for found in axes.values()):
        return
    holders = [other for other, found in axes.items() if "length" in found]
    if len(holders) != 1:
        return
    inputs[name] = dst.sequence_lengths(**{**kwargs, "max_length": "length"})
    inferred[name] = inferred[name].replace(
        "the padded length 'time'", f"the padded length 'length' ({holders[0]}'s sequence axis)"
    )


#: The most steps :func:`_probe_relative` pads its probes to, where the spec allows them.
_RELATIVE_PROBED = 8


def _probe_relative(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """Inferred sequence lengths that are fractions of the padded length (SpeechBrain's
    ``wav_lens``, where 1.0 and anything above it mean every step): drawn as whole numbers
    of steps, every padded row would run all its steps and padding_invariance would report
    the padding as read. When :func:`_reads_fractions` says the model reads them so, they
    are drawn with ``relative=True``, and with ``pad_to_longest=True`` as SpeechBrain makes
    them: it divides a batch's lengths by its longest, so one is always 1.0 (a mask as wide
    as the longest row, ``length_to_mask(abs_len)`` without ``max_len``, raises on others;
    an RNN's output as long as the longest row is not the padded length). ``inferred`` says
    why. For inferred lengths beside inputs inferred or given as ``tensors()``; called
    before the probes of sizes (whose calls then give the lengths at 1.0) and again after
    them (an input's shape they found may be what the model needed)."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind

    # a Spec that gives the other inputs (tensors() of named shapes) still leaves the lengths to this
    shapes = _inferred_tensors(inputs, inferred, tokens=True, given=True)
    names = [n for n in shapes or () if strategy_kind(inputs[n]) == "sequence_lengths"]
    if len(names) != 1 or names[0] not in inferred:
        return
    (name,) = names
    kwargs = strategy_arguments(inputs[name])
    if kwargs.get("pad_to_longest") or kwargs.get("descending") or kwargs.get("relative"):
        return  # relative already, or whole numbers a model raised on otherwise: steps
    time = shapes[name][1][1]
    # The most steps up to 8 the spec allows (3 at least): at 2, a mask off by one
    # (arange(T) <= lengths) keeps both steps for lengths 1 and 2, as relative lengths would;
    # and a model that pools time by 2 before its RNN truncates 2/4 and 3/4 of 4 steps to the
    # same frame, where 4/8 and 7/8 of 8 are two
    room = [size for size in _allowed_sizes(time, dims) if size >= 3]
    if not room:
        return
    padded = max((size for size in room if size <= _RELATIVE_PROBED), default=room[0])
    args = _padded_probe(shapes, time, padded, dims)
    if args[name].dim() != 1 or len(args[name]) < 2:
        return
    found = _reads_fractions(clone(instance).eval(), args, name, padded, len(args[name]))
    if found is None:
        return
    inputs[name] = dst.sequence_lengths(**{**kwargs, "relative": True, "pad_to_longest": True})
    inferred[name] += f"; {RELATIVE_NOTE}: {found}"


#: What the note of inferred relative lengths says they are.
RELATIVE_NOTE = (
    "drawn as relative lengths (relative=True), fractions of the padded length as SpeechBrain's wav_lens are, "
    "the longest always 1.0 (pad_to_longest=True), as SpeechBrain divides a batch's lengths by its longest"
)


def _reads_fractions(model: nn.Module, args: dict[str, Any], name: str, padded: int, batch: int) -> str | None:
    """Whether ``model`` (resolution's copy, in eval mode) reads the lengths ``name`` as
    fractions of the ``padded`` steps of ``args`` (a batch of ``batch``), and the note's
    words when so: lengths 1.0 give an output, and 1 and ``padded`` the same or raise (every
    step; a mask ``padded`` times too wide; whole numbers refused, a mask in the lengths'
    dtype used by ``einsum``); and with the first row at 1.0, the others at half the steps
    and at all but one give two other outputs. Steps give another output at ``padded`` than
    at 1; a model that ignores its lengths, or counts whole steps (both fractions below one
    step: none or one), gives one output for both fractions; one that refuses fractions
    raises."""
    import torch

    def outputs(lengths: torch.Tensor) -> list[Any] | None:
        return _outputs_of(model, {**args, name: lengths})

    whole = outputs(torch.ones(batch))
    if whole is None:
        return None
    at_one = outputs(torch.ones(batch, dtype=torch.long))
    at_padded = outputs(torch.full((batch,), padded, dtype=torch.long))
    if any(found is not None and not _same_floats(found, whole) for found in (at_one, at_padded)):
        return None
    half, most = padded // 2, padded - 1
    fewer, more = torch.ones(batch), torch.ones(batch)
    fewer[1:], more[1:] = half / padded, most / padded
    read_fewer, read_more = outputs(fewer), outputs(more)
    if read_fewer is None or read_more is None or _same_floats(read_fewer, read_more):
        return None
    if at_one is None:  # whole numbers refused (a mask in the lengths' dtype, used by einsum)
        said = "lengths 1.0 gave an output, and whole numbers raised"
    else:
        said = f"lengths 1 and 1.0 gave one output ({f'as did {padded}' if at_padded is not None else f'{padded} raised'})"
    return f"at {padded} padded steps, {said}, and rows at {half}/{padded} and {most}/{padded} two others"


def _same_floats(a: list[Any] | None, b: list[Any] | None) -> bool:
    """Whether every floating output of ``a`` equals ``b``'s, one at least (an output of the
    lengths themselves, whole numbers or fractions, aside); False where either raised."""
    import torch

    if a is None or b is None or len(a) != len(b):
        return False
    pairs = [
        (x, y) for x, y in zip(a, b)
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.is_floating_point() and y.is_floating_point()
    ]
    return bool(pairs) and all(
        x.shape == y.shape and x.dtype == y.dtype and torch.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True)
        for x, y in pairs
    )


#: how an inferred dimension capped below the range asked for says so: a bug that raises
#: only at longer sizes is not looked for, and the run's summary says that too
LONGEST_THAT_RAN = "is the longest that ran (a model built for a longest length)"


def _probe_longest_sequence(
    spatial: list[str], known: dict[str, Any], low: int, runs: Callable[[int], Exception | None],
    dims: dict[str, Any], why: dict[str, str],
) -> None:
    """An inferred sequence whose shortest runs, called at its longest: a model built for a
    longest length (a table of learned positions of ``seq_len`` rows, ``assert n <=
    self.seq_len``, recurrent-memory-transformer's) raised there on every check. Where the
    longest raises, the steps are drawn up to the longest that ran, and ``why`` says so."""
    if len(spatial) != 1:
        return
    (dim,) = spatial
    top = known[dim][1]
    error = runs(top) if top > low else None
    if error is None:
        return
    longest = next((size for size in range(top - 1, low - 1, -1) if runs(size) is None), None)
    if longest is None:
        return  # only the shortest runs: the checks say what the longer raise
    dims[dim] = (known[dim][0], longest)
    said = one_line(error)
    why[dim] = (
        f"at {dim} {top} the model raised {type(error).__name__}{'' if said == '(no message)' else f' ({said})'}; "
        f"{longest} {LONGEST_THAT_RAN}"
    )


def _probe_longest(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """Inferred sequence lengths whose longest must be the padded length: a model that
    builds its padding mask as ``arange(lengths.max())`` (torchaudio's ``Conformer``) raises
    on a batch padded past its longest sequence, which ``pad_sequence`` never makes, and
    every check would report that crash. The model is called with every sequence as long
    as the padded length, then with each one step shorter; when the first runs and the
    second raises, the lengths are drawn with ``pad_to_longest=True`` and ``inferred``
    says why. Only for inputs all inferred (as :func:`_probe_sizes`)."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    found = _lengths_probe(inputs, inferred, dims, "pad_to_longest")
    if found is None:
        return
    name, padded, args = found
    if _probe_call(instance, args) is not None:
        return  # the full batch raises too: the model's own trouble, which the checks report
    error = _probe_call(instance, {**args, name: args[name] - 1})
    if error is None:
        shapes = _inferred_tensors(inputs, inferred, tokens=True)
        if shapes is not None and _reads_past_longest(instance, shapes, shapes_time(inputs, name), name, args):
            inputs[name] = dst.sequence_lengths(**{**strategy_arguments(inputs[name]), "pad_to_longest": True})
            inferred[name] += (
                "; the longest always the padded length (pad_to_longest=True): a step of padding past the "
                "longest sequence changed every row's output, while a row one step shorter than the longest gave "
                "its output alone (the model reads the steps past the longest as data, as torchaudio's Emformer "
                "reads them as right context)"
            )
        return
    longer = [size for size in _allowed_sizes(shapes_time(inputs, name), dims) if size > padded][:_LONGER_PROBED]
    shapes = _inferred_tensors(inputs, inferred, tokens=True)

    def shorter_runs(size: int) -> bool:
        wider = _padded_probe(shapes, shapes_time(inputs, name), size, dims)
        return _probe_call(instance, {**wider, name: wider[name] - 1}) is None

    if len(longer) == _LONGER_PROBED and all(shorter_runs(size) for size in longer):
        # One step shorter runs at each of the longer padded lengths: the shorter sequences
        # were too short for the model (a convolution's kernel), not shorter than their
        # batch's padding; _probe_shortest_row finds how short they may be. At one length
        # alone a strided layer can round both to one frame (ESPnet's make_pad_mask over
        # subsampled lengths), so three are asked.
        return
    inputs[name] = dst.sequence_lengths(**{**strategy_arguments(inputs[name]), "pad_to_longest": True})
    inferred[name] += (
        f"; the longest always the padded length (pad_to_longest=True): with every sequence one step shorter "
        f"than the padded length {padded} it raised {type(error).__name__} ({one_line(error)})"
    )


def _reads_past_longest(
    instance: nn.Module, shapes: dict[str, tuple[tuple, Any]], time: Any, name: str, full: dict[str, Any]
) -> bool:
    """Whether a model whose lengths ``name`` may be shorter than the padded length (the
    call ran) reads the steps past the longest sequence as data, while it leaves a shorter
    row's own padding alone: a batch ``full`` (every sequence the padded length) and the
    same batch with one more step of padding give other outputs on their shared steps, and
    a row one step shorter than the longest gives in the batch what it gives alone. Then
    the model's lengths contract is that the longest fills the batch (what ``pad_sequence``
    makes): torchaudio's Emformer counts the steps past the longest as right context, and a
    batch of one takes no mask at all. A model that reads a shorter row's padding too is
    left to padding_invariance to report. Calls in eval mode, under one seed; False where
    any call raises or the outputs cannot be lined up."""
    import torch

    padded = int(full[name].max())
    axes = {n: [i for i, d in enumerate(shape) if d == time] for n, (shape, _) in shapes.items() if n != name}
    if not all(len(found) == 1 for found in axes.values()) or not all(
        len(shape) >= 2 and shape[0] == "batch" for n, (shape, _) in shapes.items() if n != name
    ):
        return False  # the padded axis and the batch axis of each input, read one way

    def padded_by_one(value: torch.Tensor, axis: int) -> torch.Tensor:
        step = torch.zeros_like(value.narrow(axis, 0, 1))
        return torch.cat([value, step], axis)

    def first_output(args: dict[str, Any]) -> torch.Tensor | None:
        return _first_output(clone(instance).eval(), args)  # None: a call that raises says nothing here

    def agree(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
        if a is None or b is None or a.dim() != b.dim() or not a.is_floating_point():
            return False
        for axis in range(a.dim()):
            size = min(a.shape[axis], b.shape[axis])
            a, b = a.narrow(axis, 0, size), b.narrow(axis, 0, size)
        return bool(torch.allclose(a, b, rtol=1e-4, atol=1e-5))

    wider = {n: padded_by_one(v, axes[n][0]) if n in axes else v for n, v in full.items()}
    batch = first_output(full)
    if batch is None or batch.dim() == 0 or batch.shape[0] != len(full[name]) or agree(batch, first_output(wider)):
        return False
    shorter = full[name].clone()
    shorter[1:] = padded - 1
    within = first_output({**full, name: shorter})
    alone = first_output({
        n: shorter[1:2] if n == name else v[1:2].narrow(axes[n][0], 0, padded - 1) for n, v in full.items()
    })
    return within is not None and agree(within[1:2], alone)


#: How many padded lengths above the smallest :func:`_probe_longest` calls one step shorter.
_LONGER_PROBED = 3


def shapes_time(inputs: dict[str, Any], name: str) -> Any:
    """The padded length's dimension of the inferred lengths ``name``."""
    from dyncheck.examples import strategy_arguments

    return strategy_arguments(inputs[name]).get("max_length", "time")


def _lengths_probe(
    inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any], flag: str
) -> tuple[str, int, dict[str, Any]] | None:
    """For the probes of inferred sequence lengths: the one lengths input (not drawn with
    ``flag`` already), the smallest padded length of 2 or more the spec allows (room for two
    different lengths), and probe inputs at it, every sequence of that length. None when
    the inputs are not all inferred, or no such input or length exists."""
    from dyncheck.examples import strategy_arguments, strategy_kind

    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return None
    names = [name for name in shapes if strategy_kind(inputs[name]) == "sequence_lengths"]
    if len(names) != 1 or strategy_arguments(inputs[names[0]]).get(flag):
        return None
    if strategy_arguments(inputs[names[0]]).get("relative"):
        return None  # fractions: the probes below step whole numbers
    (name,) = names
    time = shapes[name][1][1]
    room = [size for size in _allowed_sizes(time, dims) if size >= 2]
    if not room:
        return None
    return name, room[0], _padded_probe(shapes, time, room[0], dims)


def _probe_sorted(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """Inferred sequence lengths a model takes only longest first: ``pack_padded_sequence``
    with ``enforce_sorted=True`` (its default) raises on any other order, which a collate
    function that sorts the batch never gives, and every check would report that crash.
    The model is called with a batch of two whose lengths go shortest first, then the same
    lengths longest first; when the first raises and the second runs, the lengths are drawn
    with ``descending=True`` and ``inferred`` says why. Only for inputs all inferred (as
    :func:`_probe_sizes`)."""
    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    found = _lengths_probe(inputs, inferred, dims, "descending")
    if found is None:
        return
    name, padded, args = found
    lengths = args[name]
    if lengths.dim() != 1 or len(lengths) < 2:
        return
    longest_first = torch.full_like(lengths, padded - 1)
    longest_first[0] = padded
    error = _probe_call(instance, {**args, name: longest_first.flip(0)})
    if error is None or _probe_call(instance, {**args, name: longest_first}) is not None:
        return
    inputs[name] = dst.sequence_lengths(**{**strategy_arguments(inputs[name]), "descending": True})
    inferred[name] += (
        f"; longest first (descending=True): with the shortest first it raised {type(error).__name__} "
        f"({one_line(error)})"
    )


def _probe_shortest_row(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """An inferred attention mask (or lengths) whose rows need more than one token: an
    audio model's convolutions turn a row of a few valid samples into no frame at all, and
    Hugging Face's wav2vec2 then raises ("index -2 is out of bounds"), a CTC model's
    subsampling gives a row no output length; every check would report that crash. At the
    smallest padded length the spec allows, the model is called with the first row cut to
    1, 2, ... valid steps (the others full); when 1 raises and a longer one runs, the mask
    (or lengths) is drawn with that ``min_length`` and ``inferred`` says why. Only for
    inputs all inferred (as :func:`_probe_sizes`)."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind

    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None:
        return
    names = [name for name in shapes if strategy_kind(inputs[name]) in ("attention_masks", "sequence_lengths")]
    if len(names) != 1 or strategy_arguments(inputs[names[0]]).get("min_length", 1) != 1:
        return
    (name,) = names
    kwargs = strategy_arguments(inputs[name])
    lengths = strategy_kind(inputs[name]) == "sequence_lengths"
    if kwargs.get("padding_side", "right") != "right" or kwargs.get("pad_to_longest") or kwargs.get("relative"):
        return
    time = kwargs.get("max_length", "time")
    padded = _smallest_size(time, dims)
    if padded < 2:
        return
    args = _padded_probe(shapes, time, padded, dims)
    if _probe_call(instance, args) is not None:
        return  # the full mask raises too: the model's own trouble, which the checks report

    def runs(valid: int) -> Exception | None:
        cut = args[name].clone()
        if lengths:
            cut[0] = valid
        else:
            cut[0, valid:] = 1 if shapes[name][1][2] else 0  # padding: True (key padding) or 0 (tokens)
        return _probe_call(instance, {**args, name: cut})

    error = runs(1)
    if error is None:
        return
    shortest = next((valid for valid in range(2, padded + 1) if runs(valid) is None), None)
    if shortest is None:
        return
    inputs[name] = (dst.sequence_lengths if lengths else dst.attention_masks)(**{**kwargs, "min_length": shortest})
    inferred[name] += (
        f"; at least {shortest} valid a row (min_length={shortest}): with 1 it raised {type(error).__name__} "
        f"({one_line(error)})"
    )


def _probe_equal_lengths(instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any]) -> None:
    """An inferred list of sequences the model takes only at one length: it stacks the
    list (``torch.stack(seqs)``) where a collate function gave it sequences of one length,
    and every check would report the crash of a ragged list. The model is called with two
    sequences of lengths 3 and 2, then two of length 3 (the other inputs at their smallest
    sizes, a batch of 2); when the first raises and the second runs, the list is drawn with
    ``equal_lengths=True`` and ``inferred`` says why. Only for inputs all inferred."""
    import torch

    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments, strategy_kind

    names = [n for n in inputs if strategy_kind(inputs[n]) == "sequence_lists"]
    if len(names) != 1 or names[0] not in inferred or set(inputs) - set(inferred):
        return
    (name,) = names
    kwargs = strategy_arguments(inputs[name])
    if kwargs.get("equal_lengths") or kwargs.get("dtype", torch.float32) != torch.float32:
        return
    rest = {n: v for n, v in inputs.items() if n != name}
    shapes = _inferred_tensors(rest, inferred, tokens=True) if rest else {}
    if shapes is None or any(
        shape[:1] != ("batch",) for shape, dtype in shapes.values() if not (isinstance(dtype, tuple) and dtype[0] == "control")
    ):
        return  # a batch of 2 beside the list's two sequences, read one way (control values at their probe value)
    args = _padded_probe(shapes, None, 0, dims)
    features = [_smallest_size(d, dims) for d in kwargs.get("feature_shape", ())]

    def listed(*lengths: int) -> list[torch.Tensor]:
        return [torch.randn(length, *features) for length in lengths]

    error = _probe_call(instance, {**args, name: listed(3, 2)})
    if error is None or _probe_call(instance, {**args, name: listed(3, 3)}) is not None:
        return
    inputs[name] = dst.sequence_lists(**{**kwargs, "equal_lengths": True})
    # its own length no more: the note as resolution first wrote it, then why
    inferred[name] = inferred[name].replace("one sequence of its own length per sample", "one sequence per sample") + (
        f"; every sequence of one length (equal_lengths=True): on sequences of lengths 3 and 2 it raised "
        f"{type(error).__name__} ({one_line(error)}), on two of length 3 it ran"
    )


def _probe_single_sample(
    instance: nn.Module, inputs: dict[str, Any], inferred: dict[str, str], dims: dict[str, Any], why: dict[str, str],
) -> None:
    """A batch of at least 2 for a model that, in train mode, gives finite outputs on a batch
    of two and NaN or inf on its first sample alone: statistics over the batch written by hand (a flow
    library's own batch norm, ``inputs.var(0)`` of one sample), which torch's BatchNorm
    refuses outright (:func:`~dyncheck.infer.forward.infer_dims`). Every check would report
    that NaN. Only for inputs all inferred (control values at their probe value), where the
    batch may be 1; ``dims`` and ``why`` are updated in place."""
    from dyncheck.strategies import DEFAULT_DIMS

    bounds = dims.get("batch", DEFAULT_DIMS["batch"])
    if not (isinstance(bounds, tuple) and bounds[0] == 1):
        return
    shapes = _inferred_tensors(inputs, inferred, tokens=True)
    if shapes is None or not any(shape[:1] == ("batch",) for shape, _ in shapes.values()):
        return

    pair = _padded_probe(shapes, None, 0, dims)  # a batch of 2, every other size its smallest
    if probing.call(instance, pair, seed=BUILD_SEED, training=True, finite=True) is not None:
        return
    # the pair's first sample alone: NaN there is the batch's size, not the sample's values
    alone = {n: value[:1] if shapes[n][0][:1] == ("batch",) else value for n, value in pair.items()}
    found = probing.call(instance, alone, seed=BUILD_SEED, training=True, finite=True)
    if found is None or type(found).__name__ != probing.NonFiniteOutput.__name__:  # or its replayed stand-in
        return
    dims["batch"] = (2, max(2, bounds[1]))
    why["batch"] = (
        "in train mode a sample alone gave NaN or inf where in a batch of 2 it did not: statistics over the "
        "batch (a variance of one sample)"
    )


def _tie_to_sequence(
    shapes: dict[str, Any], dim: str, given: set[str], low: int, width: int,
    runs_at: Callable[[int], bool], failures: list[tuple[int, Exception]],
) -> tuple[str, list[int], tuple[int, Exception]] | None:
    """A spatial dimension that is another input's sequence: a value embedding's Conv1d
    over ``[batch, length, channels]`` added to a time-feature embedding's Linear over
    ``[batch, time, 4]`` (Informer's ``x_enc`` and ``x_mark_enc``) runs only where the two
    sizes meet, so drawn apart the probe found the length limited to the size the time was
    probed at. Tried as one size (the sequence's name): (that name, the sizes that ran, the
    first failure apart) when more sizes run so than apart, else None. ``shapes`` is
    updated in place only while the sizes are tried."""
    others = sorted({
        d for shape, _ in shapes.values() for d in shape
        if isinstance(d, str) and d in _SEQUENCE and d != dim and d not in given
    })
    apart = len(range(low, low + width + 1)) - len(failures)
    first = failures[0]
    for other in others:
        saved, saved_failures = dict(shapes), list(failures)
        for name, (shape, dtype) in saved.items():
            shapes[name] = (tuple(dim if d == other else d for d in shape), dtype)
        failures.clear()
        ran = [size for size in range(low, low + width + 1) if runs_at(size)]
        shapes.clear()
        shapes.update(saved)
        failures[:] = saved_failures
        if len(ran) > max(apart, 1):
            return other, ran, first
    return None


def _reshaped(strategy: Any, shape: tuple[Any, ...]) -> Any:
    """An inferred ``tensors(...)`` strategy with another shape, its other arguments kept."""
    from dyncheck import strategies as dst
    from dyncheck.examples import strategy_arguments

    return dst.tensors(**{**strategy_arguments(strategy), "shape": shape})


def _smallest_running(runs: Callable[[int], bool], low: int, *, scan: Callable[[], bool] = lambda: True) -> int | None:
    """The smallest spatial size above ``low`` at which the model ``runs``: doubling,
    then bisecting (pooling that needs a minimum size runs at every size above it). When
    no doubled size runs, each size up to :data:`_LINEAR_PROBED` in turn (a head sized for
    one input size runs at a few sizes only), unless ``scan()`` says no size can help. None
    when none runs."""
    failed, size = low, low * 2
    while size <= _LARGEST_PROBED:
        if runs(size):
            while size - failed > 1:
                middle = (failed + size) // 2
                failed, size = (failed, middle) if runs(middle) else (middle, size)
            return size
        failed, size = size, size * 2
    if not scan():
        return None
    tried = {low * 2**k for k in range(_LARGEST_PROBED.bit_length())}
    for size in range(low + 1, _LINEAR_PROBED + 1):
        if size not in tried and runs(size):
            return size
    return None


def _no_size_helps(error: Exception) -> bool:
    """Whether ``error`` is a None reaching a tensor operation (``linear(): argument 'input'
    must be Tensor, not NoneType``), read from its class and first line only: what a
    replayed probe (:mod:`dyncheck.probing`) keeps of it, so every process decides alike."""
    return isinstance(error, (TypeError, AttributeError)) and "NoneType" in one_line(error)


def _forward_parameters(instance: nn.Module) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(instance.forward).parameters)
    except (TypeError, ValueError):
        return {}


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def _check_names(text: str, spec: Spec, instance: nn.Module) -> None:
    modules = [name for name, _ in instance.named_modules() if name]
    for field_name, names in (("branches", spec.branches), ("unused", spec.unused)):
        for module_name in names:
            if module_name not in modules:
                raise _fail(
                    text,
                    f"Spec({field_name}=...) names module {module_name!r}, which "
                    f"{type(instance).__qualname__} does not have{_close(module_name, modules)}",
                )
    parameters = [name for name, _ in instance.named_parameters(remove_duplicate=False)]
    for group in spec.ties:
        for name in group:
            if name not in parameters:
                raise _fail(
                    text,
                    f"Spec(ties=...) names parameter {name!r}, which "
                    f"{type(instance).__qualname__} does not have{_close(name, parameters)}",
                )
    for name in spec.frozen:
        if name not in parameters:
            raise _fail(
                text,
                f"Spec(frozen=...) names parameter {name!r}, which "
                f"{type(instance).__qualname__} does not have{_close(name, parameters)}",
            )


def _check_predicate(
    text: str, module_name: str, predicate: Callable[..., Any], parameters: dict[str, Any]
) -> None:
    try:
        taken = inspect.signature(predicate).parameters
    except (TypeError, ValueError):
        return
    for name, parameter in taken.items():
        # one with a default is the predicate's own (lambda task, i=i: task == i, made in a loop)
        if name not in parameters and parameter.default is inspect.Parameter.empty:
            raise _fail(
                text,
                f"Spec(branches={{{module_name!r}: ...}}): the predicate takes {name!r}, which is "
                f"not a forward argument (forward takes {', '.join(parameters) or 'nothing'})",
            )


def import_path_for_targets() -> None:
    """Make the current directory importable, as ``python -m`` does."""
    import os

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
