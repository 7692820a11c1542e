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
* :mod:`~reference_models.buggy.masked_gate` -- fc2 masked by the gate instead of
  skipped (grad_isolation).
* :mod:`~reference_models.buggy.threshold_off_by_one` -- ``>=`` where the declared
  branch says ``>`` (grad_isolation).
* :mod:`~reference_models.buggy.detached_input` -- the branch detaches its input and cuts
  fc1 off (grad_isolation).
* :mod:`~reference_models.buggy.inplace_branch` -- an in-place op that breaks backward
  only on the taken branch (grad_isolation, finite).
* :mod:`~reference_models.buggy.argmax_router` -- experts chosen by argmax with no gate:
  the router gets no gradient (grad_isolation).
* :mod:`~reference_models.buggy.dense_moe` -- every expert run, then masked
  (grad_isolation).
* :mod:`~reference_models.buggy.zero_grad_trick` -- ``0 * fc2.weight.sum()`` gives a
  skipped branch zero gradients that optimizers act on (grad_isolation).
* :mod:`~reference_models.buggy.cloned_tie` -- a tie made by cloning (tied_weights).
* :mod:`~reference_models.buggy.reinit_tie` -- a re-initialisation replaces one tied
  Parameter (tied_weights).
* :mod:`~reference_models.buggy.lazy_tie` -- the tie made in forward (tied_weights,
  state_roundtrip).
* :mod:`~reference_models.buggy.transposed_tie` -- a transposed copy as a "tie"
  (tied_weights).
* :mod:`~reference_models.buggy.data_alias_tie` -- ``.data`` aliasing: one storage, two
  Parameters (tied_weights).
* :mod:`~reference_models.buggy.closure_tie` -- the decoder reaches the embedding through
  a closure, so a deepcopy trains the original (tied_weights).

:data:`BUGGY_TARGETS` maps each target to the invariants that must catch it (every other
invariant must pass); ``runs`` means the model cannot run at all, so every check reports
the crash.
"""

from __future__ import annotations

__all__ = ["BUGGY_TARGETS"]

BUGGY_TARGETS: dict[str, tuple[str, ...]] = {
    "reference_models.buggy.unseeded_generator:Model": ("determinism",),
    "reference_models.buggy.call_counter:Model": ("determinism",),
    "reference_models.buggy.nan_output:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.nan_gradient:Model": ("finite", "grad_isolation"),
    "reference_models.buggy.shared_original:SharedNet": ("runs",),
    "reference_models.buggy.masked_gate:Model": ("grad_isolation",),
    "reference_models.buggy.threshold_off_by_one:Model": ("grad_isolation",),
    "reference_models.buggy.detached_input:Model": ("grad_isolation",),
    "reference_models.buggy.inplace_branch:Model": ("grad_isolation", "finite"),
    "reference_models.buggy.argmax_router:Model": ("grad_isolation",),
    "reference_models.buggy.dense_moe:Model": ("grad_isolation",),
    "reference_models.buggy.zero_grad_trick:Model": ("grad_isolation",),
    "reference_models.buggy.cloned_tie:Model": ("tied_weights",),
    "reference_models.buggy.reinit_tie:Model": ("tied_weights",),
    "reference_models.buggy.lazy_tie:Model": ("tied_weights", "state_roundtrip"),
    "reference_models.buggy.transposed_tie:Model": ("tied_weights",),
    "reference_models.buggy.data_alias_tie:Model": ("tied_weights",),
    "reference_models.buggy.closure_tie:Model": ("tied_weights",),
}
