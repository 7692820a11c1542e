"""A spiking network as snntorch's tutorials write it: two Linear layers, each driving a
layer of leaky integrate-and-fire neurons, run over a time-major input ``[time, batch,
features]`` one step at a time (``for step in range(data.size(0))``). A neuron's membrane
decays by ``beta``, adds its input current, spikes (a Heaviside step) when it crosses the
threshold and is reset by subtracting it; the step's gradient is the fast sigmoid's
(a surrogate gradient, Zenke and Ganguli's SuperSpike).

What it proves: a loop over the steps of an axis is read as one. ``fc1`` takes
``data[step]``: read as the vectors ``fc1`` takes, ``[batch, features]``, the loop walked
the batch as time and ``batch_invariance`` reported samples coupled that a sequence keeps
apart. The counter over ``data.size(0)`` puts the axis back: ``("time", "batch", 8)``.

``LeakyLayerSNN``: the neurons as snntorch's ``snn.Leaky`` modules hold them. Each layer of
neurons is a module that keeps the last membrane potential in a buffer registered with
``persistent=False`` (outside the state_dict), written on every call, while the caller
passes the potential in and gets it back (``spk, mem = self.lif1(cur, mem)``). No call reads
the buffer, so ``purity`` takes it for scratch state and says so in the summary; a neuron
that starts from it (``buggy/carried_membrane.py``, snntorch's ``init_hidden=True`` used
across calls) fails.

``ResetLeakySNN``: snntorch's ``init_hidden=True`` neurons, which keep their membrane on
themselves from step to step and return only spikes; forward resets every neuron of this
model first (``for m in self.modules()``), so each call starts from rest. snntorch's own
``utils.reset`` resets the instances a class-level list holds, which ``copy.deepcopy``
never adds a copy to: ``buggy/registry_reset.py``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LeakyLayerSNN", "LeakySNN", "ResetLeakySNN"]


class _Spike(torch.autograd.Function):
    """Heaviside forward; backward, the fast sigmoid's derivative ``1 / (1 + k|u|)^2``."""

    @staticmethod
    def forward(ctx, u: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(u)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (u,) = ctx.saved_tensors
        return grad / (1 + 25 * u.abs()) ** 2


def _leaky(
    current: torch.Tensor, mem: torch.Tensor, beta: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of leaky integrate-and-fire neurons: (the spikes, the new membrane)."""
    reset = (mem > threshold).to(mem.dtype).detach()
    mem = beta * mem + current - reset * threshold
    return _Spike.apply(mem - threshold), mem


class LeakySNN(nn.Module):
    def __init__(self, inputs=8, hidden=16, outputs=4, beta=0.9, threshold=1.0):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, outputs)
        self.beta, self.threshold = beta, threshold

    def _leaky(self, current: torch.Tensor, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _leaky(current, mem, self.beta, self.threshold)

    def forward(self, data):
        mem1 = data.new_zeros(data.shape[1], self.fc1.out_features)
        mem2 = data.new_zeros(data.shape[1], self.fc2.out_features)
        spikes, membranes = [], []
        for step in range(data.size(0)):
            spk1, mem1 = self._leaky(self.fc1(data[step]), mem1)
            spk2, mem2 = self._leaky(self.fc2(spk1), mem2)
            spikes.append(spk2)
            membranes.append(mem2)
        return torch.stack(spikes), torch.stack(membranes)


class LeakyLayer(nn.Module):
    """A layer of leaky integrate-and-fire neurons, the membrane passed in and returned;
    the last one kept in a scratch buffer, as ``snn.Leaky`` keeps ``mem``."""

    def __init__(self, beta=0.9, threshold=1.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold
        self.register_buffer("mem", torch.zeros(0), persistent=False)

    def init_leaky(self) -> torch.Tensor:
        return torch.zeros(0)  # broadcast against the first input current

    def start(self, current: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """The membrane a step starts from: the one the caller passed."""
        return mem

    def forward(self, current: torch.Tensor, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem = self.start(current, mem)
        spikes, mem = _leaky(current, torch.zeros_like(current) if mem.numel() == 0 else mem, self.beta, self.threshold)
        self.mem = mem.detach()
        return spikes, mem


class LeakyLayerSNN(nn.Module):
    def __init__(self, inputs=8, hidden=16, outputs=4, beta=0.9, layer=LeakyLayer):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(inputs, hidden), layer(beta)
        self.fc2, self.lif2 = nn.Linear(hidden, outputs), layer(beta)

    def forward(self, data):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spikes, membranes = [], []
        for step in range(data.size(0)):
            spk1, mem1 = self.lif1(self.fc1(data[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spikes.append(spk2)
            membranes.append(mem2)
        return torch.stack(spikes), torch.stack(membranes)


class HiddenLeaky(nn.Module):
    """A layer of neurons that keeps its membrane itself (snntorch's ``init_hidden=True``):
    a step takes the input current and returns the spikes."""

    def __init__(self, beta=0.9, threshold=1.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold
        self.register_buffer("mem", torch.zeros(0), persistent=False)

    def reset_mem(self) -> None:
        self.mem = torch.zeros(0)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        if self.mem.shape != current.shape:
            self.mem = torch.zeros_like(current)
        spikes, self.mem = _leaky(current, self.mem, self.beta, self.threshold)
        return spikes


class ResetLeakySNN(nn.Module):
    def __init__(self, inputs=8, hidden=16, outputs=4, beta=0.9, layer=HiddenLeaky):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(inputs, hidden), layer(beta)
        self.fc2, self.lif2 = nn.Linear(hidden, outputs), layer(beta)

    def reset(self) -> None:
        for module in self.modules():
            if isinstance(module, HiddenLeaky):
                module.reset_mem()

    def forward(self, data):
        self.reset()
        spikes, membranes = [], []
        for step in range(data.size(0)):
            spikes.append(self.lif2(self.fc2(self.lif1(self.fc1(data[step])))))
            membranes.append(self.lif2.mem)
        return torch.stack(spikes), torch.stack(membranes)
