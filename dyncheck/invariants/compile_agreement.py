"""compile_agreement (opt-in): eager and ``torch.compile`` agree on every path.

The compiled model (default backend, compiled once per check and reused across examples)
must give the eager model's outputs, gradients and path within torch.testing's float32
tolerances (atol scaled by magnitude). Graph breaks and recompilations are information,
not failures: they are counted per path and shown in the summary. Opt-in, because the
first compilation takes seconds: ``--dyncheck-invariants=compile_agreement``.
"""

from __future__ import annotations

from typing import Any

import torch

from dyncheck.agreement import Config, compare, run_config
from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.tracing import describe_path

__all__ = ["CompileAgreement"]

EAGER = Config("eager", "cpu")


def _counters() -> tuple[int, int]:
    """(graph breaks, compiled graphs) so far, from dynamo's counters."""
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values()), counters["stats"]["unique_graphs"]


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
        tolerance = context.settings.tolerances.get(self.name) if context.settings else None
        eager = run_config(context.fresh_model(), context.target, example, EAGER)
        breaks, graphs = _counters()
        result = run_config(compiled_model, context.target, example, compiled)
        new_breaks, new_graphs = _counters()
        stats: dict[str, Any] = context.report.setdefault("compile", {})
        entry = stats.setdefault(describe_path(eager.path, eager.model), {"graph_breaks": 0, "graphs": 0})
        entry["graph_breaks"] += new_breaks - breaks
        entry["graphs"] += new_graphs - graphs
        findings = compare(eager, result, tolerance=tolerance, model=eager.model)
        if findings:
            raise InvariantViolation(
                findings[0] if len(findings) == 1 else f"eager and compiled disagree ({len(findings)} differences):",
                [] if len(findings) == 1 else [f"- {f}" for f in findings],
                path=eager.path,
            )
