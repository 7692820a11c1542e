"""The audit's one report model: plain dataclasses built from a run, read by every renderer.

Field names are the JSON keys (``docs/audit.md`` and ``schema.json`` document them);
:func:`as_dict` is the JSON document. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "AuditReport",
    "Budget",
    "Census",
    "Check",
    "DeadModule",
    "DeclaredBranch",
    "Finding",
    "Input",
    "LeafModule",
    "Model",
    "Node",
    "PathCost",
    "PathEntry",
    "TargetAudit",
    "Transition",
    "as_dict",
]

#: Bumped when a key changes meaning or goes away; new keys do not bump it.
SCHEMA_VERSION = 1

#: The pseudo-modules where every call starts and ends, in ``Transition``.
START, END = "(input)", "(output)"


@dataclass
class LeafModule:
    name: str
    type: str
    #: parameters the module holds itself (a tied one counted at its first owner)
    parameters: int
    #: calls of the model in which it ran
    calls: int


@dataclass
class Input:
    name: str
    #: the Hypothesis strategy it is drawn from, as Python
    strategy: str
    #: "tensor", "control" (a value the forward branches on), "lengths" or "value"
    kind: str
    #: why dyncheck chose this strategy, when it was inferred rather than given in a Spec
    inferred: str | None


@dataclass
class Model:
    class_name: str
    parameters: int
    trainable_parameters: int
    leaf_modules: list[LeafModule]
    inputs: list[Input]
    #: constructor arguments as Python, with why each inferred one got its value
    init: list[dict[str, Any]]
    dims: dict[str, str]
    #: declared branches: module -> the predicate's source
    branches: dict[str, str]
    #: the whole spec as Python to paste into a Spec (``--dyncheck-explain``)
    spec_python: str


@dataclass
class Check:
    invariant: str
    #: passed, failed, error, skipped, xfailed (a known bug still there), xpassed
    verdict: str
    examples: int
    #: examples on which the check compared something (a pass compared something)
    compared: int
    #: distinct paths this check's calls took
    paths: int
    seconds: float
    #: why it was skipped, or the known bug of an xfail
    reason: str | None
    #: the finding's first line
    finding: str | None
    #: when a time budget (given, or the adaptive one) ended the check early, how
    budget_ended: str | None = None
    #: the example (from 1) that first failed; the later ones shrank it
    failed_at: int | None = None


@dataclass
class PathCost:
    #: floating-point operations of one forward on ``measured_on`` (torch.utils.flop_counter:
    #: matrix products, convolutions and attention; element-wise work is not counted)
    flops: int | None
    #: ``flops`` divided by the example's batch size, when it has a "batch" dimension
    flops_per_sample: float | None
    #: median wall time of one forward without autograd on this machine
    forward_seconds: float | None
    #: the example the path was timed on (the first the checks saw on it)
    measured_on: str | None
    #: why a number is missing, or a caveat about it
    note: str | None = None


@dataclass
class PathEntry:
    id: int
    #: the path as the summary describes it
    description: str
    #: the leaf modules in call order, repeats kept
    modules: list[str]
    calls: int
    #: parameters of the modules on the path (and of the model itself)
    parameters: int
    cost: PathCost


@dataclass
class Transition:
    #: module names, or START / END
    source: str
    target: str
    #: how many times a call went from ``source`` straight to ``target``
    count: int
    #: ids of the paths that take it
    paths: list[int]


@dataclass
class Node:
    module: str
    type: str
    parameters: int
    #: calls in which the module ran (at least once)
    calls: int
    #: fewest and most runs within one call that ran it (a repeated block has max > 1)
    min_runs: int
    max_runs: int
    #: always (every call), sometimes (skipped by some calls), never (no call ran it),
    #: dead (never ran, and its parameters were never used)
    status: str
    #: a finding's message names it
    in_finding: bool


@dataclass
class DeadModule:
    module: str
    layer: str
    parameters: int
    names: list[str]


@dataclass
class DeclaredBranch:
    module: str
    predicate: str
    #: calls that ran / skipped the module
    ran: int
    skipped: int

    @property
    def both_ways(self) -> bool:
        return bool(self.ran and self.skipped)


@dataclass
class Census:
    #: every call of the model by any check (probe re-runs are not counted)
    calls: int
    paths: list[PathEntry]
    #: leaf modules in call order (never-run ones where the model registers them)
    nodes: list[Node]
    transitions: list[Transition]
    dead: list[DeadModule]
    declared_branches: list[DeclaredBranch]
    untaken_source_branches: list[str]
    #: False when the coverage check did not run, so dead parameters and untaken source
    #: branches were not measured
    measured: bool


@dataclass
class Finding:
    invariant: str
    headline: str
    #: the minimal example, as the failure message shows it
    example: str | None
    reproduce: str | None
    #: the whole failure message
    message: str
    #: modules the message names
    modules: list[str]
    #: a bug the Spec declares with xfail: reported, not counted against the exit code
    known: bool


@dataclass
class TargetAudit:
    target: str
    #: "clean", "findings" (a check failed or errored) or "error" (nothing could run)
    verdict: str
    model: Model | None
    checks: list[Check]
    census: Census | None
    findings: list[Finding]
    #: warnings the checks raised (e.g. a tie that load_state_dict(assign=True) breaks)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Budget:
    #: examples per check (None: the profile's or Hypothesis's)
    examples: int | None
    time_budget_seconds: float | None
    profile: str | None
    #: how the budget was decided, in words
    note: str


@dataclass
class AuditReport:
    schema_version: int
    dyncheck_version: str
    seed: int
    command: str
    budget: Budget
    #: 0 clean, 1 findings, other codes pytest's
    exit_code: int
    targets: list[TargetAudit]


def _convert(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, DeclaredBranch):
            out["both_ways"] = value.both_ways
        if isinstance(value, Transition):  # "from"/"to" read better in JSON than source/target
            out = {"from": out.pop("source"), "to": out.pop("target"), **out}
        return out
    if isinstance(value, dict):
        return {str(k): _convert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(v) for v in value]
    return value


def as_dict(report: AuditReport) -> dict[str, Any]:
    """The JSON document of ``report`` (keys as in ``schema.json``)."""
    return _convert(report)
