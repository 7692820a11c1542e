"""Invariant: determinism, dtype_agreement, batch_invariance

The model adds Gaussian noise to its hidden activation as a regulariser, but draws the
noise from a private ``torch.Generator`` that it creates in ``forward`` and seeds with
``Generator.seed()`` -- a non-deterministic seed from the operating system. Nothing ties
that generator to the global RNGs, so ``torch.manual_seed(0)`` before each of two calls
with the same input still gives two different outputs. The noise is additive and
continuous, so the outputs differ on every call and for every input (a dropout mask
would agree by chance on small or all-zero activations). Every check that runs the same
example twice and compares sees it too: ``dtype_agreement`` (float32 against float64) and
``batch_invariance`` (a sample in the batch against the sample alone).

A correct version draws the noise from the global generator (``torch.randn_like(h)``),
or seeds its private generator from it once (e.g.
``torch.Generator().manual_seed(int(torch.randint(2**31, ())))``), or takes the generator
as an argument; and usually adds noise only in training mode.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        x = F.relu(self.fc1(x))
        # BUG: a fresh generator seeded from the OS on every call, not from the global seed.
        generator = torch.Generator(device=x.device)
        generator.seed()
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + 0.1 * noise
        if control > 0.5:
            x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x
