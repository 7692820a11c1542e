"""Invariant: padding_invariance

``reference_models.length_mask.LengthMaskedConformer`` as torchaudio's ``Conformer``
writes its convolution module: the depthwise convolution over time reads the padded
frames as they are, so the frames next to a sequence's end depend on its padding (with a
kernel of 3, a valid last frame reads one padded frame). Attention masks the padding;
the convolution does not. Run alone, trimmed to its length, a sequence gives other
frames than in a batch padded to a longer one: "Row 1 (length 1 of 3 padded steps) gives
a different output[0] in the batch than alone".

A correct version zeroes the padding before the depthwise convolution
(``h.masked_fill(padding[:, None, :], 0.0)``), as ``LengthMaskedConformer`` does.
"""

from __future__ import annotations

import torch

from reference_models.length_mask import LengthMaskedConformer, _Convolution

__all__ = ["Model"]


class _UnmaskedConvolution(_Convolution):
    def without_padding(self, h: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return h  # the bug: the depthwise convolution reads the padded frames as they are


class Model(LengthMaskedConformer):
    convolution_module = _UnmaskedConvolution
