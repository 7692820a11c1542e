"""A Conformer-style speech encoder in the layout of ``torchaudio.models.Conformer`` (one
layer: half a feed-forward, self-attention, the convolution module, half a feed-forward)
that builds its padding mask from the lengths as torchaudio does, ``arange(lengths.max())``:
it takes only batches padded to their longest sequence, as ``pad_sequence`` makes them,
and raises on a batch padded past it. Not a founding model: before dyncheck inferred that
contract (``sequence_lengths(pad_to_longest=True)``, found by calling the model once padded
past its longest sequence), every check reported that crash on torchaudio's Conformer.

Unlike torchaudio's, its convolution module zeroes the padding before the depthwise
convolution, so a sequence's frames do not depend on its padding;
``reference_models.buggy.unmasked_conv_padding`` is torchaudio's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LengthMaskedConformer", "padding_mask"]


def padding_mask(lengths: torch.Tensor) -> torch.Tensor:
    """True at padding, ``[batch, lengths.max()]``: torchaudio's ``_lengths_to_padding_mask``."""
    return torch.arange(int(lengths.max()), device=lengths.device)[None, :] >= lengths[:, None]


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.up(self.norm(x))))


class _Convolution(nn.Module):
    """Pointwise convolution and GLU, depthwise convolution over time, BatchNorm, SiLU,
    pointwise convolution; the padded frames are zeroed before the depthwise convolution
    reads them."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = F.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)  # [batch, dim, time]
        h = F.silu(self.batch_norm(self.depthwise(self.without_padding(h, padding))))
        return self.pointwise_out(h).transpose(1, 2)

    def without_padding(self, h: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return h.masked_fill(padding[:, None, :], 0.0)


class LengthMaskedConformer(nn.Module):
    """``forward(input, lengths)``: ``input`` is ``[batch, time, input_dim]`` with
    ``time == lengths.max()``; returns the frames and the lengths, as torchaudio's does."""

    convolution_module = _Convolution

    def __init__(self, input_dim: int = 16, num_heads: int = 4, ffn_dim: int = 32, depthwise_conv_kernel_size: int = 3):
        super().__init__()
        self.ffn1 = _FeedForward(input_dim, ffn_dim)
        self.attention_norm = nn.LayerNorm(input_dim)
        self.attention = nn.MultiheadAttention(input_dim, num_heads, batch_first=True)
        self.convolution = self.convolution_module(input_dim, depthwise_conv_kernel_size)
        self.ffn2 = _FeedForward(input_dim, ffn_dim)
        self.final_norm = nn.LayerNorm(input_dim)

    def forward(self, input: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padding = padding_mask(lengths)  # as wide as the longest sequence: the padded length must be it
        x = input + 0.5 * self.ffn1(input)
        h = self.attention_norm(x)
        h, _ = self.attention(h, h, h, key_padding_mask=padding, need_weights=False)
        x = x + h
        x = x + self.convolution(x, padding)
        x = x + 0.5 * self.ffn2(x)
        return self.final_norm(x), lengths
