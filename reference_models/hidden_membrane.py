"""HiddenMembraneSNN: a spiking net in snntorch's ``init_hidden=True`` style. Its neuron
keeps the membrane potential on itself (``self.mem``), reset at the start of each forward;
the time-major input ``[time, batch, features]`` goes through the layers one step at a time
(``for step in range(x.size(0)): out.append(self.net(x[step]))``), with nothing carried in
forward's own names.

Not a founding model: the counterpart of a misreading of snntorch's tutorial nets. A loop
was read as stepping through an axis only when it carried a value in its own names: this
one reads as a loop over the samples of a batch, the input was drawn as vectors
``[batch, 8]``, the membrane ran from sample to sample and ``batch_invariance`` failed the
correct model. A loop that calls a module keeping a state of its own (its forward updates
an attribute from its earlier value and the call's data, here through a method of its own
that reads it, as snntorch's ``self.mem = self.state_function(input_)``) now steps through
the axis (``dyncheck.infer.flow._assigns_itself``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HiddenMembraneSNN"]


class LeakyNeuron(nn.Module):
    """A leaky integrator whose membrane lives on the module between calls."""

    def __init__(self, beta: float = 0.9) -> None:
        super().__init__()
        self.beta = beta
        self.mem: torch.Tensor | None = None

    def reset(self) -> None:
        self.mem = None

    def state_function(self, current: torch.Tensor) -> torch.Tensor:
        return current if self.mem is None else self.beta * self.mem + current

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        self.mem = self.state_function(current)  # as snntorch's Leaky updates it
        return torch.tanh(self.mem)


class HiddenMembraneSNN(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), LeakyNeuron(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net[1].reset()
        out = []
        for step in range(x.size(0)):
            out.append(self.net(x[step]))
        return torch.stack(out, dim=1)  # [batch, time, classes]
