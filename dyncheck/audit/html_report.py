"""The audit report as one self-contained HTML page: a picture of each model's paths beside
the report's tables. No network: the CSS, the SVG and the small script are inline, so the
page opens from disk or as a CI artifact.

The picture (drawn here, as SVG, so it shows without the script): leaf modules are boxes
top to bottom in call order, between the input and the output; an arrow is a transition
some call took, labelled with how many times. An arrow to the next box is drawn straight;
one that jumps over boxes (a skipped block) curves on the right; one back up (a loop)
curves on the left; a block that runs again at once (a repeated block) has a small loop.
The script only adds highlighting (hover a path's row to light it up) and writes
``rendered`` into ``#dyncheck-status`` once the page is set up, which the tests read.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from dyncheck.audit.report import END, START, AuditReport, Census, Node, TargetAudit, Transition
from dyncheck.audit.terminal import cost_text, examples_text

__all__ = ["render", "svg"]

NODE_W, NODE_H, ROW = 300, 46, 84
#: characters of a module name that fit in a box (longer ones keep their end)
NAME_CHARS = 34
TOP, MARGIN = 16, 24
#: distance of the first arc from the boxes, and between arcs (lanes)
ARC_BASE, ARC_LANE = 120, 40

_STATUS_TEXT = {
    "always": "ran on every call",
    "sometimes": "skipped by some calls",
    "never": "never ran",
    "dead": "never ran: dead parameters",
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _count(value: int) -> str:
    return f"{value:,}"


@dataclass
class _Layout:
    """Rows of the boxes, lanes of the arcs."""

    rows: dict[str, int]
    right: dict[tuple[str, str], int]
    left: dict[tuple[str, str], int]

    @classmethod
    def of(cls, census: Census) -> _Layout:
        order = [START, *(node.module for node in census.nodes), END]
        rows = {name: index for index, name in enumerate(order)}
        right: dict[tuple[str, str], int] = {}
        left: dict[tuple[str, str], int] = {}
        for side, edges in (
            (right, [t for t in census.transitions if rows[t.target] > rows[t.source] + 1]),
            (left, [t for t in census.transitions if rows[t.target] < rows[t.source]]),
        ):
            lanes: list[list[tuple[int, int]]] = []
            for t in sorted(edges, key=lambda t: (abs(rows[t.target] - rows[t.source]), rows[t.source])):
                span = tuple(sorted((rows[t.source], rows[t.target])))
                for number, taken in enumerate(lanes):
                    if all(span[1] <= lo or span[0] >= hi for lo, hi in taken):
                        taken.append(span)
                        side[(t.source, t.target)] = number
                        break
                else:
                    lanes.append([span])
                    side[(t.source, t.target)] = len(lanes) - 1
        return cls(rows, right, left)

    def lanes(self, side: dict[tuple[str, str], int]) -> int:
        return max(side.values(), default=-1) + 1


def _node_box(node: Node, x: float, y: float, total: int, paths: list[int]) -> str:
    classes = ["node", f"status-{node.status}"] + (["finding"] if node.in_finding else [])
    if node.calls and node.max_runs > 1:
        runs = f"×{node.min_runs}" if node.min_runs == node.max_runs else f"×{node.min_runs}–{node.max_runs}"
        ran = f"ran in {_count(node.calls)}/{_count(total)} calls, {runs}"
    elif node.calls:
        ran = f"ran in {_count(node.calls)}/{_count(total)} calls"
    else:
        ran = _STATUS_TEXT[node.status]
    mark = "⚠ " if node.in_finding else ""
    name = node.module if len(node.module) <= NAME_CHARS else "…" + node.module[-(NAME_CHARS - 1):]
    title = f"{node.module} ({node.type}): {node.parameters:,} parameters; {_STATUS_TEXT[node.status]}; {ran}"
    if node.in_finding:
        title += "; named in a finding"
    return (
        f'<g class="{" ".join(classes)}" data-module="{_e(node.module)}" data-calls="{node.calls}" '
        f'data-status="{node.status}" data-finding="{str(node.in_finding).lower()}" data-paths="{" ".join(map(str, paths))}">'
        f"<title>{_e(title)}</title>"
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text x="{x + 10}" y="{y + 18}" class="name">{_e(mark + name)}</text>'
        f'<text x="{x + 10}" y="{y + 36}" class="ran"><tspan class="type">{_e(node.type)} · {node.parameters:,} params</tspan>'
        f" · {_e(ran)}</text>"
        "</g>"
    )


def _terminal_box(name: str, x: float, y: float, total: int) -> str:
    label = "input" if name == START else "output"
    return (
        f'<g class="terminal" data-module="{_e(name)}" data-calls="{total}">'
        f'<rect x="{x + NODE_W / 2 - 60}" y="{y + 8}" width="120" height="{NODE_H - 16}" rx="15"/>'
        f'<text x="{x + NODE_W / 2}" y="{y + NODE_H / 2 + 5}" text-anchor="middle">{label} · {_count(total)} calls</text>'
        "</g>"
    )


def _edge(t: Transition, layout: _Layout, x: float, total: int) -> str:
    rows = layout.rows
    a, b = rows[t.source], rows[t.target]
    ya, yb = TOP + a * ROW, TOP + b * ROW
    stroke = 1.2 + 3.5 * (t.count / total if total else 0)
    label = _count(t.count)
    if b == a:
        kind = "loop"
        right = x + NODE_W
        path = f"M{right},{ya + 14} C{right + 40},{ya + 2} {right + 40},{ya + NODE_H - 2} {right + 3},{ya + NODE_H - 14}"
        lx, ly, anchor = right + 36, ya + NODE_H / 2 + 4, "start"
        label = f"↻ {label}"
    elif b == a + 1:
        kind = "next"
        cx = x + NODE_W / 2
        path = f"M{cx},{ya + NODE_H} L{cx},{yb - 3}"
        lx, ly, anchor = cx + 8, (ya + NODE_H + yb) / 2 + 4, "start"
    elif b > a:
        kind = "skip"
        offset = ARC_BASE + ARC_LANE * layout.right[(t.source, t.target)]
        right = x + NODE_W
        path = f"M{right},{ya + NODE_H / 2 + 6} C{right + offset},{ya + NODE_H / 2 + 6} {right + offset},{yb + NODE_H / 2 - 6} {right + 3},{yb + NODE_H / 2 - 6}"
        lx, ly, anchor = right + 0.75 * offset + 4, (ya + yb + NODE_H) / 2 + 4, "start"
    else:
        kind = "back"
        offset = ARC_BASE + ARC_LANE * layout.left[(t.source, t.target)]
        path = f"M{x},{ya + NODE_H / 2} C{x - offset},{ya + NODE_H / 2} {x - offset},{yb + NODE_H / 2} {x - 3},{yb + NODE_H / 2}"
        lx, ly, anchor = x - 0.75 * offset - 4, (ya + yb + NODE_H) / 2 + 4, "end"
    title = f"{t.source} → {t.target}: {t.count:,} time{'s' if t.count != 1 else ''}"
    return (
        f'<g class="edge edge-{kind}" data-from="{_e(t.source)}" data-to="{_e(t.target)}" data-count="{t.count}" '
        f'data-paths="{" ".join(map(str, t.paths))}"><title>{_e(title)}</title>'
        f'<path d="{path}" stroke-width="{stroke:.2f}" marker-end="url(#arrow-{kind})"/>'
        f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{_e(label)}</text></g>'
    )


def svg(census: Census, label: str) -> str:
    """The picture of one target's paths."""
    layout = _Layout.of(census)
    left = MARGIN + (ARC_BASE * 0.75 + ARC_LANE * 0.75 * layout.lanes(layout.left) + 50 if layout.left else 0)
    right_extent = ARC_BASE * 0.75 + ARC_LANE * 0.75 * max(layout.lanes(layout.right) - 1, 0) + 80
    width = left + NODE_W + right_extent + MARGIN
    height = TOP + (len(census.nodes) + 2) * ROW - (ROW - NODE_H) + MARGIN
    total = census.calls
    node_paths: dict[str, list[int]] = {}
    for path in census.paths:
        for module in dict.fromkeys(path.modules):
            node_paths.setdefault(module, []).append(path.id)
    parts = [
        f'<svg class="paths" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(label)}">',
        "<defs>",
        *(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
            f'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead-{kind}"/></marker>'
            for kind in ("next", "skip", "back", "loop")
        ),
        "</defs>",
    ]
    parts += [_edge(t, layout, left, total) for t in census.transitions]
    parts.append(_terminal_box(START, left, TOP, total))
    for node in census.nodes:
        parts.append(_node_box(node, left, TOP + layout.rows[node.module] * ROW, total, node_paths.get(node.module, [])))
    parts.append(_terminal_box(END, left, TOP + layout.rows[END] * ROW, total))
    parts.append("</svg>")
    return "".join(parts)


