"""compile_agreement (opt-in): eager and ``torch.compile`` agree on every path.

The compiled model (default backend, compiled once per check and reused across examples)
must give the eager model's outputs, gradients and path within torch.testing's float32
tolerances (atol scaled by magnitude). A difference the two share with float32's own
rounding is not a finding: when they disagree, a float64 eager copy is the reference, and
each tensor's atol grows by ten times how far eager float32 lies from it (a LayerNorm over a
constant row, a saturated softmax: fused and reordered kernels round otherwise, and eager is
no closer to the truth). A compiled result much further from float64 than eager is still
reported, and so is every difference when the float64 copy cannot run, draws random
numbers, or takes another path. Graph breaks and recompilations are information,
not failures: per path, the summary shows how many graphs were compiled for it (on any path
after the first: recompilations, or the resumed code after a break that this path reaches
first) and the graph breaks dynamo first met on it, with their reason and line. Opt-in,
because the first compilation takes seconds: ``--dyncheck-invariants=compile_agreement``.
"""

from __future__ import annotations

from typing import Any

import os
import re

import torch

from dyncheck.agreement import Config, compare, nothing_compared, rounding_margins, run_config
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.tracing import describe_path

__all__ = ["CompileAgreement"]

EAGER = Config("eager", "cpu")


def _counters() -> tuple[set[str], int]:
    """(the graph breaks' reasons, the number of compiled graphs) so far, from dynamo's
    counters. A break on code dynamo cannot trace (data-dependent control flow) is counted
    under "unimplemented", one on an explicit ``torch._dynamo.graph_break()`` under
    "graph_break"; each distinct reason once."""
    from torch._dynamo.utils import counters

    return set(counters["graph_break"]) | set(counters["unimplemented"]), counters["stats"]["unique_graphs"]


def describe_break(reason: str) -> str:
    """A graph break's reason in one line: its first line, and where in the user's code."""
    headline = reason.strip().splitlines()[0] if reason.strip() else "graph break"
    places = re.findall(r'File "([^"]+)", line (\d+)', reason)
    if places:
        file, line = places[0]
        return f"{os.path.basename(file)}:{line} {headline}"
    return headline


class CompileAgreement(Invariant):
    name = "compile_agreement"
    summary = "eager and torch.compile give the same outputs, gradients and path (opt-in; graph breaks reported)"
    opt_in = True

    def check(self, context: Context, example: Example) -> None:
        compiled_model = context.memo.get("compiled")
        if compiled_model is None:
            compiled_model = context.memo["compiled"] = context.fresh_model()
            context.memo["compiled_fn"] = torch.compile(compiled_model)
        compiled_model.zero_grad(set_to_none=True)
        compiled_fn = context.memo["compiled_fn"]
        compiled = Config("torch.compile", "cpu", patch=lambda model: compiled_fn)
        tolerance = context.tolerance(self.name)
        eager = run_config(context.fresh_model(), context.target, example, EAGER)
        context.record(eager.path, example)
        breaks, graphs = _counters()
        result = run_config(compiled_model, context.target, example, compiled)
        new_breaks, new_graphs = _counters()
        stats: dict[str, Any] = context.report.setdefault("compile", {})
        entry = stats.setdefault(describe_path(eager.path, eager.model), {"graph_breaks": [], "graphs": 0})
        entry["graph_breaks"] += sorted(describe_break(reason) for reason in new_breaks - breaks)
        entry["graphs"] += new_graphs - graphs
        findings = compare(eager, result, tolerance=tolerance, model=eager.model)
        if findings and tolerance is None:
            # Compiled kernels fuse and reorder: rounding that eager float32 shares is not a finding.
            margins = rounding_margins(context.fresh_model, context.target, example, eager)
            if margins is not None:
                findings = compare(eager, result, model=eager.model, margins=margins)
        if not findings and (missing := nothing_compared(eager)):
            return context.nothing_to_compare(missing)
        context.compared()
        if findings:
            raise InvariantViolation(
                findings[0] if len(findings) == 1 else f"eager and compiled disagree ({len(findings)} differences):",
                [] if len(findings) == 1 else [f"- {f}" for f in findings],
                path=eager.path,
            )
