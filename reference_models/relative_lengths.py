"""A speech encoder whose lengths are relative, as SpeechBrain's are: ``wav_lens`` holds each
sequence's share of the padded length (1.0 for one that fills it, and any value of 1 or more
means every step), turned into steps as SpeechBrain's ``TransformerASR`` does,
``torch.round(wav_lens * T)``. A projection, a depthwise convolution over time (the
Conformer's, its padded frames zeroed before it reads them), one self-attention layer that
ignores the padded frames as keys, and a mean over each sequence's own frames.

What it proves: zero-config relative lengths. Drawn as whole numbers, every length of 1 or
more would be the whole sequence, so a padded row ran all its steps and padding_invariance
reported the padding as read (SpeechBrain's Transformer encoder and ECAPA). Resolution now
calls the model at 8 padded steps with lengths 1.0, 1 and 8 (one output), then with rows at
4/8 and 7/8 (two others), so ``wav_lens`` is drawn with ``sequence_lengths(relative=True,
pad_to_longest=True)`` (one row always 1.0, as SpeechBrain's batches are), and
padding_invariance runs each shorter row alone, trimmed, with 1.0.
``reference_models.buggy.relative_conv_leak`` zeroes the padded frames only after the
convolution, as SpeechBrain's Conformer does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RelativeLengthsEncoder", "frames_mask"]


def frames_mask(wav_lens: torch.Tensor, frames: int) -> torch.Tensor:
    """True at each sequence's own frames, ``[batch, frames]``: its share of ``frames``,
    rounded, as SpeechBrain's ``TransformerASR.make_transformer_src_mask`` counts them."""
    steps = torch.round(wav_lens * frames)
    return torch.arange(frames, device=wav_lens.device)[None, :] < steps[:, None]


class RelativeLengthsEncoder(nn.Module):
    def __init__(self, features: int = 8, dim: int = 16, heads: int = 2, outputs: int = 4) -> None:
        super().__init__()
        self.project = nn.Linear(features, dim)
        self.depthwise = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, outputs)

    def forward(self, feats: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        valid = frames_mask(wav_lens, feats.shape[1])
        x = self.project(feats)
        x = x + self.convolve(x, valid)
        attended, _ = self.attention(x, x, x, key_padding_mask=~valid, need_weights=False)
        x = self.norm(x + attended)
        weights = valid.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(F.gelu(pooled))

    def convolve(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The depthwise convolution over time of ``x`` ``[batch, frames, dim]``, its padded
        frames zeroed before it reads them and in what it gives."""
        x = x.masked_fill(~valid.unsqueeze(-1), 0.0)
        out = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        return out.masked_fill(~valid.unsqueeze(-1), 0.0)
