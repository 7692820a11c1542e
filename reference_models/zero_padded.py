"""A speech encoder over raw audio whose first convolution reads the padding, and is right
because the padding is zero: a wav2vec2-style feature encoder (a convolution over the
samples, then a mask-aware mean over its frames), ``forward(input_values,
attention_mask)``. A convolution that pads with zeros sees the same zeros at a row's end
alone as in a batch padded with zeros, which is how Hugging Face's feature extractors and
``pad_sequence`` pad. Not a founding model: padding_invariance pads with other values, so
before ``Spec(padding_value=...)`` it reported this contract as a bug; the model declares
it. ``reference_models.buggy.normalised_over_padding`` normalises each waveform over its
padding first, which no padding value makes right.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ZeroPaddedAudioEncoder"]


class ZeroPaddedAudioEncoder(nn.Module):
    """``input_values`` ``[batch, samples]`` zero-padded, ``attention_mask`` 1 at samples."""

    __dyncheck__ = {"padding_value": {"input_values": 0.0}}

    def __init__(self, channels: int = 8, kernel_size: int = 5, num_labels: int = 3) -> None:
        super().__init__()
        self.feature = nn.Conv1d(1, channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(channels)
        self.classifier = nn.Linear(channels, num_labels)

    def normalise(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return input_values

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        keep = attention_mask.to(input_values.dtype)
        samples = self.normalise(input_values, keep)
        frames = torch.nn.functional.gelu(self.norm(self.feature(samples[:, None]).transpose(1, 2)))
        pooled = (frames * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)
        return self.classifier(pooled)
