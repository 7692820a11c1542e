"""An MLP that adds noise to its hidden units in eval mode too, drawn in their own dtype.

Noise at inference is a real pattern (randomized smoothing, noisy activations, Monte Carlo
predictions). This model draws one noise vector per call, shared by every sample of the
batch, on the CPU and moved (so devices agree), in the activation's own dtype:
``torch.empty(n, dtype=h.dtype).uniform_(-0.1, 0.1)``. torch's generator gives another
stream in float64 than in float32 from one seed, so the float64 copy draws other noise.

What it proves: a correct stochastic model does not fail ``dtype_agreement``: dyncheck
sees the draws differ only in dtype, draws the float32 copy's in float64 too, and compares
the arithmetic on the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NoisyHidden"]


class NoisyHidden(nn.Module):
    def __init__(self, input_size=10, hidden_size=16, output_size=4):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        noise = torch.empty(h.shape[-1], dtype=h.dtype).uniform_(-0.1, 0.1).to(h.device)
        return self.fc2(h + noise)
