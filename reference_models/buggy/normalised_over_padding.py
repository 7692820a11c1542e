"""Invariant: padding_invariance

``ZeroPaddedAudioEncoder`` that normalises each waveform to zero mean and unit variance
over all its padded samples before the convolution (Hugging Face's feature extractors
normalise only the samples the attention mask keeps): a row's mean and variance, and so
every value it passes on, depend on how much padding it got, and its zero padding stops
being zero. Declaring ``padding_value`` does not hide it.
"""

from __future__ import annotations

import torch

from reference_models.zero_padded import ZeroPaddedAudioEncoder

__all__ = ["Model"]


class Model(ZeroPaddedAudioEncoder):
    def normalise(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # BUG: the statistics of the whole padded row, padding included.
        mean = input_values.mean(-1, keepdim=True)
        return (input_values - mean) / (input_values.var(-1, unbiased=False, keepdim=True) + 1e-7).sqrt()
