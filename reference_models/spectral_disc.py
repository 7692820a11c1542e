"""A GAN discriminator under torch's spectral normalisation, as GAN code writes it: one layer
through the parametrization (``torch.nn.utils.parametrizations.spectral_norm``), one through
the older hook (``torch.nn.utils.spectral_norm``).

What it proves: torch's spectral_norm advances its power iteration (its ``u`` and ``v``) on
every call in train mode, by design. ``determinism`` compares two calls of such a model
again with those vectors put back before the second, and the summary says so; before, it
reported "forward changes state the output depends on" and advised advancing the state
outside forward, which a torch layer does not allow.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, spectral_norm

__all__ = ["SpectralDiscriminator"]


class SpectralDiscriminator(nn.Module):
    def __init__(self, input_size=8, hidden_size=16):
        super().__init__()
        self.fc1 = parametrizations.spectral_norm(nn.Linear(input_size, hidden_size))
        self.fc2 = spectral_norm(nn.Linear(hidden_size, 1))

    def forward(self, x):
        return self.fc2(F.leaky_relu(self.fc1(x), 0.2))
