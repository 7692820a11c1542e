"""Float32Recurrence: a two-layer masked recurrence over a padded batch that runs in float32
only, as the sru package's CPU inference kernel does: each layer projects every step at
once (``U = x @ W``), keeps a padded step's state as it was (``torch.where(pad, c,
c_new)``), and adds a highway of its input.

Not a founding model: the counterpart of a false alarm on ``sru.SRU`` given lengths. It
cannot run in float64, so ``padding_invariance`` compares it in float32, where gradients
summed through the recurrence at inputs in the hundreds differ by rounding between a batch
and its rows alone, or a longer padded batch (other matrix shapes, other kernels): reported
as reading the padding, on one example with no padding at all. Where two paddings of other
values give the batch bitwise the same gradients and the difference is at most 1e-3 of the
largest entry, it is rounding (``buggy/float32_padded_start.py``, whose state starts from
a mean over the padding, still fails).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Float32Recurrence"]


class MaskedLayer(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.weight = nn.Parameter(torch.randn(features, 3 * hidden) * (3.0 / features) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(2 * hidden))
        self.skip = nn.Linear(features, hidden, bias=False) if features != hidden else None

    def initial_state(self, U: torch.Tensor) -> torch.Tensor:
        return U.new_zeros(U.size(1), self.hidden)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        # time-major: x [time, batch, features], pad [time, batch] True at padding
        U = x.matmul(self.weight)
        highway = x if self.skip is None else self.skip(x)
        c = self.initial_state(U)
        states = []
        for t in range(x.size(0)):
            z, f, r = U[t].chunk(3, -1)
            f = torch.sigmoid(f + self.bias[: self.hidden])
            r = torch.sigmoid(r + self.bias[self.hidden:])
            c = torch.where(pad[t].unsqueeze(-1), c, f * c + (1 - f) * z)  # a padded step keeps the state
            states.append(r * torch.tanh(c) + (1 - r) * highway[t])
        return torch.stack(states)


class Float32Recurrence(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 6) -> None:
        super().__init__()
        self.first = MaskedLayer(features, hidden)
        self.second = MaskedLayer(hidden, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float64 or self.first.weight.dtype == torch.float64:
            # as a float32-only kernel refuses it (the sru package's CPU kernel; torch's dispatch)
            raise RuntimeError("\"masked_recurrence\" not implemented for 'Double'")
        pad = (torch.arange(x.size(1))[None, :] >= lengths[:, None]).t()
        h = x.transpose(0, 1)
        h = self.second(self.first(h, pad), pad)
        return h.transpose(0, 1)  # [batch, time, hidden]
