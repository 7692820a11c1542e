"""tied_weights: a tie is one Parameter, and stays one through training and transformations.

Weight tying breaks silently in real code: a tie made by cloning, a re-initialisation that
assigns a fresh Parameter, a tie made lazily in forward, ``.data`` aliasing that keeps the
values equal while the optimizer updates twice, ``load_state_dict(assign=True)`` losing the
tie, a tie through a closure that makes every copy compute with (and train) the original.

Tie groups are found by identity (``named_parameters(remove_duplicate=False)``) and
declared with ``Spec(ties=[...])``. For every example dyncheck checks that

1. a deep copy of the model as the user hands it over (class, factory or instance) computes
   with its own parameters, not the original's (:mod:`dyncheck.copies`);
2. every declared group is one Parameter object (naming the name that broke away), and no
   two distinct trainable Parameters look like a broken tie: identical values, a transposed
   copy, or shared storage;
3. forward does not change which Parameter a name refers to;
4. through optimizer steps (SGD, SGD with Nesterov momentum, Adam, AdamW with weight decay,
   and the spec's optimizer) each group stays one object, bitwise equal, one storage, and
   each shared Parameter is in the optimizer once (two steps on the first example of each
   path and set of parameters the loss reaches: what a step does to a tie depends on which
   parameters get gradients, not on their values);
5. ties survive ``.to(torch.float64)`` and back, ``copy.deepcopy``, ``load_state_dict`` into
   a fresh instance, and ``torch.save``/``torch.load(weights_only=True)`` of the state_dict.
   ``load_state_dict(assign=True)`` unties every tied model unless it re-ties after
   loading: a warning with the fix, or a failure with ``Spec(load_with_assign=True)``.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from dyncheck.casting import cast
from dyncheck.copies import Copies, finding, original_model, reached_by_copy, verdict
from dyncheck.errors import DyncheckWarning, InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant

__all__ = ["TiedWeights", "tie_groups", "training_optimizers"]


def training_optimizers() -> dict[str, Callable[[Any], torch.optim.Optimizer]]:
    """The optimizers a tie must survive: plain, momentum with Nesterov, adaptive, and
    decoupled weight decay."""
    return {
        "SGD": lambda params: torch.optim.SGD(params, lr=0.01),
        "SGD(momentum=0.9, nesterov=True)": lambda params: torch.optim.SGD(
            params, lr=0.01, momentum=0.9, nesterov=True
        ),
        "Adam": lambda params: torch.optim.Adam(params, lr=1e-3),
        "AdamW(weight_decay=0.01)": lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01),
    }


def tie_groups(model: nn.Module) -> list[tuple[str, ...]]:
    """Names that refer to one Parameter object, for each Parameter with several names."""
    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    return [tuple(group) for group in names.values() if len(group) > 1]


def _group_problem(model: nn.Module, group: tuple[str, ...]) -> str | None:
    """Why ``group`` is not one tie in ``model`` (None when it is)."""
    try:
        parameters = [model.get_parameter(name) for name in group]
    except AttributeError as exc:
        return f"{exc}"
    first = parameters[0]
    if all(p is first for p in parameters):
        return None
    # Name the ones that broke away from the object most names still share.
    counts: dict[int, int] = {}
    for p in parameters:
        counts[id(p)] = counts.get(id(p), 0) + 1
    main = max(counts, key=lambda key: counts[key])
    away = [n for n, p in zip(group, parameters) if id(p) != main]
    kept = [n for n, p in zip(group, parameters) if id(p) == main]
    if list(counts.values()).count(counts[main]) > 1:  # no majority to break away from
        how = _how(parameters[0], parameters[1])
        hint = (
            " (a Parameter assigned to one of the names after tying, e.g. in a re-initialisation)"
            if how == "two different Parameters" else ""
        )
        return f"{' and '.join(group)} should be one Parameter but are {how}{hint}"
    p_away = parameters[group.index(away[0])]
    p_kept = parameters[group.index(kept[0])]
    return f"{', '.join(away)} broke away from {', '.join(kept)}: {_how(p_away, p_kept)}"


def _how(a: nn.Parameter, b: nn.Parameter) -> str:
    if a.shape == b.shape and torch.equal(a.detach(), b.detach()):
        if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr():
            return "two Parameters sharing one storage"
        return "two Parameters with equal values"
    return "two different Parameters"


def _replicas(model: nn.Module, name_a: str, name_b: str) -> bool:
    """Whether ``name_a`` and ``name_b`` are the same parameter of two modules of one type
    whose every parameter is equal: a module copied whole, as ``copy.deepcopy(layer)`` and
    ``nn.TransformerEncoder``'s clones do, to give independent layers the same start. That
    is not a tie made by copying; a copied tie copies one Parameter into another kind of
    module, or into one whose other parameters differ."""
    parts_a, parts_b = name_a.split("."), name_b.split(".")
    for keep in range(1, min(len(parts_a), len(parts_b))):
        if parts_a[-keep:] != parts_b[-keep:]:
            return False
        prefix_a, prefix_b = ".".join(parts_a[:-keep]), ".".join(parts_b[:-keep])
        if prefix_a == prefix_b:
            return False
        module_a, module_b = model.get_submodule(prefix_a), model.get_submodule(prefix_b)
        if type(module_a) is not type(module_b):
            continue
        params_a, params_b = dict(module_a.named_parameters()), dict(module_b.named_parameters())
        if params_a.keys() == params_b.keys() and all(
            params_a[k].shape == params_b[k].shape and torch.equal(params_a[k].detach(), params_b[k].detach())
            for k in params_a
        ):
            return True
    return False


def _structured(values: torch.Tensor) -> bool:
    """Whether ``values`` repeat (at most half of them distinct): an initialisation built
    from a formula, such as ``log(arange(1, n + 1))`` repeated for every channel (Mamba's
    ``A_log``), which every layer gets alike. A random initialisation, the kind a copied tie
    copies, has nearly all its values distinct."""
    return torch.unique(values).numel() * 2 <= values.numel()


#: The seed of the second build that tells an initialisation by a formula (the same values
#: under any seed) from a drawn one (see :func:`_lookalikes`).
_OTHER_SEED = 2**31 - 7


def _load_but_lazy(model: nn.Module, state: dict[str, Any], lazy: set[str], *, assign: bool = False) -> None:
    """``model.load_state_dict(state)``, strictly but for the keys in ``lazy`` (parameters a
    lazy layer has not materialised, which ``state`` leaves out): any other missing or
    unexpected key raises, as a strict load does."""
    if not lazy:
        model.load_state_dict(state, assign=assign)
        return
    result = model.load_state_dict(state, strict=False, assign=assign)
    missing = [k for k in result.missing_keys if k not in lazy]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(model).__name__}: missing keys {missing}, "
            f"unexpected keys {list(result.unexpected_keys)}"
        )


def _built_unseeded(target: Any) -> nn.Module:
    """A build under another seed, the factory's own ``torch.manual_seed(...)`` calls doing
    nothing: a factory that seeds torch before building (for reproducibility, as many do)
    gave every parameter again under any seed, and a copied tie passed as a formula."""
    saved = torch.manual_seed, torch.random.manual_seed

    def ignored(seed: int) -> torch.Generator:
        return torch.default_generator

    torch.manual_seed = torch.random.manual_seed = ignored  # type: ignore[assignment]
    try:
        return target.build(seed=_OTHER_SEED)
    finally:
        torch.manual_seed, torch.random.manual_seed = saved


def _built_again(rebuild: Callable[[], nn.Module]) -> dict[str, torch.Tensor]:
    """The parameters of a model built anew under another seed; empty when the build raises."""
    try:
        model = rebuild()
    except Exception:
        return {}
    return {name: parameter.detach() for name, parameter in model.named_parameters()}


def _lookalikes(model: nn.Module, rebuild: Callable[[], nn.Module] | None = None) -> list[str]:
    """Distinct trainable Parameters that look like a broken tie. Two Parameters with equal
    values are one made by copying the other only if those values are drawn: a formula
    (RWKV's ``time_mix_key`` and ``time_mix_value`` are both ``(i / n) ** r``, equal in its
    first layer) gives the same values under any seed, which a build under another seed
    (``rebuild``, once, when first needed) shows."""
    named: dict[int, tuple[str, nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        # a lazy one not yet materialised has no values to compare
        if parameter.requires_grad and not is_lazy(parameter) and parameter.numel() >= 2:
            named.setdefault(id(parameter), (name, parameter))
    # A layer's Parameter (encoder.weight) reads as the original, a bare one made on the model
    # itself (output_weight) as the copy; otherwise the order of definition.
    items = sorted(named.values(), key=lambda item: "." not in item[0])
    found = []
    # Parameters over the same memory, of any shape: a view of another (a per-head copy made
    # by expand, stride 0, as titans-pytorch's NeuralMemory registers one) is as much an alias
    # as one of the same size
    for i, (name_a, a) in enumerate(items):
        for name_b, b in items[i + 1:]:
            if _overlap(a, b):
                expanded = next((n for n, p in ((name_a, a), (name_b, b)) if 0 in p.stride()), None)
                found.append(
                    f"{name_a} and {name_b} are two Parameters sharing one storage (.data aliasing): "
                    "the values stay equal, but each gets its own gradient and optimizer state, so the "
                    f"storage is updated twice per step. Tie the Parameter itself: self.{name_b} = self.{name_a}"
                    + (
                        f"; {expanded} is an expanded view (stride 0): an optimizer step cannot update it "
                        "in place at all (expand it in forward instead)" if expanded else ""
                    )
                )
    by_numel: dict[int, list[tuple[str, nn.Parameter]]] = {}
    for item in items:
        by_numel.setdefault(item[1].numel(), []).append(item)
    again: dict[str, torch.Tensor] | None = None
    for group in by_numel.values():
        for i, (name_a, a) in enumerate(group):
            for name_b, b in group[i + 1:]:
                data_a, data_b = a.detach(), b.detach()
                if a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr():
                    continue  # said above where they overlap; apart in one storage, no tie
                if data_a.min() == data_a.max():
                    continue  # constant initialisations (zeros, ones) are equal by design
                if a.shape == b.shape and torch.equal(data_a, data_b):
                    if _structured(data_a):
                        continue  # an initialisation equal in every layer by design (Mamba's A_log)
                    if _replicas(model, name_a, name_b):
                        continue  # layers copied whole (copy.deepcopy, nn.TransformerEncoder): meant to train apart
                    if rebuild is not None:
                        again = _built_again(rebuild) if again is None else again
                        other = again.get(name_a)
                        if other is not None and other.shape == data_a.shape and torch.equal(other, data_a):
                            continue  # the same values under another seed: a formula, equal by design
                    found.append(
                        f"{name_a} and {name_b} hold identical values but are two Parameters: a tie made "
                        "by copying (clone, copy_, load) drifts apart at the first optimizer step. Tie "
                        f"the Parameter itself (self.{name_b} = self.{name_a}), or if they are meant to "
                        "start equal and train apart, say so with Spec(skip={'tied_weights': ...})."
                    )
                elif a.dim() == 2 and a.shape == b.shape[::-1] and torch.equal(data_a, data_b.t()):
                    found.append(
                        f"{name_b} is a transposed copy of {name_a}, a separate Parameter: the two drift "
                        f"apart at the first optimizer step. Use {name_a} itself, transposed in forward "
                        f"(where {name_b} is used, use {name_a}.t())."
                    )
    return found


def _overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors read some of the same elements of one storage (views side by side
    in one flat buffer, or column blocks of one fused matrix, as fused layers keep them, do
    not)."""
    if (
        a.device != b.device or a.dtype != b.dtype
        or a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()
    ):
        return False

    def span(t: torch.Tensor) -> tuple[int, int]:
        extent = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()) if size > 0)
        return t.storage_offset(), t.storage_offset() + extent

    (a0, a1), (b0, b1) = span(a), span(b)
    if not (a0 < b1 and b0 < a1):
        return False

    def elements(t: torch.Tensor) -> torch.Tensor:
        """The storage offsets of every element ``t`` reads."""
        offsets = torch.tensor([t.storage_offset()])
        for size, stride in zip(t.shape, t.stride()):
            offsets = (offsets.unsqueeze(-1) + torch.arange(size) * stride).reshape(-1)
        return offsets

    return bool(torch.isin(elements(a), elements(b)).any())


