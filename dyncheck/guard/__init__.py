"""The regression guard: a refactored model against the old one, a model against its
recorded golden baseline.

* :mod:`~dyncheck.guard.mapping` -- the old state in the new model's names
  (``Spec(state_map=...)``), gradients mapped back, the module correspondence;
* :mod:`~dyncheck.guard.differential` -- new against old (``--dyncheck-against OLD``);
* :mod:`~dyncheck.guard.gitrev` -- the old model as it was at a git revision (``git:main``);
* :mod:`~dyncheck.guard.baseline` -- the baseline file, recording and comparing
  (``--dyncheck-baseline PATH``);
* :mod:`~dyncheck.guard.localise` -- the first module whose output differs while its
  inputs agree.

The invariants ``refactor_agreement`` and ``baseline`` run them; :func:`validate` checks
the options once, when pytest starts, so a bad ``OLD``, mapping or baseline file is one
line and a usage error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate"]


def validate(settings: Any, targets: dict[str, Any]) -> None:
    """Raise a one-line :class:`~dyncheck.errors.DyncheckError` for the first target whose
    old model cannot be loaded and mapped, or whose baseline cannot be read or loaded."""
    from dyncheck.errors import ModelError, TargetError
    from dyncheck.guard import baseline as files
    from dyncheck.guard.differential import Differential, given_against, resolve_against

    selected = settings.invariants
    for text, target in targets.items():
        wanted = lambda name: (not selected or name in selected) and name not in target.spec.skip  # noqa: E731
        if wanted("refactor_agreement") and given_against(target, settings) is not None:
            against = resolve_against(target, settings)
            try:
                Differential(target, against)
            except ModelError as exc:
                raise TargetError(f"{against.label}: {exc}") from None
        if settings.baseline and not settings.update_baseline and wanted("baseline"):
            label = f"--dyncheck-baseline={files.shown(settings.baseline)} for {text}"
            baseline = files.load(files.baseline_file(settings.baseline, text), label)
            try:
                model = target.build()
            except Exception as exc:
                raise TargetError(f"{label}: building the model raised {type(exc).__name__}: {exc}") from None
            files.state_mapping(baseline, target, model, label)
