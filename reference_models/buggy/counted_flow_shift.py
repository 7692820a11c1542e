"""Invariant: determinism, state_roundtrip, batch_invariance

A conditional flow whose shift grows with a count of calls kept on the model, a leftover of
a warm-up schedule: the same context gives another distribution on every call. The shift
lives inside the returned transform (a ``torch.distributions.Transform``, which compares by
identity), and dyncheck compares it there: ``determinism`` reports the transform's shift that
differs between two calls, ``state_roundtrip`` the count outside the state_dict, and
``batch_invariance`` a sample alone that differs from its row after other calls.

A correct version computes the shift from the context alone
(``reference_models/flow_distribution.py``).
"""

from __future__ import annotations

from reference_models.flow_distribution import ConditionalFlow

__all__ = ["Model"]


class Model(ConditionalFlow):
    def __init__(self, features=4, context=3, hidden=8):
        super().__init__(features, context, hidden)
        self.calls = 0

    def offset(self):
        self.calls += 1  # the bug: every call moves the distribution
        return 0.01 * self.calls