_LEGEND = """
<div class="legend">
  <span><svg width="26" height="16"><rect class="swatch status-always" x="1" y="1" width="24" height="14" rx="3"/></svg> ran on every call</span>
  <span><svg width="26" height="16"><rect class="swatch status-sometimes" x="1" y="1" width="24" height="14" rx="3"/></svg> skipped by some calls</span>
  <span><svg width="26" height="16"><rect class="swatch status-never" x="1" y="1" width="24" height="14" rx="3"/></svg> never ran</span>
  <span><svg width="26" height="16"><rect class="swatch status-dead" x="1" y="1" width="24" height="14" rx="3"/></svg> dead: parameters never used</span>
  <span><svg width="26" height="16"><rect class="swatch finding" x="1" y="1" width="24" height="14" rx="3"/></svg> ⚠ named in a finding</span>
  <span><svg width="30" height="16"><path class="line-next" d="M2,8 L28,8"/></svg> to the next block</span>
  <span><svg width="30" height="16"><path class="line-skip" d="M2,4 C26,4 26,12 2,12"/></svg> jumps over blocks (skipped)</span>
  <span><svg width="30" height="16"><path class="line-back" d="M28,4 C4,4 4,12 28,12"/></svg> back to an earlier block (a loop)</span>
  <span><svg width="30" height="16"><path class="line-loop" d="M4,4 C26,0 26,16 4,12"/></svg> ↻ the same block again (repeated)</span>
  <span>numbers: how many times calls took that step</span>
</div>
"""

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2733; background: #fafbfc; }
header { padding: 14px 24px; background: #1f2d3d; color: #fff; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: #c5d0dc; }
section.target { margin: 18px 24px 36px; }
section.target > h2 { font-size: 18px; margin: 0 0 10px; }
.verdict-clean { color: #2e7d32; } .verdict-findings { color: #c62828; }
.layout { display: grid; grid-template-columns: max-content minmax(480px, 1fr); gap: 24px; align-items: start; }
@media (max-width: 1000px) { .layout { grid-template-columns: 1fr; } }
.picture { background: #fff; border: 1px solid #d8dee6; border-radius: 8px; padding: 10px; position: sticky; top: 8px; max-height: calc(100vh - 16px); max-width: 55vw; overflow: auto; }
.tables { min-width: 0; }
table { border-collapse: collapse; margin: 6px 0 16px; background: #fff; width: 100%; }
th, td { border: 1px solid #d8dee6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
h3 { font-size: 15px; margin: 14px 0 4px; }
tr[data-path] { cursor: pointer; } tr[data-path]:hover { background: #fff6e0; }
.v-passed { color: #2e7d32; } .v-failed, .v-error, .v-xpassed { color: #c62828; font-weight: 600; } .v-skipped { color: #78909c; } .v-xfailed { color: #ef6c00; }
pre { background: #f4f6f8; border: 1px solid #d8dee6; padding: 8px; overflow: auto; font-size: 12px; }
code { font-size: 12px; }
.legend { display: grid; grid-template-columns: max-content max-content; gap: 4px 16px; font-size: 12px; margin: 8px 0 4px; color: #455a64; }
.legend span { display: inline-flex; align-items: center; gap: 4px; }
svg.paths text { font-size: 12px; fill: #1d2733; }
svg.paths text.name { font-weight: 600; }
svg.paths tspan.type { font-weight: 400; fill: #607d8b; }
svg.paths text.ran { fill: #455a64; font-size: 11px; }
.node rect, .swatch { fill: #e8f0fb; stroke: #5b7db1; stroke-width: 1.5; }
.status-sometimes rect, .swatch.status-sometimes { stroke-dasharray: 6 3; }
.status-never rect, .swatch.status-never { fill: #f1f1f1; stroke: #9e9e9e; }
.status-never text { fill: #757575 !important; }
.status-dead rect, .swatch.status-dead { fill: #fde4e4; stroke: #c62828; stroke-width: 2; }
.finding rect, .swatch.finding { stroke: #e65100; stroke-width: 3.5; }
.swatch.finding { fill: #fff; }
.terminal rect { fill: #263238; } .terminal text { fill: #fff !important; font-size: 11px !important; }
.edge path { fill: none; } .edge text { font-size: 11px !important; font-variant-numeric: tabular-nums; }
.edge-next path, .line-next { stroke: #607d8b; } .edge-next text { fill: #37474f !important; }
.edge-skip path, .line-skip { stroke: #ef6c00; } .edge-skip text { fill: #bf360c !important; }
.edge-back path, .line-back { stroke: #7b1fa2; } .edge-back text { fill: #6a1b9a !important; }
.edge-loop path, .line-loop { stroke: #2e7d32; } .edge-loop text { fill: #1b5e20 !important; }
.legend path { fill: none; stroke-width: 2; }
.arrowhead-next { fill: #607d8b; } .arrowhead-skip { fill: #ef6c00; } .arrowhead-back { fill: #7b1fa2; } .arrowhead-loop { fill: #2e7d32; }
.edge.dim, .node.dim { opacity: 0.18; } .edge.lit path { stroke-width: 4 !important; }
#dyncheck-status { display: none; }
"""

_SCRIPT = """
(function () {
  var status = document.getElementById("dyncheck-status");
  window.addEventListener("error", function (event) { status.textContent = "error: " + event.message; });
  function highlight(section, id) {
    section.querySelectorAll("g.edge, g.node").forEach(function (element) {
      var on = id !== null && (element.getAttribute("data-paths") || "").split(" ").indexOf(id) >= 0;
      element.classList.toggle("lit", on);
      element.classList.toggle("dim", id !== null && !on);
    });
  }
  var nodes = 0, edges = 0;
  document.querySelectorAll("section.target").forEach(function (section) {
    var picture = section.querySelector("svg.paths");
    if (!picture) { return; }
    nodes += picture.querySelectorAll("g.node").length;
    edges += picture.querySelectorAll("g.edge").length;
    section.querySelectorAll("tr[data-path]").forEach(function (row) {
      row.addEventListener("mouseenter", function () { highlight(section, row.getAttribute("data-path")); });
      row.addEventListener("mouseleave", function () { highlight(section, null); });
    });
  });
  status.setAttribute("data-nodes", String(nodes));
  status.setAttribute("data-edges", String(edges));
  if (status.textContent.indexOf("error") !== 0) { status.textContent = "rendered"; }
})();
"""


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), row_attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        attrs = f" {row_attrs[index]}" if row_attrs else ""
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tables(audit: TargetAudit) -> str:
    out: list[str] = []
    model = audit.model
    if model is not None:
        out.append("<h3>Model</h3>")
        out.append(
            f"<p><code>{_e(model.class_name)}</code>: {model.parameters:,} parameters "
            f"({model.trainable_parameters:,} trainable), {len(model.leaf_modules)} leaf modules</p>"
        )
        out.append(_table(
            ["input", "kind", "drawn from", "why"],
            [[f"<code>{_e(i.name)}</code>", _e(i.kind), f"<code>{_e(i.strategy)}</code>", _e(i.inferred or "given in the Spec")] for i in model.inputs],
        ))
        out.append(f"<details><summary>the spec used, as Python</summary><pre>{_e(model.spec_python)}</pre></details>")
    out.append("<h3>Invariants</h3>")
    out.append(_table(
        ["invariant", "verdict", "examples", "time", "finding / reason"],
        [
            [_e(c.invariant), f'<span class="v-{_e(c.verdict)}">{_e(c.verdict)}</span>', _e(examples_text(c)), f"{c.seconds:.1f}s",
             _e(" — ".join(t for t in (c.finding or c.reason, c.budget_ended) if t))]
            for c in audit.checks
        ],
        numeric={2, 3},
    ))
    census = audit.census
    if census is not None:
        out.append(f"<h3>Paths <small>({census.calls:,} calls; hover a row to light its path)</small></h3>")
        rows, attrs = [], []
        for path in census.paths:
            shown_flops, shown_time = cost_text(path.cost)
            share = f"{100 * path.calls / census.calls:.1f}%" if census.calls else "—"
            note = f"<br><small>{_e(path.cost.note)}</small>" if path.cost.note else ""
            on = f"<br><small>timed on {_e(path.cost.measured_on)}</small>" if path.cost.measured_on else ""
            rows.append([str(path.id), _e(path.description) + on + note, f"{path.calls:,}", share, f"{path.parameters:,}", _e(shown_flops), _e(shown_time)])
            attrs.append(f'data-path="{path.id}"')
        out.append(_table(["#", "path", "calls", "share", "params", "FLOPs", "forward"], rows, numeric={0, 2, 3, 4, 5, 6}, row_attrs=attrs))
        out.append("<h3>Dead parameters</h3>")
        if not census.measured:
            out.append("<p>not measured: the coverage check did not run</p>")
        elif census.dead:
            out.append(_table(
                ["module", "layer", "parameters", "names"],
                [[_e(d.module), _e(d.layer), f"{d.parameters:,}", _e(", ".join(d.names))] for d in census.dead],
                numeric={2},
            ))
        else:
            out.append("<p>none</p>")
        out.append("<h3>Declared branches</h3>")
        if census.declared_branches:
            out.append(_table(
                ["module", "runs exactly when", "ran", "skipped", "both ways"],
                [[_e(b.module), f"<code>{_e(b.predicate)}</code>", f"{b.ran:,}", f"{b.skipped:,}", "yes" if b.both_ways else "<b>no</b>"] for b in census.declared_branches],
                numeric={2, 3},
            ))
        else:
            out.append("<p>none declared (<code>Spec(branches=...)</code>)</p>")
        if census.measured:
            out.append("<h3>Untaken source branches</h3>")
            if census.untaken_source_branches:
                out.append("<ul>" + "".join(f"<li><code>{_e(s)}</code></li>" for s in census.untaken_source_branches) + "</ul>")
            else:
                out.append("<p>none</p>")
    if audit.findings:
        out.append("<h3>Findings</h3>")
        for number, finding in enumerate(audit.findings, 1):
            known = " <small>(known bug, declared with xfail)</small>" if finding.known else ""
            out.append(f"<p><b>[{number}] {_e(finding.invariant)}</b>{known}: {_e(finding.headline)}</p>")
            if finding.example:
                out.append(f"<p>example: <code>{_e(finding.example)}</code></p>")
            if finding.reproduce:
                out.append(f"<p>reproduce: <code>{_e(finding.reproduce)}</code></p>")
            out.append(f"<details><summary>the whole message</summary><pre>{_e(finding.message)}</pre></details>")
    if audit.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{_e(w)}</li>" for w in audit.warnings) + "</ul>")
    return "".join(out)


def _section(audit: TargetAudit) -> str:
    findings = [f for f in audit.findings if not f.known]
    verdict = f"{len(findings)} finding{'s' if len(findings) != 1 else ''}" if findings else "clean"
    picture = (
        svg(audit.census, f"paths of {audit.target}") + _LEGEND
        if audit.census is not None
        else "<p>No path was recorded (no check ran the model).</p>"
    )
    return (
        f'<section class="target" data-target="{_e(audit.target)}">'
        f'<h2>{_e(audit.target)} — <span class="verdict-{_e(audit.verdict)}">{_e(verdict)}</span></h2>'
        f'<div class="layout"><div class="picture">{picture}</div><div class="tables">{_tables(audit)}</div></div>'
        "</section>"
    )


def render(report: AuditReport) -> str:
    """The whole page."""
    names = ", ".join(t.target for t in report.targets)
    data = json.dumps({"schema_version": report.schema_version, "targets": [t.target for t in report.targets]})
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dyncheck audit: {_e(names)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>dyncheck audit</h1><p>seed {report.seed} · budget: {_e(report.budget.note)} · '
        f"<code>{_e(report.command)}</code></p></header>"
        + "".join(_section(t) for t in report.targets)
        + f'<div id="dyncheck-status" data-report="{_e(data)}">loading</div>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
