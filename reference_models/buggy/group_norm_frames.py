"""Invariant: padding_invariance

``RawAudioEncoder`` whose first convolution's channels are normalised with a GroupNorm (one
group per channel) over all of a row's frames, padding included, as torchaudio's and
Hugging Face's ``"group_norm"`` wav2vec2 feature extractors do: every frame of a row
depends on how much padding the row got. (Both libraries say so: that variant is meant to
be run on batches without padding.)
"""

from __future__ import annotations

from torch import nn

from reference_models.raw_audio import RawAudioEncoder

__all__ = ["Model"]


class Model(RawAudioEncoder):
    def norm(self, index: int, channels: int) -> nn.Module:
        if index > 0:
            return super().norm(index, channels)
        # BUG: statistics over every frame of the row, its padding's too.
        return nn.GroupNorm(channels, channels)
