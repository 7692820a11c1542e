"""LayerStack: x-transformers' ``AttentionLayers`` shape, whose input only its last layer describes.

Not a founding model: the counterpart of an inference that gave up on a library people use.
x-transformers' ``Encoder(dim=16, depth=1, heads=2)`` hands its input first to projections
left as None (``reinject_input_proj`` unless asked for), then to norms and blocks unpacked
from ``zip(*layer_variables)`` in a loop, then to its final norm through a local name, none
of which the source reading followed: no layer gave ``x`` a shape,
and dyncheck asked for a Spec. The model was then called on vectors and sequences of its own
parameters' sizes (vectors fail: the attention unpacks ``batch, time, dim``), and the first
that ran was drawn. A submodule held in a local name is now followed, so the final norm,
a ``LayerNorm(8)`` that takes any rank, gives the width; the optional ``mask`` (True at
tokens) makes it a sequence: with a mask of all True, a call on ``[batch, time, 8]`` gives
what a call without one gives.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LayerStack"]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        batch, time, dim = x.shape
        q, k, v = self.qkv(x).view(batch, time, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) * (dim // self.heads) ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], -torch.finfo(scores.dtype).max)
        return self.out((F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, time, dim))


class LayerStack(nn.Module):
    def __init__(self, dim=8, depth=2, heads=2, reinject_input=False):
        super().__init__()
        self.reinject_input_proj = nn.Linear(dim, dim, bias=False) if reinject_input else None
        self.layers = nn.ModuleList(nn.ModuleList([nn.LayerNorm(dim), _Attention(dim, heads)]) for _ in range(depth))
        self.layer_scales = [1.0] * depth
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, x, mask=None):
        injected = self.reinject_input_proj(x) if self.reinject_input_proj is not None else None
        layer_variables = (self.layers, self.layer_scales)
        for (norm, block), scale in zip(*layer_variables):
            if injected is not None:
                x = x + injected
            x = x + scale * block(norm(x), mask)
        final_norm = self.final_norm  # x-transformers wraps it (maybe(partial)) when conditioned
        return final_norm(x)
