"""Invariant: tied_weights

``spiking.ResetLeakySNN`` whose neurons are reset as snntorch's ``utils.reset`` resets them:
through a list of every instance the neuron class keeps, filled by ``__init__``.
``copy.deepcopy`` never calls ``__init__``, so a copy's neurons are in no list and are never
reset: every copy (an EMA model, a best-model snapshot, an ``nn.DataParallel`` replica)
carries its membrane from one call to the next, while the model as built starts each call
from rest. The correct version resets the model's own modules (``spiking.ResetLeakySNN``).
"""

from __future__ import annotations

from typing import ClassVar

from reference_models.spiking import HiddenLeaky, ResetLeakySNN

__all__ = ["Model"]


class _RegisteredLeaky(HiddenLeaky):
    instances: ClassVar[list[HiddenLeaky]] = []

    def __init__(self, beta=0.9, threshold=1.0):
        super().__init__(beta, threshold)
        _RegisteredLeaky.instances.append(self)

    @classmethod
    def reset_hidden(cls) -> None:
        for neuron in cls.instances:
            neuron.reset_mem()


class Model(ResetLeakySNN):
    def __init__(self, inputs=8, hidden=16, outputs=4, beta=0.9):
        super().__init__(inputs, hidden, outputs, beta, layer=_RegisteredLeaky)

    def reset(self) -> None:
        _RegisteredLeaky.reset_hidden()  # BUG: the class's instances, not this model's neurons
