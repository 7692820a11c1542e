"""A conditional normalizing flow that returns its distribution, as zuko's and Pyro's flows
do: ``forward(context)`` gives a ``TransformedDistribution`` of a standard normal through an
affine transform whose shift and scale a small network computes from the context. The
transform is a ``torch.distributions.Transform``, which compares by identity (``self is
other``), and it keeps the network's outputs and a ``functools.partial`` of the network's
method for the inverse.

What it proves: outputs that hold such objects are compared by their contents. Two calls
give two transform objects, never equal to each other; ``determinism`` reported "two calls
... gave different outputs" on a deterministic flow, and ``state_roundtrip`` skipped it as
"not a function of its state". The buggy counterpart shifts by a running count kept on the
model (``buggy/counted_flow_shift.py``), which differs inside the transform.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.distributions import Independent, Normal, Transform, TransformedDistribution, constraints

__all__ = ["ConditionalFlow"]


class ConditionalAffine(Transform):
    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, meta, context):
        super().__init__()
        self.meta = functools.partial(meta, context)
        self.shift, self.log_scale = self.meta()

    def _call(self, x):
        return x * self.log_scale.exp() + self.shift

    def _inverse(self, y):
        return (y - self.shift) * (-self.log_scale).exp()

    def log_abs_det_jacobian(self, x, y):
        return self.log_scale.sum(-1).expand(x.shape[:-1])


class ConditionalFlow(nn.Module):
    def __init__(self, features=4, context=3, hidden=8):
        super().__init__()
        self.features = features
        self.hyper = nn.Sequential(nn.Linear(context, hidden), nn.Tanh(), nn.Linear(hidden, 2 * features))

    def meta(self, context):
        shift, log_scale = self.hyper(context).chunk(2, dim=-1)
        return shift + self.offset(), log_scale

    def offset(self):
        return 0.0

    def forward(self, context):
        zeros = context.new_zeros(context.shape[0], self.features)
        base = Independent(Normal(zeros, torch.ones_like(zeros)), 1)
        return TransformedDistribution(base, [ConditionalAffine(self.meta, context)])
