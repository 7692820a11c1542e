"""Invariant: padding_invariance

``reference_models.relative_lengths.RelativeLengthsEncoder``, whose lengths are relative
(SpeechBrain's ``wav_lens``, fractions of the padded length), with its convolution module as
SpeechBrain's Conformer writes it: the padded frames are zeroed only in what the depthwise
convolution gives, so with a kernel of 3 a sequence's last frame reads the first padded
frame, and a sequence padded in a batch gives another output than alone: "Row 0 (length 1
of 5 padded steps, wav_lens 0.2) gives a different output in the batch than alone".

A correct version zeroes them before the convolution too, as ``RelativeLengthsEncoder`` does.
"""

from __future__ import annotations

import torch

from reference_models.relative_lengths import RelativeLengthsEncoder

__all__ = ["Model"]


class Model(RelativeLengthsEncoder):
    def convolve(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(x.transpose(1, 2)).transpose(1, 2)  # the bug: the padded frames go in
        return out.masked_fill(~valid.unsqueeze(-1), 0.0)
