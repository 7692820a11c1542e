"""The self-attention of :mod:`reference_models.attention` after a refactor that fused its
three projections: ``q``, ``k`` and ``v`` became one ``qkv`` whose output is split in three.

Not a founding model: the good refactor with a callable state map. A dict cannot say that
``qkv.weight`` is the old ``q.weight``, ``k.weight`` and ``v.weight`` stacked, so
:func:`fuse_qkv` builds the new ``state_dict`` from the old one with ``torch.cat``; through
it ``refactor_agreement`` also maps the new gradients back to the three old projections
(the chain rule) and names ``qkv`` as the module that stands for them.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dyncheck.strategies import tensors
from reference_models.attention import MAX_TOKENS, Refine

__all__ = ["FusedAttention", "fuse_qkv"]


def fuse_qkv(old):
    """The old state_dict in the fused model's names: q, k and v concatenated into qkv."""
    new = {key: value for key, value in old.items() if not key.startswith(("q.", "k.", "v."))}
    for part in ("weight", "bias"):
        new[f"qkv.{part}"] = torch.cat([old[f"q.{part}"], old[f"k.{part}"], old[f"v.{part}"]])
    return new


class FusedAttention(nn.Module):
    __dyncheck__ = {
        "inputs": {"x": tensors(shape=("batch", "time", 8))},
        "dims": {"time": (2, MAX_TOKENS)},
        "against": "reference_models.attention:Attention",
        "state_map": fuse_qkv,
    }

    def __init__(self, input_size=8, hidden_size=6, output_size=4):
        super().__init__()
        self.pos = nn.Embedding(MAX_TOKENS, input_size)
        self.qkv = nn.Linear(input_size, 3 * hidden_size)
        self.refine = Refine(hidden_size)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = torch.tanh(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        h = weights @ v
        if control > 0.5:
            h = h + self.refine(h)
        return self.out(h)
