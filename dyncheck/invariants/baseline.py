"""baseline: the model still computes what its recorded golden baseline says.

Runs only with ``--dyncheck-baseline PATH``. The recorded examples are replayed in order
(not generated): each must give the recorded outputs, gradients and path with the recorded
weights loaded. With ``--dyncheck-update-baseline`` the examples are drawn and recorded
instead, the file is written, and the summary says what changed. The file format and the
comparison are :mod:`dyncheck.guard.baseline`'s.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from torch.nn.parameter import is_lazy

from dyncheck.errors import DyncheckWarning
from dyncheck.examples import Example
from dyncheck.guard import baseline as files
from dyncheck.invariants._base import Context, Invariant
from dyncheck.target import Target

__all__ = ["BaselineCheck"]


def label_for(settings: Any, target: str) -> str:
    return f"--dyncheck-baseline={files.shown(settings.baseline)} for {target}"


class BaselineCheck(Invariant):
    name = "baseline"
    summary = (
        "with --dyncheck-baseline PATH: the recorded examples give the recorded outputs, gradients and paths; "
        "--dyncheck-update-baseline records them"
    )
    #: collected only when a baseline is configured
    opt_in = True

    def configured(self, target: Target, settings: Any) -> str | None:
        if not getattr(settings, "baseline", ""):
            return "no baseline to compare with: give --dyncheck-baseline=PATH (record it with --dyncheck-update-baseline)"
        return None

    def replay(self, context: Context) -> Iterator[Example]:
        # A generator: the work starts when the item runs, so the model's own errors are
        # reported as failures of this check.
        settings = context.settings
        path = files.baseline_file(settings.baseline, context.target.text)
        if settings.update_baseline:
            yield from self._drawn(context, path)
            return
        label = label_for(settings, context.target.text)
        baseline = files.load(path, label)
        comparison = files.Comparison(
            baseline, context.target, context.fresh_model(), label, context.tolerance(self.name)
        )
        context.memo[self.name] = comparison
        yield from comparison.examples()

    def _drawn(self, context: Context, path: str) -> Iterator[Example]:
        import hypothesis
        from hypothesis import settings as hsettings

        settings = context.settings
        old, old_bytes = files.previous(path)
        generation = old.generation if old is not None else {}
        seed = settings.seed if settings.seed_given else int(generation.get("seed", 0))
        count = settings.max_examples or int(generation.get("examples", 0)) or hsettings.default.max_examples
        model = context.fresh_model()
        drawn = files.generate(context.target, model, seed, count)
        selected = files.select(drawn)
        if selected:
            # lazy layers get their weights from the first example, as every check's model does
            context.materialise(selected[0])
            model = context.fresh_model()
        context.memo[self.name] = {
            "path": path,
            "old": (old, old_bytes),
            # The drawn examples depend on Hypothesis's version too (the comparison does not).
            "generation": {"seed": seed, "examples": count, "hypothesis": hypothesis.__version__},
            # a lazy layer no example reached has no weights yet to record
            "state": {key: value for key, value in model.state_dict().items() if not is_lazy(value)},
            "records": [],
        }
        yield from selected

    def check(self, context: Context, example: Example) -> None:
        memo = context.memo[self.name]
        if isinstance(memo, dict):  # recording
            recorded = files.record(context.target, context.fresh_model(), example)
            context.record(recorded.path, example)
            memo["records"].append(recorded)
            context.compared()  # recorded: the check's work on this example is done
            return
        recorded = memo.by_example.get(id(example))
        if recorded is not None and (lazy := context.lazy_on(tuple(recorded.path))) is not None:
            return context.nothing_to_compare(lazy)  # its weights are drawn in the call, not recorded
        context.compared()
        memo.check(context.fresh_model(), example, record=lambda path: context.record(path, example))

    def finish(self, context: Context) -> None:
        memo = context.memo.get(self.name)
        if memo is None:
            return
        if not isinstance(memo, dict):
            note = memo.baseline.version_note()
            if note:
                warnings.warn(
                    DyncheckWarning(
                        f"{context.target.text}: {note}; it still agrees — re-record it with "
                        "--dyncheck-update-baseline to keep it current"
                    ),
                    stacklevel=1,
                )
            return
        baseline = files.Baseline(
            path=memo["path"],
            target=context.target.text,
            versions=files.versions(),
            generation=memo["generation"],
            state=memo["state"],
            examples=memo["records"],
        )
        data = files.write(baseline)
        old, old_bytes = memo["old"]
        paths = len({r.path for r in baseline.examples})
        count = len(baseline.examples)
        context.report["notes"] = [
            f"recorded {files.shown(baseline.path)}: {count} example{'s' if count != 1 else ''} on {paths} "
            f"path{'s' if paths != 1 else ''}, {len(data) / 1000:.1f} kB; "
            + files.changes(old, old_bytes, baseline, data)
        ]
