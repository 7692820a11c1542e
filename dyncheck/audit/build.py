"""The report model built from one run: what the checks said (their records, verdicts
and messages), what the model is (built once more, never the user's instance), and what
each path costs (measured here, on the first example that took it)."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from dyncheck.audit import graph
from dyncheck.audit.report import (
    SCHEMA_VERSION,
    AuditReport,
    Budget,
    Census,
    Check,
    DeadModule,
    DeclaredBranch,
    Finding,
    Input,
    LeafModule,
    Model,
    PathCost,
    PathEntry,
    TargetAudit,
)

if TYPE_CHECKING:
    from torch import nn

    from dyncheck.audit.collect import CheckRun, Collector
    from dyncheck.settings import Settings
    from dyncheck.target import Target

__all__ = ["build"]

#: Paths timed per target, commonest first; the others say so in their cost's note.
MEASURED_PATHS = 40

_EXAMPLE = re.compile(r"^\s*(?:\[\d+\]\s*)?example:\s+(.+)$", re.M)
_REPRODUCE = re.compile(r"^\s*(?:\[\d+\]\s*)?Reproduce:\s+(.+)$", re.M)
#: verdicts that make a finding (xfailed: a known bug, reported but not counted)
_FINDING_VERDICTS = ("failed", "error", "xpassed", "xfailed")


def build(collector: Collector, *, budget: Budget, exit_code: int, command: str, measure: bool = True) -> AuditReport:
    """The whole report: one :class:`TargetAudit` per target, in the order they were given."""
    from dyncheck import __version__

    settings = collector.settings
    assert settings is not None, "build() runs after a configured run"
    audits = []
    for text in settings.targets:
        runs = [run for run in collector.checks.values() if run.target == text]
        audits.append(
            _target(
                text, collector.targets.get(text), runs, collector.paths.get(text, Counter()),
                collector.examples.get(text, {}), settings, measure=measure,
            )
        )
    return AuditReport(
        schema_version=SCHEMA_VERSION,
        dyncheck_version=__version__,
        seed=settings.seed,
        command=command,
        budget=budget,
        exit_code=exit_code,
        targets=audits,
    )


# --------------------------------------------------------------------------- the model


def _build_model(target: Target | None) -> nn.Module | None:
    if target is None:
        return None
    try:
        return target.build()
    except Exception:  # the checks report a model that cannot be built, with its traceback
        return None


def _leaves(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if name and not any(True for _ in module.children())]


def _own_parameters(model: nn.Module) -> Counter[str]:
    """module -> parameters it holds (a tied parameter counted once, at its first owner)."""
    from dyncheck.invariants._base import parameter_owners

    owned: Counter[str] = Counter()
    for parameter, _, owners in parameter_owners(model):
        owned[owners[0]] += parameter.numel()
    return owned


def _kind(name: str, strategy: str, target: Target) -> str:
    if name == target.spec.lengths or strategy.startswith("sequence_lengths("):
        return "lengths"
    if strategy.startswith("controls("):
        return "control"
    if strategy.startswith("tensors("):
        return "tensor"
    return "value"


def _python(value: Any) -> str:
    """``value``'s repr on one line (Hypothesis's wraps a long strategy, a dict of seven
    entries, over several lines: shown as "LazyStrategy" before); its type's name where the
    repr is no Python (``<...>``)."""
    text = repr(value)
    if text.startswith("<"):
        return type(value).__name__
    joined = re.sub(r"\s*\n\s*", " ", text)
    return re.sub(r"([(\[{]) ", r"\1", re.sub(r",? ([)\]}])", r"\1", joined)) if "\n" in text else text


def _model(target: Target, model: nn.Module, calls: Counter[str]) -> Model:
    from dyncheck._report import explain, source_of
    from dyncheck.strategies import DEFAULT_DIMS

    owned = _own_parameters(model)
    distinct = {id(p): p for p in model.parameters()}.values()
    spec = target.spec
    inputs = []
    for name, strategy in spec.inputs.items():
        shown = _python(strategy)
        inputs.append(Input(name, shown, _kind(name, shown, target), target.inferred_inputs.get(name)))
    return Model(
        class_name=f"{type(model).__module__}.{type(model).__qualname__}",
        parameters=sum(p.numel() for p in distinct),
        trainable_parameters=sum(p.numel() for p in distinct if p.requires_grad),
        leaf_modules=[
            LeafModule(name, type(model.get_submodule(name)).__name__, owned[name], calls[name])
            for name in _leaves(model)
        ],
        inputs=inputs,
        init=[
            {"name": name, "value": _python(value), "inferred": target.inferred_init.get(name)}
            for name, value in spec.init.items()
        ],
        dims={name: _python(value) for name, value in {**DEFAULT_DIMS, **dict(spec.dims)}.items()},
        branches={name: source_of(predicate) for name, predicate in spec.branches.items()},
        spec_python=explain(target),
    )


# --------------------------------------------------------------------------- findings


#: Lines of a failure message that give context (every module on the path, the example)
#: rather than say what broke.
_CONTEXT_LINE = re.compile(r"^\s*(?:\[\d+\]\s*)?(?:-\s*)?(path|paths seen|example|sizes|source|note|Reproduce):")


def _named_modules(message: str, names: list[str]) -> list[str]:
    """The modules the broken property names: each dotted name in the message
    (``fc2.weight``, ``layers.0.attn.to_q``) names the longest module it starts with. The
    context lines (the path, the example) are not read."""
    known = set(names)
    text = "\n".join(line for line in message.splitlines()[1:] if not _CONTEXT_LINE.match(line))
    found: set[str] = set()
    for token in re.findall(r"[A-Za-z_][\w.]*\w|[A-Za-z_]", text):
        parts = token.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                found.add(candidate)
                break
    return [name for name in names if name in found]


def _finding(run: CheckRun, settings: Settings, names: list[str]) -> Finding:
    message = (run.message or "").strip()
    headline = run.record.get("finding") or next((line for line in message.splitlines() if line.strip()), "")
    example = _EXAMPLE.search(message)
    reproduce = _REPRODUCE.search(message)
    return Finding(
        invariant=run.invariant,
        headline=headline or f"{run.invariant} {run.verdict}",
        example=example.group(1).strip() if example else None,
        reproduce=reproduce.group(1).strip() if reproduce else settings.reproduce(run.target, run.invariant),
        message=message,
        modules=_named_modules(message, names),
        known=run.verdict == "xfailed",
    )


# --------------------------------------------------------------------------- the census


def _path_parameters(model: nn.Module, path: tuple[str, ...]) -> int:
    from dyncheck.invariants._base import module_name_map, parameter_owners

    canonical = module_name_map(model)
    on_path = set(path) | {""}
    found = {
        id(p): p.numel()
        for p, _, owners in parameter_owners(model)
        if any(canonical.get(o, o) in on_path for o in owners)
    }
    return sum(found.values())


def _census(
    target: Target,
    model: nn.Module,
    raw: Counter[tuple[str, ...]],
    examples: dict[tuple[str, ...], Any],
    coverage: dict[str, Any] | None,
    named: set[str],
    *,
    measure: bool,
) -> Census:
    from dyncheck.audit.cost import measure as measure_cost
    from dyncheck.invariants._base import module_name_map

    leaves = _leaves(model)
    leaf_set = set(leaves)
    merged: Counter[tuple[str, ...]] = Counter()
    first_raw: dict[tuple[str, ...], tuple[str, ...]] = {}
    for path, calls in raw.items():
        leaf = graph.leaf_path(path, leaf_set)
        merged[leaf] += calls
        first_raw.setdefault(leaf, path)

    # Each path by what varies between the paths, as the summary names them.
    from dyncheck.paths import Layout, PathSet

    described = PathSet(merged, Layout.of(model)).describe_all()
    entries = []
    for index, (leaf, calls) in enumerate(merged.most_common()):
        path = first_raw[leaf]
        example = examples.get(path)
        if example is None:
            cost = PathCost(None, None, None, None, "not measured: no example of this path was kept")
        elif not measure:
            cost = PathCost(None, None, None, example.describe(), "not measured (--no-cost)")
        elif index >= MEASURED_PATHS:
            cost = PathCost(None, None, None, example.describe(), f"not measured: only the {MEASURED_PATHS} commonest paths are")
        else:
            cost = measure_cost(target, model, path, example)
        entries.append(PathEntry(index, described[leaf], list(leaf), calls, _path_parameters(model, path), cost))

    dead = [
        DeadModule(row["module"], row.get("layer", ""), row.get("params", 0), list(row.get("names", [])))
        for row in (coverage or {}).get("dead", [])
    ]
    dead_names = {d.module for d in dead}
    dead_leaves = {leaf for leaf in leaves if any(leaf == d or leaf.startswith(d + ".") for d in dead_names)}
    owned = _own_parameters(model)
    leaf_info = {name: (type(model.get_submodule(name)).__name__, owned[name]) for name in leaves}
    ordered = [(leaf, calls) for leaf, calls in merged.most_common()]
    nodes = graph.nodes(ordered, leaf_info, leaves, dead=dead_leaves, named=named)

    canonical = module_name_map(model)
    total = sum(raw.values())
    branches = []
    from dyncheck._report import source_of

    for name, predicate in target.spec.branches.items():
        module = canonical.get(name, name)
        ran = sum(calls for path, calls in raw.items() if module in path)
        branches.append(DeclaredBranch(name, source_of(predicate), ran, total - ran))

    return Census(
        calls=total,
        paths=entries,
        nodes=nodes,
        transitions=graph.transitions(ordered),
        dead=dead,
        declared_branches=branches,
        untaken_source_branches=list((coverage or {}).get("source", [])),
        measured=coverage is not None,
    )


# --------------------------------------------------------------------------- one target


def _target(
    text: str,
    target: Target | None,
    runs: list[CheckRun],
    raw: Counter[tuple[str, ...]],
    examples: dict[tuple[str, ...], Any],
    settings: Settings,
    *,
    measure: bool,
) -> TargetAudit:
    model = _build_model(target)
    names = [name for name, _ in model.named_modules() if name] if model is not None else []
    checks = [
        Check(
            invariant=run.invariant,
            verdict=run.verdict,
            examples=int(run.record.get("examples", 0)),
            compared=int(run.record.get("checked", run.record.get("examples", 0))),
            paths=len(run.record.get("paths", {})),
            seconds=round(run.seconds, 3),
            reason=run.reason,
            finding=run.record.get("finding") if run.verdict in _FINDING_VERDICTS else None,
            budget_ended=(run.record.get("budget") or {}).get("ended"),
            failed_at=run.record.get("failed_at"),
        )
        for run in runs
    ]
    findings = [_finding(run, settings, names) for run in runs if run.verdict in _FINDING_VERDICTS]
    named_modules = {m for f in findings for m in f.modules}
    named_leaves = {leaf for leaf in names if any(leaf == m or leaf.startswith(m + ".") for m in named_modules)}
    coverage = next((run.record["census"] for run in runs if run.record.get("census")), None)
    census = None
    calls: Counter[str] = Counter()
    if model is not None and target is not None:
        for path, count in raw.items():
            for name in set(path):
                calls[name] += count
        census = _census(target, model, raw, examples, coverage, named_leaves, measure=measure) if raw else None
    failing = any(run.verdict in ("failed", "error", "xpassed") for run in runs)
    return TargetAudit(
        target=text,
        verdict="findings" if failing else "clean",
        model=_model(target, model, calls) if model is not None and target is not None else None,
        checks=checks,
        census=census,
        findings=findings,
        warnings=list(dict.fromkeys(w for run in runs for w in run.warnings)),
    )
