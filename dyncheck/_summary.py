"""The terminal summary: per target, each invariant's verdict, examples run (and, when
fewer, those it compared something on) and the distinct paths seen. Built from the reports pytest already keeps, so it is the same
with or without xdist (workers send ``user_properties`` back with each report)."""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any

from dyncheck.paths import Layout, PathSet, chain
from dyncheck.settings import Settings

__all__ = ["write"]


def _parse(nodeid: str) -> tuple[str, str] | None:
    if not nodeid.startswith("dyncheck::"):
        return None
    rest = nodeid[len("dyncheck::"):]
    target, sep, invariant = rest.rpartition("::")
    return (target, invariant) if sep else None


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return ""


def collect(stats: dict[str, list[Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """target -> invariant -> {verdict, examples, paths, reason}."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for reports in stats.values():
        for report in reports:
            parsed = _parse(getattr(report, "nodeid", "") or "")
            if parsed is None or not hasattr(report, "when"):
                continue
            target, invariant = parsed
            row = table.setdefault(target, {}).setdefault(
                invariant,
                {"verdict": "not run", "examples": 0, "paths": Counter(), "reason": "", "finding": None},
            )
            if report.when == "call" or report.failed or report.skipped:
                if hasattr(report, "wasxfail"):
                    row["verdict"] = "xfailed" if report.skipped else "xpassed"
                    row["reason"] = report.wasxfail
                elif report.skipped:
                    # The row already names the target and the invariant: keep only the why.
                    reason = _skip_reason(report)
                    row["verdict"] = "skipped"
                    row["reason"] = reason.removeprefix(f"{invariant} does not apply to {target}: ")
                    vacuous = f"{invariant} compared nothing on {target} "
                    if reason.startswith(vacuous):
                        row["reason"] = "compared nothing " + reason.removeprefix(vacuous)
                elif report.failed:
                    row["verdict"] = "failed" if report.when == "call" else "error"
                else:
                    row["verdict"] = "passed"
            for key, value in getattr(report, "user_properties", ()):
                if key == "dyncheck" and report.when == "call":
                    row["examples"] = value["examples"]
                    row["checked"] = value.get("checked", value["examples"])
                    row["failed_at"] = value.get("failed_at")
                    row["uncompared"] = value.get("uncompared", {})
                    row["paths"] = Counter({tuple(path): count for path, count in value["paths"]})
                    row["modules"] = value.get("modules")
                    row["lists"] = value.get("lists")
                    row["finding"] = value.get("finding")
                    row["budget"] = value.get("budget")
                    if "census" in value:
                        row["census"] = value["census"]
                    if "compile" in value:
                        row["compile"] = value["compile"]
                    if "notes" in value:
                        row["notes"] = value["notes"]
    return table


def failed_at_text(failed_at: int, examples: int) -> str:
    """Where a failing check found its failure: ``on example 5, shrunk in 7 more`` (the
    examples after the first failing one are Hypothesis's shrinking, not new draws)."""
    shrunk = examples - failed_at
    return f"on example {failed_at}" + (f", shrunk in {shrunk} more" if shrunk > 0 else "")


def _path_params(path: tuple[str, ...], census: dict | None) -> int | None:
    """The parameters a path the census did not take reaches (another check's calls took
    it): those of the modules on it and of the modules holding them, as the census counts."""
    if not census or "owners" not in census:
        return None
    return sum(
        numel for owners, numel in census["owners"]
        if any(o == "" or any(m == o or m.startswith(o + ".") for m in path) for o in owners)
    )


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _order(settings: Settings) -> dict[str, int]:
    """Where each invariant stands in the run: the order --dyncheck-invariants gives, else
    the registry's (read once per summary: it scans the installed entry points)."""
    from dyncheck.invariants import registry

    return {name: index for index, name in enumerate(settings.invariants or registry())}


def write(terminalreporter: Any, settings: Settings) -> None:
    table = collect(terminalreporter.stats)
    if not table:
        return
    terminalreporter.write_sep("=", "dyncheck summary")
    width = max(len(inv) for rows in table.values() for inv in rows)
    order = _order(settings)
    from dyncheck._items import TARGETS_KEY

    resolved = terminalreporter.config.stash.get(TARGETS_KEY, {})
    for target in settings.targets:
        rows = table.get(target)
        if not rows:
            continue
        paths: Counter[tuple[str, ...]] = Counter()
        for row in rows.values():
            paths.update(row["paths"])
        layout = next(
            # a model of no submodules has a layout too (no leaves): its path is the model alone
            (Layout(tuple(r["modules"]), lists=frozenset(r["lists"] or ())) for r in rows.values()
             if r.get("modules") is not None),
            None,
        )
        verdicts = Counter(row["verdict"] for row in rows.values())
        full = settings.explain or terminalreporter.config.option.verbose > 0
        markup = {"red": True} if verdicts["failed"] or verdicts["error"] else {"green": True}
        terminalreporter.write_line(
            f"{target}  —  {len(paths)} distinct path{'s' if len(paths) != 1 else ''} seen", bold=True, **markup
        )
        for line in _capped(resolved.get(target)):
            terminalreporter.write_line(line, yellow=True)
        # In the run's order of invariants, not the order reports arrived in (xdist).
        for invariant, row in sorted(rows.items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
            verdict = row["verdict"]
            if verdict == "skipped":
                detail = row["reason"]
            elif verdict == "passed" and row.get("checked", row["examples"]) != row["examples"]:
                # A pass covers only the examples the check compared something on.
                detail = f"checked on {row['checked']} of {row['examples']} examples"
            elif verdict in ("failed", "xfailed") and row.get("failed_at"):
                detail = failed_at_text(row["failed_at"], row["examples"])
            else:
                detail = f"{row['examples']} example{'s' if row['examples'] != 1 else ''}"
            if verdict == "xfailed":
                detail += f" — known: {row['reason']}"
            if row.get("budget") and verdict != "skipped":
                detail += f" — {row['budget']['ended']}"
            terminalreporter.write_line(f"  {invariant:<{width}}  {verdict:<7}  {detail}")
            if full and verdict in ("passed", "skipped"):
                # Why the other examples compared nothing (a skip's reason is the first).
                reasons = list((row.get("uncompared") or {}).items())
                for reason, count in reasons[1:] if verdict == "skipped" else reasons:
                    terminalreporter.write_line(
                        f"  {'':<{width}}           not compared on {count}: {_shorten(reason)}"
                    )
            for number, (path, counts) in enumerate((row.get("compile") or {}).items()):
                breaks = counts["graph_breaks"]
                again = " (recompiled)" if number and counts["graphs"] else ""
                terminalreporter.write_line(
                    f"  {'':<{width}}           compiled {path}: {counts['graphs']} graph(s) compiled{again}, "
                    f"{len(breaks)} new graph break(s){': ' if breaks else ''}{'; '.join(breaks)}"
                )
            for note in row.get("notes", ()):
                terminalreporter.write_line(f"  {'':<{width}}           {note}")
            if row.get("finding") and verdict in ("failed", "xfailed"):
                terminalreporter.write_line(f"  {'':<{width}}           {_shorten(row['finding'])}")
        census = next((row["census"] for row in rows.values() if row.get("census")), None)
        _write_paths(terminalreporter, paths, layout, census, full)


def _capped(target: Any) -> list[str]:
    """A line for each dimension inference capped below the range asked for because the
    model raised at longer sizes: a bug there is not looked for, which a pass must not hide."""
    from dyncheck.target import LONGEST_THAT_RAN

    lines = []
    for dim, why in getattr(target, "inferred_dims", {}).items():
        if why.endswith(LONGEST_THAT_RAN):
            low, high = dict(target.spec.dims)[dim]
            raised = why.split("; ")[0]
            lines.append(
                f"  {dim} drawn up to {high} only ({raised}): longer inputs were not checked. If they should run, "
                f"that error is a bug; if {high} is the model's limit, declare Spec(dims={{{dim!r}: ({low}, {high})}})"
            )
    return lines


def _write_paths(
    terminalreporter: Any, paths: Counter[tuple[str, ...]], layout: Layout | None, census: dict | None, full: bool
) -> None:
    """The path census: compact (the commonest paths, dead parameters, untaken source
    branches), or in full with --dyncheck-explain (every path, layer by layer).

    Paths come from every check (on any xdist worker) and are described here, against the
    merged census, so the text is the same with or without xdist; ties in the counts are
    ordered by the text."""
    write = terminalreporter.write_line
    sizes = {tuple(p["modules"]): p for p in census["paths"]} if census else {}
    census_paths = PathSet(paths, layout)
    texts = census_paths.describe_all()
    if not census_paths.full and len(paths) > 1:
        through, differing = f"    paths through {census_paths.outline()}", census_paths.differences()
        if len(through) + len(differing) + 15 <= 120:
            write(f"{through}, differing in {differing}:")
        else:
            write(through)
            write(f"    differing in {differing}:")
    ordered = sorted(paths.items(), key=lambda item: (-item[1], texts[item[0]]))
    shown = ordered[: None if full else 4]
    for path, count in shown:
        entry = sizes.get(path)
        counted = entry["params"] if entry else _path_params(path, census)
        params = f", {counted:,} params" if counted is not None else ""
        write(f"    path {texts[path]}  ({count:,} call{'s' if count != 1 else ''}{params})")
        if full and entry:
            for name, layer, numel in entry["layers"]:
                write(f"        {name:<24} {_shorten(layer, 48):<48} {numel:>10,}")
        elif full and not census_paths.full:
            for line in textwrap.wrap(chain(path), 110, break_on_hyphens=False):
                write(f"        {line}")
    if len(paths) > len(shown):
        write(f"    ... {len(paths) - len(shown)} more (--dyncheck-explain lists all)")
    if not census:
        return
    for row in census["dead"]:
        write(f"    dead: {row['module']} ({row['params']:,} parameters) never ran on any path", red=True)
    for line in census["source"][: None if full else 3]:
        write(f"    untaken source branch: {line}")
    if not full and len(census["source"]) > 3:
        write(f"    ... {len(census['source']) - 3} more untaken source branches (--dyncheck-explain lists all)")
