"""IntegratorStack: a spiking-style stack as norse's ``SequentialState(Linear, LIF, Linear,
LI)`` runs one over a time-major input ``[time, batch, features]``: a Linear, then a layer
of leaky integrators that loops over the steps itself (``for t in range(x.shape[0])``,
its state carried from step to step), then a readout.

Not a founding model: the counterpart of a false alarm on norse. The first layer is a
Linear and forward hands nothing one step at a time, so the input was drawn as vectors
``[batch, 8]``: the integrator's loop walked the batch as time and ``batch_invariance``
reported samples coupled. A loop carrying a state in a custom layer the input reaches
after the first layer now says where the steps are, as one in forward does.
``buggy/batch_mean_integrator.py`` starts the integrators from the batch's mean and fails.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["IntegratorStack"]


class LeakyIntegrators(nn.Module):
    """Leaky integrators over a time-major input, every step's state returned."""

    def __init__(self, decay: float = 0.9) -> None:
        super().__init__()
        self.decay = decay

    def initial(self, first: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self.initial(x[0])
        states = []
        for t in range(x.shape[0]):
            state = self.decay * state + torch.tanh(x[t])
            states.append(state)
        return torch.stack(states)


class IntegratorStack(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 16, outputs: int = 4, layer: type = LeakyIntegrators) -> None:
        super().__init__()
        self.fc = nn.Linear(features, hidden)
        self.integrators = layer()
        self.readout = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.integrators(self.fc(x)))  # [time, batch, outputs]
