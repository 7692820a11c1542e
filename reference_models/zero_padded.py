"""A speech encoder over raw audio whose first convolution reads the padding, and is right
because the padding is zero: a wav2vec2-style feature encoder (a stride-2 convolution over
the samples; its frames, and the logits of a mean over each row's own frames),
``forward(input_values, attention_mask)``. A convolution that pads with zeros sees the same
zeros past a row's end alone as in a batch padded with zeros, which is how Hugging Face's
feature extractors and ``pad_sequence`` pad. Its frames come at half the samples' rate:
``padding_invariance`` compares as many of them as a row has alone. Not a founding model: padding_invariance pads with other values, so
before ``Spec(padding_value=...)`` it reported this contract as a bug; the model declares
it. ``reference_models.buggy.normalised_over_padding`` normalises each waveform over its
padding first, which no padding value makes right.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ZeroPaddedAudioEncoder"]


class ZeroPaddedAudioEncoder(nn.Module):
    """``input_values`` ``[batch, samples]`` zero-padded, ``attention_mask`` 1 at samples;
    returns the frames ``[batch, frames, channels]`` (a stride-2 convolution: half as many
    as samples, a row's last one reading one sample past its end) and the logits of their
    mean over each row's own frames."""

    __dyncheck__ = {"padding_value": {"input_values": 0.0}}

    def __init__(self, channels: int = 8, kernel_size: int = 5, num_labels: int = 3) -> None:
        super().__init__()
        self.feature = nn.Conv1d(1, channels, kernel_size, stride=2, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(channels)
        self.classifier = nn.Linear(channels, num_labels)

    def normalise(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return input_values

    def frame_lengths(self, samples: torch.Tensor) -> torch.Tensor:
        """Each row's own frames: as many as the convolution makes of its samples alone."""
        conv = self.feature
        return (samples + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        samples = self.normalise(input_values, attention_mask.to(input_values.dtype))
        frames = torch.nn.functional.gelu(self.norm(self.feature(samples[:, None]).transpose(1, 2)))
        steps = torch.arange(frames.shape[1], device=frames.device)
        own = steps[None, :] < self.frame_lengths(attention_mask.sum(-1))[:, None]
        keep = own.to(frames.dtype)[..., None]
        pooled = (frames * keep).sum(1) / keep.sum(1).clamp(min=1)
        return frames, self.classifier(pooled)
