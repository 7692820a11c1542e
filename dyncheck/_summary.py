"""The terminal summary: per target, each invariant's verdict, examples run and the
distinct paths seen. Built from the reports pytest already keeps, so it is the same
with or without xdist (workers send ``user_properties`` back with each report)."""

from __future__ import annotations

from collections import Counter
from typing import Any

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
                elif report.failed:
                    row["verdict"] = "failed" if report.when == "call" else "error"
                else:
                    row["verdict"] = "passed"
            for key, value in getattr(report, "user_properties", ()):
                if key == "dyncheck" and report.when == "call":
                    row["examples"] = value["examples"]
                    row["paths"] = Counter(value["paths"])
                    row["finding"] = value.get("finding")
                    if "census" in value:
                        row["census"] = value["census"]
                    if "compile" in value:
                        row["compile"] = value["compile"]
                    if "notes" in value:
                        row["notes"] = value["notes"]
    return table


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write(terminalreporter: Any, settings: Settings) -> None:
    table = collect(terminalreporter.stats)
    if not table:
        return
    terminalreporter.write_sep("=", "dyncheck summary")
    width = max(len(inv) for rows in table.values() for inv in rows)
    for target in settings.targets:
        rows = table.get(target)
        if not rows:
            continue
        paths: Counter[str] = Counter()
        for row in rows.values():
            paths.update(row["paths"])
        verdicts = Counter(row["verdict"] for row in rows.values())
        markup = {"red": True} if verdicts["failed"] or verdicts["error"] else {"green": True}
        terminalreporter.write_line(
            f"{target}  —  {len(paths)} distinct path{'s' if len(paths) != 1 else ''} seen", bold=True, **markup
        )
        for invariant, row in rows.items():
            verdict = row["verdict"]
            detail = (
                row["reason"]
                if verdict == "skipped"
                else f"{row['examples']} example{'s' if row['examples'] != 1 else ''}"
            )
            if verdict == "xfailed":
                detail += f" — known: {row['reason']}"
            terminalreporter.write_line(f"  {invariant:<{width}}  {verdict:<7}  {detail}")
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
        full = settings.explain or terminalreporter.config.option.verbose > 0
        _write_paths(terminalreporter, paths, census, full)


def _write_paths(terminalreporter: Any, paths: Counter[str], census: dict | None, full: bool) -> None:
    """The path census: compact (the commonest paths, dead parameters, untaken source
    branches), or in full with --dyncheck-explain (every path, layer by layer)."""
    write = terminalreporter.write_line
    sizes = {p["path"]: p for p in census["paths"]} if census else {}
    shown = paths.most_common(None if full else 4)
    for path, count in shown:
        entry = sizes.get(path)
        params = f", {entry['params']:,} params" if entry else ""
        write(f"    path {path}  ({count:,} calls{params})")
        if full and entry:
            for name, layer, numel in entry["layers"]:
                write(f"        {name:<24} {_shorten(layer, 48):<48} {numel:>10,}")
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
