"""The collected nodes: one collector per target, one item per invariant.

Node ids look like ``dyncheck::reference_models.gated:DynamicNet::determinism``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pytest

from dyncheck import _report
from dyncheck.errors import NotApplicable
from dyncheck.settings import SETTINGS_KEY

if TYPE_CHECKING:
    from dyncheck.invariants import Invariant
    from dyncheck.target import Target

__all__ = ["DyncheckRoot", "InvariantItem", "TargetCollector"]

TARGETS_KEY = pytest.StashKey[dict]()
#: the example database chosen in [tool.dyncheck] or with --dyncheck-database (set only then)
DATABASE_KEY = pytest.StashKey[Any]()


class DyncheckRoot(pytest.Collector):
    """The ``dyncheck`` node: one child per target, in the order they were given."""

    def collect(self) -> list[pytest.Node]:
        targets = self.config.stash[TARGETS_KEY]
        return [
            TargetCollector.from_parent(self, name=text, nodeid=f"{self.nodeid}::{text}", target=t)
            for text, t in targets.items()
        ]


class TargetCollector(pytest.Collector):
    def __init__(self, *, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def collect(self) -> list[pytest.Item]:
        from dyncheck.invariants import registry

        settings = self.config.stash[SETTINGS_KEY]
        known = registry()
        names = settings.invariants_for(self.target.text) or tuple(
            name for name, cls in known.items() if cls().collected_by_default(self.target, settings)
        )
        items = []
        for name in names:
            item = InvariantItem.from_parent(
                self, name=name, nodeid=f"{self.nodeid}::{name}", target=self.target, invariant=known[name]()
            )
            item.add_marker(pytest.mark.dyncheck)
            reason = self.target.spec.xfail.get(name)
            if reason:
                # strict: a known bug stays visible, and fixing it turns the check red
                # until the xfail entry is removed.
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
            items.append(item)
        return items


def derived_seed(seed: int, target: str, invariant: str) -> int:
    """The Hypothesis seed of one check: fixed by the run's seed, the target and the
    invariant, so it is the same on every xdist worker and in a reproduce command."""
    digest = hashlib.sha256(f"{seed}:{target}:{invariant}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class InvariantItem(pytest.Item):
    """Runs one invariant over generated examples with Hypothesis."""

    def __init__(self, *, target: Target, invariant: Invariant, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.invariant = invariant
        self.context: Any = None
        self.obj: Any = None  # the @given test; Hypothesis's pytest plugin reads it

    def setup(self) -> None:
        import hypothesis
        from hypothesis import HealthCheck, Phase, given
        from hypothesis import settings as hsettings
        from hypothesis.control import currently_in_test_context

        from dyncheck.examples import corner_examples, from_target
        from dyncheck.invariants import Context
        from dyncheck.paths import describe
        from dyncheck.seeding import held

        settings = self.config.stash[SETTINGS_KEY]
        reason = (
            self.target.spec.skip.get(self.invariant.name)
            or self.invariant.applies_to(self.target)
            or self.invariant.unavailable(settings)
            or self.invariant.configured(self.target, settings)
        )
        if not reason:
            # Once per target, before any check copies the model: are its copies its own? If
            # not, and no model can be built instead, nothing a check would run on is a model
            # of its own (tied_weights reports it).
            from dyncheck.copies import skip_reason

            with self._constants():
                blocked = skip_reason(self.target)
            if blocked and not self.invariant.reports_copies:
                reason = blocked
        if reason:
            pytest.skip(f"{self.invariant.name} does not apply to {self.target.text}: {reason}")
        context = self.context = Context(self.target)
        context.settings = settings
        invariant = self.invariant

        from dyncheck.budget import Budget
        from dyncheck.invariants.padding_invariance import declared_padding

        max_examples = settings.max_examples_for(self.target.text) or hsettings.default.max_examples
        budget = context.budget = Budget(settings.time_budget_for(self.target.text), max_examples)

        labels: dict[tuple[str, ...], str] = {}

        def check(example: Any) -> None:
            if not budget.allows():
                # The budget is spent: the remaining draws run nothing (Hypothesis has no
                # public way to stop generating), and the record says the budget ended it.
                return
            known = len(context.paths)
            try:
                # One save of the global streams for all the example's seeded calls (python's
                # and numpy's are Hypothesis's to restore inside a test case).
                with context.counting(), held(restored_by_caller=currently_in_test_context()):
                    if currently_in_test_context():  # a recorded example was recorded padded
                        example = declared_padding(self.target, example)
                    context.materialise(example)
                    invariant.check(context, example)
            except NotApplicable as exc:
                # Found on the check's first call: a skip, not a failure to shrink.
                pytest.skip(f"{invariant.name} does not apply to {self.target.text}: {exc}")
            except BaseException as exc:
                budget.spent(failed=True)
                if context.failed_at is None:
                    context.failed_at = context.examples
                    context.first_finding = getattr(exc, "headline", None)
                try:
                    exc.example = example  # type: ignore[attr-defined]
                except AttributeError:  # an exception type that takes no attributes
                    pass
                raise
            budget.spent()
            if not currently_in_test_context():  # a recorded example, replayed
                return
            # Steer Hypothesis toward examples that open paths not seen yet, and show the
            # paths in --hypothesis-show-statistics.
            hypothesis.target(float(len(context.paths) - known), label="new paths")
            if context.last_path is not None:
                # Rarer paths score higher, so Hypothesis mutates the examples that reach them
                # and finds the branches beside them.
                hypothesis.target(1.0 / context.paths[context.last_path], label="path rarity")
                # On its own, not against the paths seen so far: a label that stays the same
                # (so worked out once per path).
                label = labels.get(context.last_path)
                if label is None:
                    label = labels[context.last_path] = describe(context.last_path, context.layout)
                hypothesis.event("path", label)

        recorded = invariant.replay(context)
        if recorded is not None:
            def replay() -> None:
                for example in recorded:
                    check(example)

            self.obj = replay
            return
        check.__name__ = check.__qualname__ = f"{invariant.name}"
        default = hsettings.default
        test = given(from_target(self.target, invariant.dims(self.target)))(check)
        # The example-database key: the node id (target and invariant) alone. Hypothesis's
        # own reads the source of ``check`` with inspect on every check, and would change
        # with dyncheck's code, so a failure saved there would not replay after an upgrade.
        test._hypothesis_internal_database_key = hashlib.sha384(  # type: ignore[attr-defined]
            b"dyncheck:" + self.nodeid.encode()
        ).digest()
        # Each side of every control's thresholds first, whatever the seed; they count
        # against the check's examples.
        corners: list[Any] = []
        if Phase.explicit in default.phases:  # a profile may leave explicit examples out
            with self._constants():
                corners = corner_examples(self.target)[:max_examples]
        for corner in reversed(corners):  # run in this order
            test = hypothesis.example(corner)(test)
        max_examples -= len(corners)
        phases = [
            p for p in default.phases
            # The explain phase re-runs failing examples under a tracer: slow for torch
            # models, so it runs only when asked for with --hypothesis-explain.
            if (p is not Phase.explain or self.config.getoption("hypothesis_explain", False))
            and (p is not Phase.generate or max_examples > 0)
        ]
        seeded = hypothesis.seed(derived_seed(settings.seed, self.target.text, invariant.name))(test)
        # @seed turns the example database off, so a run is a function of its seed; a
        # database chosen in [tool.dyncheck] or with --dyncheck-database is turned back on
        # (these settings are applied after the seed), so failures saved there replay first
        # (after the corners).
        self.obj = hsettings(
            default,
            database=self.config.stash.get(DATABASE_KEY, None),
            max_examples=max(max_examples, 1),
            deadline=None,
            print_blob=False,
            phases=phases,
            suppress_health_check=[
                *default.suppress_health_check,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.function_scoped_fixture,
                HealthCheck.differing_executors,
            ],
        )(seeded)

    def _constants(self) -> Any:
        """Hypothesis's literal constants from the target's own modules only (see
        :mod:`dyncheck._constants`): a seed's examples must not depend on what else the
        process imported."""
        from dyncheck._constants import constants_of

        return constants_of(self.target)

    def runtest(self) -> None:
        finding = None
        try:
            with self._constants():
                self.obj()
                self.invariant.finish(self.context)
        except BaseException as exc:
            finding = _report.headline(exc)
            raise
        finally:
            if self.context is not None:
                self.user_properties.append(("dyncheck", self._record(finding)))
                self.context.release()
        vacuous = self.context.vacuous()
        if vacuous:
            # A pass must mean the property was checked: one that compared nothing is a skip.
            pytest.skip(f"{self.invariant.name} compared nothing on {self.target.text} {vacuous}")

    def _record(self, finding: str | None) -> dict[str, Any]:
        """What the summary shows for this check; JSON-able, as it travels from xdist workers."""
        context = self.context
        return {
            "target": self.target.text,
            "invariant": self.invariant.name,
            "examples": context.examples,
            "checked": context.checked,
            "failed_at": context.failed_at,
            "uncompared": dict(context.uncompared.most_common()),
            # Paths as module names, described in the summary against the merged census.
            "paths": [[list(path), count] for path, count in sorted(context.leaf_paths().items())],
            "modules": list(context.layout.leaves) if context.layout is not None else None,
            "lists": sorted(context.layout.lists) if context.layout is not None else None,
            "finding": finding,
            "budget": context.budget.record() if context.budget is not None else None,
            **context.report,
        }

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        text = _report.failure(self, excinfo.value)
        if text is None:
            return super().repr_failure(excinfo)
        return text

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "dyncheck", None, f"{self.target.text}::{self.invariant.name}"
