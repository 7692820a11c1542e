"""coverage: over all examples of a run, every parameter is reached on some path and every
declared branch is taken both ways; the path census and the model's untaken source
branches are reported.

The census counts each distinct path (the ordered modules that ran), how often it was
taken and its parameters — a per-path summary in the spirit of ``paddle.summary``, which
shows only the path of one call. Source branches come from coverage.py, measured on the
model's own ``forward`` code (the model class and user-defined submodules).
"""

from __future__ import annotations

import inspect
import linecache
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from dyncheck.errors import InvariantViolation
from dyncheck.examples import Example
from dyncheck.infer import optional_inputs_hint
from dyncheck.invariants._base import Context, Invariant, module_name_map, parameter_owners
from dyncheck.invariants.grad_isolation import predicate_text
from dyncheck.tracing import describe_path

__all__ = ["Coverage", "Census"]


@dataclass
class Census:
    """What the examples of one run did, path by path."""

    paths: Counter[tuple[str, ...]] = field(default_factory=Counter)
    ran: set[str] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)
    #: declared branch module -> [examples where it ran, examples where it did not]
    branches: dict[str, list[int]] = field(default_factory=dict)


def _numel(parameters: list[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters)


def _layer(model: nn.Module, name: str) -> str:
    module = model.get_submodule(name)
    text = repr(module)
    return text if "\n" not in text else type(module).__name__


class _SourceBranches:
    """Arcs of the model's own forward code that no example took, via coverage.py."""

    def __init__(self, model: nn.Module) -> None:
        self.functions: list[tuple[str, int, int]] = []  # (file, first line, last line)
        seen: set[type] = set()
        for module in model.modules():
            cls = type(module)
            if cls in seen or cls.__module__.split(".")[0] == "torch":
                continue
            seen.add(cls)
            forward = cls.__dict__.get("forward")
            if forward is None:
                continue
            try:
                lines, first = inspect.getsourcelines(forward)
                filename = os.path.abspath(inspect.getsourcefile(forward) or "")
            except (OSError, TypeError):
                continue
            self.functions.append((filename, first, first + len(lines) - 1))
        self.coverage = None
        if self.functions:
            try:
                import coverage
            except ImportError:  # pragma: no cover - coverage is a dependency: only a broken install lacks it
                return
            self.coverage = coverage.Coverage(
                # config_file=False: the project's own coverage settings (omit, plugins) must not
                # hide the model's source from the census.
                branch=True, data_file=None, config_file=False, include=sorted({f for f, _, _ in self.functions})
            )
            self.coverage._warn_no_data = False  # an example may raise before any line runs

    def __enter__(self) -> _SourceBranches:
        if self.coverage is not None:
            try:
                self.coverage.start()
            except Exception:  # another tracer in the way: measure nothing rather than fail
                self.coverage = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.coverage is not None:
            self.coverage.stop()

    def untaken(self) -> list[str]:
        """``file:line  source  → never went to line N`` for each untaken arc."""
        if self.coverage is None:
            return []
        found = []
        for filename in sorted({f for f, _, _ in self.functions}):
            try:
                analysis = self.coverage._analyze(filename)
                missing = analysis.missing_branch_arcs()
            except Exception:  # coverage.py's analysis API is not public; degrade quietly
                return []
            for line in sorted(missing):
                if not any(f == filename and lo <= line <= hi for f, lo, hi in self.functions):
                    continue
                shown = os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") else filename
                code = linecache.getline(filename, line).strip()
                for destination in missing[line]:
                    where = (
                        "never left the function from here"
                        if destination < 0
                        else f"never went on to line {destination}: {linecache.getline(filename, destination).strip()}"
                    )
                    found.append(f"{shown}:{line}  {code}  → {where}")
        return found


def _searched(count: int) -> str:
    return f" and a directed search of {count:,} more" if count else ""


class Coverage(Invariant):
    name = "coverage"
    summary = (
        "every parameter is reached on some path and every declared branch is taken both ways; "
        "reports the path census and the model's untaken source branches"
    )

    #: A directed search for modules and branch sides no example reached looks at up to
    #: this many times the run's examples before calling them dead or unexercised.
    search_factor = 10

    def check(self, context: Context, example: Example) -> None:
        self._observe(context, example)
        if not context.memo["coverable"]:
            return context.nothing_to_compare(
                "the model has no parameters and declares no branches (Spec(branches=...)): nothing to cover"
            )
        context.compared()

    def _observe(self, context: Context, example: Example, *, return_trace: bool = False) -> Any:
        census: Census = context.memo.setdefault("census", Census())
        model = context.fresh_model()
        if "source" not in context.memo:
            context.memo["source"] = _SourceBranches(model)
            context.memo["coverable"] = bool(context.target.spec.branches) or any(True for _ in model.parameters())
        with context.memo["source"]:
            trace = context.run(model, example)
        census.paths[trace.path] += 1
        census.ran.update(trace.modules)
        census.reached.update(trace.reached)
        canonical = module_name_map(model)
        for module_name in context.target.spec.branches:
            # Whether the module ran, not whether its predicate held: that agreement is
            # grad_isolation's check; this one asks that both sides were exercised.
            module_name = canonical.get(module_name, module_name)
            census.branches.setdefault(module_name, [0, 0])[0 if module_name in trace.modules else 1] += 1
        return trace if return_trace else census

    def _missing(self, context: Context, census: Census) -> set[str]:
        """Modules with parameters that never ran, and declared branches seen one way only
        (as ``name:ran`` / ``name:skipped``)."""
        model = context.fresh_model()
        canonical = module_name_map(model)
        missing = set()
        for _, names, owners in parameter_owners(model):
            owners = tuple(canonical.get(o, o) for o in owners)
            if not any(o in census.ran or o == "" for o in owners) and not set(names) & census.reached:
                missing.add(owners[0])
        for module_name, (ran, skipped) in census.branches.items():
            if not ran:
                missing.add(f"{module_name}:ran")
            if not skipped:
                missing.add(f"{module_name}:skipped")
        return missing

    def _search(self, context: Context, census: Census) -> int:
        """Look for examples reaching what the run did not (rare experts, rare branches);
        everything found joins the census. Returns how many examples were looked at."""
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis.errors import NoSuchExample

        from dyncheck.examples import from_target

        budget = self.search_factor * max(context.examples, 1)
        looked = 0

        def reaches(wanted: set[str]) -> Any:
            # A pure condition of the example (find replays what it found): does it run a
            # wanted module, or take a wanted side of a declared branch?
            def condition(example: Example) -> bool:
                nonlocal looked
                looked += 1
                ran = set(self._observe(context, example, return_trace=True).modules)
                for item in wanted:
                    name, _, side = item.partition(":")
                    if (side == "skipped" and name not in ran) or (side != "skipped" and name in ran):
                        return True
                return False

            return condition

        quiet = settings(
            max_examples=budget,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        while (wanted := self._missing(context, census)) and looked < budget:
            try:
                find(from_target(context.target), reaches(wanted), settings=quiet)
            except NoSuchExample:
                break
        return looked

    def finish(self, context: Context) -> None:
        census: Census | None = context.memo.get("census")
        if census is None:
            return
        searched = self._search(context, census) if self._missing(context, census) else 0
        model = context.fresh_model()
        canonical = module_name_map(model)
        owners = [
            (p, names, tuple(dict.fromkeys(canonical.get(o, o) for o in owners)))
            for p, names, owners in parameter_owners(model)
        ]
        ran = census.ran | {""}
        dead: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for parameter, names, module_names in owners:
            if any(m in ran for m in module_names) or set(names) & census.reached:
                continue
            dead.setdefault(module_names[0], []).append((names[0], parameter))
        total = _numel([p for p, _, _ in owners])

        paths = []
        for path, count in census.paths.most_common():
            on_path = [m for m in dict.fromkeys(path)]
            parameters = [p for p, _, mods in owners if any(m in on_path for m in mods) or "" in mods]
            layers = []
            for name in on_path:
                own = [p for p, _, mods in owners if name in mods]
                if own or not any(True for _ in model.get_submodule(name).children()):
                    layers.append([name, _layer(model, name), _numel(own)])
            paths.append({
                "path": describe_path(path, model),
                "count": count,
                "params": _numel(list({id(p): p for p in parameters}.values())),
                "layers": layers,
            })
        source = context.memo["source"].untaken() if "source" in context.memo else []
        dead_rows = [
            {
                "module": module_name,
                "layer": _layer(model, module_name) if module_name else type(model).__name__,
                "params": _numel([p for _, p in params]),
                "names": [f"{n} {list(p.shape)}" for n, p in params],
            }
            for module_name, params in dead.items()
        ]
        context.report["census"] = {
            "examples": context.examples,
            "total_params": total,
            "paths": paths,
            "dead": dead_rows,
            "source": source,
        }

        findings: list[str] = []
        details: list[str] = []
        if dead_rows:
            count = sum(row["params"] for row in dead_rows)
            findings.append(
                f"{count:,} of {total:,} parameters are dead: no example ran their module or reached them "
                f"in {context.examples} examples{_searched(searched)}."
            )
            for row in dead_rows:
                details.append(
                    f"{row['module']} ({row['layer']}) never ran: {', '.join(row['names'])} "
                    f"({row['params']:,} parameters)"
                )
            # cross-attention runs only with encoder_hidden_states: name such arguments
            details.extend(optional_inputs_hint(model, context.target.spec, census.ran))
        for module_name, (ran_count, skipped_count) in census.branches.items():
            if ran_count and skipped_count:
                continue
            side = "never ran" if not ran_count else "always ran"
            predicate = context.target.spec.branches.get(module_name)
            condition = predicate_text(predicate) if predicate else "its predicate"
            findings.append(
                f"The declared branch {module_name} {side} in {context.examples} examples{_searched(searched)}: the inputs "
                f"never made `{condition}` {'true' if not ran_count else 'false'}, so one side of it is untested."
            )
        if findings:
            details.append("paths seen: " + "; ".join(f"{p['path']} ({p['count']})" for p in paths))
            details.extend(f"source: {line}" for line in source)
            headline = findings[0] if len(findings) == 1 else f"{len(findings)} coverage problems:"
            if len(findings) > 1:
                details = [f"- {f}" for f in findings] + details
            raise InvariantViolation(headline, details)

