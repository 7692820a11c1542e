"""A speech encoder over raw samples in the layout of torchaudio's ``Wav2Vec2Model``:
``forward(waveforms, lengths=None)`` takes ``[batch, samples]`` (its convolutions add the
channel axis themselves), turns the lengths into each row's number of frames with the
convolutions' own formula, masks the padded frames out of a self-attention, and returns
``(frames, frame_lengths)``, the frame lengths None when no lengths were given. Not a
founding model: before, dyncheck left ``lengths=None`` at its default (the samples were
shaped ``[batch, samples]`` only after the lengths were looked for) and compared no frame
(they come at another rate than the samples); now the lengths are drawn and each row's
frames are compared on as many as it has alone.

Its convolutions pad nothing, so a row's frames read only its own samples;
``reference_models.buggy.group_norm_frames`` normalises its first convolution's channels
over every frame, padding included, as the ``"group_norm"`` extractor does.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RawAudioEncoder"]


class RawAudioEncoder(nn.Module):
    def __init__(self, channels: int = 8, num_heads: int = 2, layers: tuple = ((8, 10, 5), (8, 3, 2))) -> None:
        super().__init__()
        convs, norms, width = [], [], 1
        for index, (out, kernel, stride) in enumerate(layers):
            convs.append(nn.Conv1d(width, out, kernel, stride=stride, bias=False))
            norms.append(self.norm(index, out))
            width = out
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.projection = nn.Linear(width, channels)
        self.attention = nn.MultiheadAttention(channels, num_heads, batch_first=True)

    def norm(self, index: int, channels: int) -> nn.Module:
        return _ChannelLayerNorm(channels)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            lengths = torch.div(lengths - conv.kernel_size[0], conv.stride[0], rounding_mode="floor") + 1
        return lengths.clamp(min=0)

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None):
        h = waveforms[:, None]
        for conv, norm in zip(self.convs, self.norms):
            h = torch.nn.functional.gelu(norm(conv(h)))
        frames = self.projection(h.transpose(1, 2))
        if lengths is None:
            return self.attention(frames, frames, frames, need_weights=False)[0], None
        frame_lengths = self.frame_lengths(lengths)
        padding = torch.arange(frames.shape[1], device=frames.device)[None, :] >= frame_lengths[:, None]
        # a row with no frame of its own attends to its first frame rather than to nothing (NaN)
        padding[:, 0] = False
        out = self.attention(frames, frames, frames, key_padding_mask=padding, need_weights=False)[0]
        return out, frame_lengths


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of ``[batch, channels, frames]``: each frame alone."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h.transpose(1, 2)).transpose(1, 2)
