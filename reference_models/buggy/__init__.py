"""Deliberately broken models: one seeded bug per module.

Each module's docstring starts with ``Invariant: <name>``, the dyncheck invariant that
must catch its bug, then describes the bug and what a correct version does. Each holds
one model class, built like the gated ``DynamicNet``
(``(input_size, hidden_size, output_size)``, first layer an ``nn.Linear`` on ``x``) so
that dyncheck's zero-configuration inference can check it.

* :mod:`~reference_models.buggy.unseeded_generator` -- noise from a private generator
  seeded from the OS, not from the global seed (determinism).
* :mod:`~reference_models.buggy.call_counter` -- a call counter on ``self`` that changes
  the output (determinism).
* :mod:`~reference_models.buggy.nan_output` -- a norm division without epsilon: NaN
  outputs for a zero row (finite).
* :mod:`~reference_models.buggy.nan_gradient` -- ``where(h > 0, sqrt(h), 0)``: finite
  outputs, NaN gradients (finite).
* :mod:`~reference_models.buggy.shared_original` -- the founding ``SharedNet`` with
  weights of different shapes tied together; it fails in forward (runs).

:data:`BUGGY_TARGETS` maps each target to the invariant that must catch it.
"""

from __future__ import annotations

__all__ = ["BUGGY_TARGETS"]

BUGGY_TARGETS = {
    "reference_models.buggy.unseeded_generator:Model": "determinism",
    "reference_models.buggy.call_counter:Model": "determinism",
    "reference_models.buggy.nan_output:Model": "finite",
    "reference_models.buggy.nan_gradient:Model": "finite",
    "reference_models.buggy.shared_original:SharedNet": "runs",
}