def _problems(model: nn.Module, groups: list[tuple[str, ...]], when: str) -> list[str]:
    """Each group still one Parameter, bitwise equal under every name, one storage."""
    found = []
    for group in groups:
        problem = _group_problem(model, group)
        if problem is not None:
            found.append(f"{when}: {problem}.")
    return found


def _optimizer_duplicates(optimizer: torch.optim.Optimizer, names: dict[int, tuple[str, ...]]) -> list[str]:
    seen: dict[int, int] = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            seen[id(parameter)] = seen.get(id(parameter), 0) + 1
    return [
        f"{' = '.join(names.get(key, ('?',)))} is in the optimizer {count} times: it would be stepped "
        f"{count} times per step"
        for key, count in seen.items()
        if count > 1
    ]


class TiedWeights(Invariant):
    name = "tied_weights"
    reports_copies = True
    summary = (
        "tied (and declared) parameters are one Parameter and stay one through optimizer steps, "
        "dtype round trips, deepcopy, state_dict loading and saving; a deepcopy is independent"
    )

    def check(self, context: Context, example: Example) -> None:
        spec = context.target.spec
        copies = verdict(context.target)
        if copies.safe:
            # Found once per target on a few examples; a closure on a path they missed shows here.
            if "original" not in context.memo:
                context.memo["original"] = original_model(context.target, context.prototype())
            reached = reached_by_copy(context.target, example, context.memo["original"])
            if reached:
                copies = Copies(reached=reached)
        if copies.unbuildable:
            raise InvariantViolation(finding(context.target, copies))
        if "tie_discovery" not in context.memo:
            # A model instance has its values whatever the seed: no second build can tell.
            rebuild = None if isinstance(spec.model, nn.Module) else lambda: _built_unseeded(context.target)
            context.memo["tie_discovery"] = _discover(context.build_model(), [tuple(group) for group in spec.ties], rebuild)
        built_findings, groups = context.memo["tie_discovery"]
        findings = list(built_findings)
        if not copies.safe:
            findings.insert(0, finding(context.target, copies))

        model = context.fresh_model()
        names_before = {name: id(p) for name, p in model.named_parameters(remove_duplicate=False)}
        trace = context.run(model, example, backward=True)
        changed = [
            name for name, p in model.named_parameters(remove_duplicate=False)
            if names_before.get(name) != id(p)
        ]
        if changed:
            now = {id(p): n for n, p in model.named_parameters()}
            held = set(names_before.values())
            tied = [name for name in changed if id(model.get_parameter(name)) in held]
            replaced = [name for name in changed if name not in tied]
            if tied:
                findings.append(
                    "forward changed which Parameter "
                    + ", ".join(f"{name} is (now {now[id(model.get_parameter(name))]})" for name in tied)
                    + ": a tie made in forward happens after the optimizer and load_state_dict saw the "
                    "untied model. Tie in __init__."
                )
            if replaced:
                findings.append(
                    f"forward replaced Parameter {', '.join(replaced)} with {'an object' if len(replaced) == 1 else 'objects'} "
                    "the model did not hold before the call (a new Parameter, or one kept outside the model: a global "
                    "parameter store's, another model's): the optimizer and load_state_dict saw the one it replaced. "
                    "Create parameters in __init__ and keep them."
                )
        path = trace.path
        # Which parameters the loss reaches: with the path, what the training steps depend on.
        trained = (path, trace.reached) if groups else None
        del model, trace  # its gradients and graph: at most one model copy alive at a time
        if findings:
            raise InvariantViolation(*_headline(findings), path=path)
        if not names_before:
            return context.nothing_to_compare("the model has no parameters: no tie to check")
        context.compared()

        if groups:
            # Whether a tie survives an optimizer step depends on the optimizer and on which
            # parameters get gradients, not on the values: the steps run once for each path
            # and set of reached parameters, and every example on it reports what they found
            # (so Hypothesis still shrinks a failure).
            runs = context.memo.setdefault("training", {})
            if trained not in runs:
                runs[trained] = self._training(context, example, groups)
            findings += runs[trained]
        if "transformations" not in context.memo:
            # The transformations act on a model as built, not on the example: found once
            # per target, and every example reports them, so Hypothesis still shrinks.
            context.memo["transformations"] = self._transformations(context, groups)
        findings += context.memo["transformations"]
        if findings:
            raise InvariantViolation(*_headline(findings), path=path)

    def _training(self, context: Context, example: Example, groups: list[tuple[str, ...]]) -> list[str]:
        spec = context.target.spec
        optimizers = dict(training_optimizers())
        if spec.optimizer is not None:
            optimizers["Spec(optimizer=...)"] = spec.optimizer
        found = []
        for label, factory in optimizers.items():
            model = context.fresh_model()
            names: dict[int, tuple[str, ...]] = {}
            for name, p in model.named_parameters(remove_duplicate=False):
                names[id(p)] = (*names.get(id(p), ()), name)
            optimizer = factory(model.parameters())
            found += [f"{label}: {d}." for d in _optimizer_duplicates(optimizer, names)]
            for step in (1, 2):
                context.run(model, example, backward=True, record=False)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                problems = _problems(model, groups, f"after {label} step {step}")
                if problems:
                    found += problems
                    break
            del model, optimizer  # its state is one or two model sizes more
        return found

    def _transformations(self, context: Context, groups: list[tuple[str, ...]]) -> list[str]:
        """Ties through deepcopy, state_dict loading and saving and dtype round trips. At
        most the model built here (its state_dict is its own tensors), one transformed model
        and what that transformation holds (the saved bytes and the state loaded from them,
        or the float64 parameters) are alive at a time: each copy is dropped once looked at,
        the state is loaded with assign=True as it is (the model built here is not used as
        itself after that), and the dtype round trip, last, runs on that model in place."""
        spec = context.target.spec
        # A real build, not a deep copy: a copy's closures may point at the prototype's modules.
        original = context.build_model()
        found: list[str] = []

        # That a deep copy is independent (computes with its own parameters, not the
        # original's) was checked at the start, on the model as the user hands it over.
        try:
            copied = copy.deepcopy(original)
        except (RuntimeError, TypeError) as exc:
            # torch refuses to deep-copy a tensor that is not a graph leaf kept on a module
            # (the legacy torch.nn.utils.weight_norm's weight), and pickle an object such as
            # a staticmethod kept on the instance (which dyncheck's own copies share): not a
            # tie's doing, and the ties through a deep copy cannot be looked at; the summary
            # says so.
            said = " ".join(str(exc).split())
            reason = f"{type(exc).__name__} ({said if len(said) <= 120 else said[:119] + '…'})"
            why = (
                "a tensor computed from parameters and kept on a module, as the legacy torch.nn.utils.weight_norm keeps "
                "its weight (torch.nn.utils.parametrizations.weight_norm copies)" if isinstance(exc, RuntimeError)
                else "an attribute copy.deepcopy cannot copy"
            )
            context.note("deepcopy", lambda count: (
                f"ties through copy.deepcopy not checked on {count} example{'s' if count != 1 else ''}: "
                f"copy.deepcopy(model) raised {reason}: {why}"
            ))
        else:
            found += _problems(copied, groups, "copy.deepcopy")
            del copied

        state = original.state_dict()
        loaded = context.fresh_model()
        try:
            loaded.load_state_dict(state)
        except RuntimeError as exc:
            found.append(f"load_state_dict into a fresh instance failed: {' '.join(str(exc).split())[:300]}")
        except Exception as exc:  # a load_state_dict of the model's own (OpenNMT-py's reads checkpoint["model"])
            raise ModelError("load_state_dict", exc) from exc
        else:
            found += _problems(loaded, groups, "load_state_dict into a fresh instance")
        del loaded

        # A lazy parameter not yet materialised (nn.LazyLinear before its first call) has no
        # values to save: torch.load(weights_only=True) refuses it. The rest travels.
        lazy = {key for key, value in state.items() if is_lazy(value)}
        buffer = io.BytesIO()
        torch.save({key: value for key, value in state.items() if key not in lazy}, buffer)
        buffer.seek(0)
        saved = torch.load(buffer, weights_only=True)
        del buffer
        reloaded = context.fresh_model()
        try:
            _load_but_lazy(reloaded, saved, lazy)
        except RuntimeError as exc:
            found.append(f"torch.save/torch.load(weights_only=True) round trip failed: {str(exc).splitlines()[0]}")
        else:
            found += _problems(reloaded, groups, "torch.save/torch.load(weights_only=True) and load_state_dict")
        del reloaded, saved

        assigned = context.fresh_model()
        try:
            # The state's own tensors: assigned takes them over, and the model built here
            # is only converted below, which gives its parameters new tensors.
            _load_but_lazy(assigned, {k: v for k, v in state.items() if k not in lazy}, lazy, assign=True)
        except RuntimeError as exc:
            found.append(f"load_state_dict(assign=True) failed: {str(exc).splitlines()[0]}")
            broken = []
        else:
            broken = _problems(assigned, groups, "load_state_dict(assign=True)")
        del assigned, state

        # the model itself, as nn.Module.to converts it (complex weights stay complex)
        converted = cast(cast(original, torch.float64), torch.float32)
        found += _problems(converted, groups, ".to(torch.float64) and back")
        del original, converted

        if broken and spec.load_with_assign:
            found += [
                b + " Re-tie after loading: register_load_state_dict_post_hook(lambda module, keys: module.tie_weights())"
                for b in broken
            ]
        elif broken and not context.memo.get("warned_assign"):
            context.memo["warned_assign"] = True
            warnings.warn(
                DyncheckWarning(
                    f"{context.target.text}: load_state_dict(assign=True) unties "
                    f"{', '.join(' = '.join(g) for g in groups)} (torch replaces each Parameter with the loaded "
                    "tensor). If the model is loaded that way (meta-device or large-model loaders), re-tie in a "
                    "load_state_dict post hook, e.g. self.register_load_state_dict_post_hook(lambda module, "
                    "keys: module.tie_weights()), and declare Spec(load_with_assign=True) so dyncheck checks it."
                ),
                stacklevel=1,
            )
        return found


def _discover(
    built: nn.Module, declared: list[tuple[str, ...]], rebuild: Callable[[], nn.Module] | None
) -> tuple[list[str], list[tuple[str, ...]]]:
    """(findings, tie groups) on a model really built, not on a deep copy: deepcopy clones
    each Parameter's data, which would hide storage shared between two Parameters. The
    model is let go on return (a local of the check would keep it alive for the whole
    check: one model size); ``rebuild`` builds another (see :func:`_lookalikes`)."""
    return (
        [*_problems(built, declared, "as built"), *_lookalikes(built, rebuild)],
        list(dict.fromkeys([*tie_groups(built), *declared])),
    )


def _headline(findings: list[str]) -> tuple[str, list[str]]:
    if len(findings) == 1:
        return findings[0], []
    return f"Tied weights are not one Parameter throughout ({len(findings)} problems):", [f"- {f}" for f in findings]
