"""The audit report as plain text for the terminal (and for logs: no colour codes)."""

from __future__ import annotations

from dyncheck._summary import failed_at_text
from dyncheck.audit.report import AuditReport, Check, PathCost, TargetAudit

__all__ = ["render", "flops", "seconds"]

#: Untaken source branches listed on the terminal (a library model has hundreds).
SOURCE_LINES = 10


def flops(value: float | None) -> str:
    """``1.23 MFLOP``: 3 significant digits and an SI prefix."""
    if value is None:
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}FLOP"
    return f"{value:.3g} FLOP"


def seconds(value: float | None) -> str:
    """``41.2 µs``, ``3.1 ms``, ``1.25 s``: 3 significant digits."""
    if value is None:
        return "—"
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def examples_text(check: Check) -> str:
    """``100``, or ``37 of 100 compared`` when some examples gave the check nothing to compare."""
    if check.verdict == "passed" and check.compared != check.examples:
        return f"{check.compared:,} of {check.examples:,} compared"
    if check.failed_at:
        return failed_at_text(check.failed_at, check.examples)
    return f"{check.examples:,}"


def cost_text(cost: PathCost) -> tuple[str, str]:
    """(FLOPs, forward time) as the tables show them: FLOPs per sample when the example
    has a batch dimension."""
    if cost.flops_per_sample is not None:
        shown = f"{flops(cost.flops_per_sample)}/sample"
    else:
        shown = flops(cost.flops)
    return shown, seconds(cost.forward_seconds)


def _table(rows: list[list[str]], right: set[int] = frozenset(), indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _shorten(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _target(audit: TargetAudit) -> list[str]:
    findings = [f for f in audit.findings if not f.known]
    known = [f for f in audit.findings if f.known]
    verdict = (
        f"{len(findings)} finding{'s' if len(findings) != 1 else ''}" if findings else "clean"
    ) + (f", {len(known)} known bug{'s' if len(known) != 1 else ''}" if known else "")
    lines = [f"{audit.target}  —  {verdict}", ""]

    model = audit.model
    if model is not None:
        lines.append("Model")
        lines.append(
            f"  {model.class_name}: {model.parameters:,} parameters ({model.trainable_parameters:,} trainable), "
            f"{len(model.leaf_modules)} leaf module{'s' if len(model.leaf_modules) != 1 else ''}"
        )
        rows = [["module", "type", "params", "calls"]]
        rows += [[m.name, m.type, f"{m.parameters:,}", f"{m.calls:,}"] for m in model.leaf_modules]
        lines += _table(rows, right={2, 3}, indent="    ")
        lines.append("  inputs (the spec used; --dyncheck-explain prints it as Python)")
        for item in model.inputs:
            why = f"  — inferred: {item.inferred}" if item.inferred else "  — given in the Spec"
            lines.append(_shorten(f"    {item.name} ({item.kind}): {item.strategy}{why}", 160))
        for entry in model.init:
            why = f"  — inferred: {entry['inferred']}" if entry["inferred"] else ""
            lines.append(_shorten(f"    init {entry['name']} = {entry['value']}{why}", 160))
        for name, predicate in model.branches.items():
            lines.append(f"    branch {name}: runs exactly when {predicate}")
        lines.append("")

    lines.append("Invariants")
    rows = [["invariant", "verdict", "examples", "time", "finding / reason"]]
    for check in audit.checks:
        detail = check.finding or (check.reason or "")
        if check.budget_ended:
            detail = f"{detail} — {check.budget_ended}" if detail else check.budget_ended
        rows.append([check.invariant, check.verdict, examples_text(check), f"{check.seconds:.1f}s", _shorten(detail, 90)])
    lines += _table(rows, right={2, 3})
    lines.append("")

    census = audit.census
    if census is None:
        lines += ["Paths: none recorded (no check ran the model through; see the findings)", ""]
    else:
        distinct = len(census.paths)
        lines.append(f"Paths  ({census.calls:,} calls, {distinct} distinct path{'s' if distinct != 1 else ''})")
        rows = [["#", "path", "calls", "share", "params", "FLOPs", "forward"]]
        for path in census.paths:
            shown_flops, shown_time = cost_text(path.cost)
            share = f"{100 * path.calls / census.calls:.1f}%" if census.calls else "—"
            rows.append([str(path.id), _shorten(path.description, 70), f"{path.calls:,}", share, f"{path.parameters:,}", shown_flops, shown_time])
        lines += _table(rows, right={0, 2, 3, 4, 5, 6})
        notes = sorted({p.cost.note for p in census.paths if p.cost.note})
        lines += [f"  note: {note}" for note in notes]
        measured = [p for p in census.paths if p.cost.measured_on]
        if measured:
            lines.append("  each path is timed on the first example that took it (forward only, median of 5 calls)")
        lines.append("")
        if not census.measured:
            lines.append("Dead parameters and source branches: not measured (the coverage check did not run)")
        elif census.dead:
            lines.append("Dead parameters")
            for dead in census.dead:
                lines.append(f"  {dead.module} ({dead.layer}): {dead.parameters:,} parameters never used — {', '.join(dead.names)}")
        else:
            lines.append("Dead parameters: none")
        if census.declared_branches:
            lines.append("Declared branches")
            for branch in census.declared_branches:
                state = "both ways" if branch.both_ways else ("NEVER RAN" if not branch.ran else "NEVER SKIPPED")
                lines.append(f"  {branch.module} ({branch.predicate}): ran {branch.ran:,}, skipped {branch.skipped:,} — {state}")
        else:
            lines.append("Declared branches: none declared (Spec(branches=...))")
        if census.measured:
            if census.untaken_source_branches:
                shown = census.untaken_source_branches[:SOURCE_LINES]
                lines.append(f"Untaken source branches ({len(census.untaken_source_branches)})")
                lines += [f"  {_shorten(line, 160)}" for line in shown]
                if len(census.untaken_source_branches) > len(shown):
                    lines.append(f"  ... {len(census.untaken_source_branches) - len(shown)} more (--json and --html list all)")
            else:
                lines.append("Untaken source branches: none")
        lines.append("")

    if audit.findings:
        lines.append("Findings")
        for number, finding in enumerate(audit.findings, 1):
            known = " (known bug, declared with xfail)" if finding.known else ""
            lines.append(f"  [{number}] {finding.invariant}{known}: {finding.headline}")
            if finding.example:
                lines.append(f"      example:    {finding.example}")
            if finding.reproduce:
                lines.append(f"      reproduce:  {finding.reproduce}")
        lines.append("")
    for warning in audit.warnings:
        lines.append(f"warning: {_shorten(warning.splitlines()[0], 150)}")
    if audit.warnings:
        lines.append("")
    return lines


def render(report: AuditReport) -> str:
    """The whole report, one section per target."""
    lines = [
        f"dyncheck audit  —  seed {report.seed} (--dyncheck-seed={report.seed}), budget: {report.budget.note}",
        "",
    ]
    for audit in report.targets:
        lines += _target(audit)
    return "\n".join(lines).rstrip() + "\n"
