"""A tiny causal self-attention block: two heads, a residual.

Not a founding model: the correct counterpart of a masking bug at a degenerate size. On a
sequence of length 1 each query sees a single key, and a softmax over one score is exactly
1 whatever the query and the key are: ``q_proj`` and ``k_proj`` run but cannot move the
output, in float64 too. That is not masking (nothing was computed and thrown away by a
choice; on any longer sequence they matter), and ``grad_isolation`` must not report it.
Nor on an all-zero sequence, where every key is the same and the query has nothing to
choose between. The input is declared, so that lengths from 1 up are drawn.

``RotarySelfAttention`` rotates its queries and keys by position first (rotary embeddings),
as rotary-embedding-torch does: a ``_Rotary`` module whose fixed frequencies are a frozen
parameter, used through a method (``rotate_queries_or_keys``), never called, through a
function kept on the instance as ``staticmethod(rotate)``. ``copy.deepcopy`` refuses to
pickle a staticmethod object: dyncheck's copies share it, and every check runs (before,
resolution stopped with a pytest INTERNALERROR from inside the copy). No gradient reaches
the frozen frequencies and the module never runs, yet the output moves with them:
``coverage`` does not call them dead.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dyncheck.strategies import tensors

__all__ = ["CausalSelfAttention", "RotarySelfAttention"]


class CausalSelfAttention(nn.Module):
    # A sequence of token vectors, its length drawn from 1 up ("time" defaults to 1-8), at
    # the scale of a transformer's hidden states: on raw inputs in the thousands the scores
    # reach millions and float32's softmax is not float64's (dtype_agreement says so).
    # Causal by its mask: causality checks that no step reads a later one.
    __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", "time", 8), min_value=-10, max_value=10)}, "causal": True}

    def __init__(self, embed_dim=8, num_heads=2):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        batch, time, width = x.shape

        def heads(t):
            return t.view(batch, time, self.num_heads, width // self.num_heads).transpose(1, 2)

        q, k, v = self.positioned(heads(self.q_proj(x)), heads(self.k_proj(x))) + (heads(self.v_proj(x)),)
        scores = q @ k.transpose(-2, -1) / math.sqrt(width // self.num_heads)
        weights = F.softmax(scores.masked_fill(self.future(time, x.device), float("-inf")), dim=-1)
        attended = (weights @ v).transpose(1, 2).reshape(batch, time, width)
        return x + self.out_proj(attended)

    def positioned(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The queries and keys as attention compares them: as they are."""
        return q, k

    @staticmethod
    def future(time: int, device: torch.device) -> torch.Tensor:
        """True where a query (row) would see a later key (column): the keys it must not."""
        return torch.ones(time, time, dtype=torch.bool, device=device).triu(1)


def rotate(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Each feature pair of ``[..., time, width]`` turned by the angle ``position * freq``:
    rotary position embeddings (RoFormer)."""
    angles = torch.arange(t.shape[-2], dtype=t.dtype, device=t.device)[:, None] * freqs.to(t.dtype)
    cos, sin = angles.cos(), angles.sin()
    even, odd = t[..., 0::2], t[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class _Rotary(nn.Module):
    """rotary-embedding-torch's ``RotaryEmbedding`` as attention uses it: fixed frequencies
    kept as a frozen parameter (``learned_freq=False``), the rotation function kept on the
    instance, and a method the attention calls instead of ``forward``."""

    def __init__(self, dim: int):
        super().__init__()
        self.freqs = nn.Parameter(1.0 / 10_000 ** (torch.arange(0, dim, 2).float() / dim), requires_grad=False)
        self.apply_rotary_emb = staticmethod(rotate)

    def rotate_queries_or_keys(self, t: torch.Tensor) -> torch.Tensor:
        return self.apply_rotary_emb.__func__(t, self.freqs)


class RotarySelfAttention(CausalSelfAttention):
    def __init__(self, embed_dim=8, num_heads=2):
        super().__init__(embed_dim, num_heads)
        self.rotary = _Rotary(embed_dim // num_heads)

    def positioned(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rotary.rotate_queries_or_keys(q), self.rotary.rotate_queries_or_keys(k)
