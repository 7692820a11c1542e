"""DeepSets over padded sets, as set and point-cloud code writes it: each element through
``phi``, the padding zeroed by multiplying with a required ``mask`` (1 at real elements),
the mean over the real elements, then ``rho``.

What it proves: a required mask multiplied into features is a padding mask. Before, it was
inferred as features of ``rho``'s input and the set as vectors, and every check reported the
model's crash. Now, when that call raises, resolution calls the model on sets padded with a
mask over their elements, keeps the polarity under which three elements padded to five give
the output of the three alone (True at real elements here), and ``padding_invariance``
compares each set with itself alone and with more padding. ``buggy/set_mean_over_padding.py``
divides by the padded size instead and is caught.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DeepSets"]


class DeepSets(nn.Module):
    def __init__(self, dim=4, hidden=16, classes=3):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.rho = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x, mask):
        h = self.phi(x) * mask.unsqueeze(-1)
        pooled = h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.rho(pooled)
