"""An encoder that reads the frames past the longest sequence as right context.

Streaming speech encoders in torchaudio's Emformer style take ``(input, lengths)`` padded to
the longest sequence and count any frames after the longest one as look-ahead: every row
may attend to them. Its key padding mask is built as ``lengths + (T - lengths.max())``, and
a batch of one takes no mask at all. In the batches it is made for (``pad_sequence``: the
longest fills the batch) that is exact.

What it proves: a model whose lengths contract is that the longest sequence fills the
padded length, and which does not raise on a batch padded past it, is read so. dyncheck drew
batches padded past their longest, and batch_invariance and padding_invariance reported a
correct model; a probe now finds that one step of padding past the longest changes every
row's output while a shorter row's own padding does not, and draws the lengths with
``pad_to_longest=True`` (a mean over the padding still fails: ``buggy/mean_over_padding.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RightContextEncoder"]


class RightContextEncoder(nn.Module):
    def __init__(self, input_size=6, hidden_size=8, output_size=4):
        super().__init__()
        self.proj = nn.Linear(input_size, hidden_size)
        self.attention = nn.MultiheadAttention(hidden_size, 2, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, input: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = input.shape[1]
        h = self.proj(input)
        mask = None
        if input.shape[0] > 1:
            visible = lengths + (steps - lengths.max())  # each row's frames and the right context
            mask = torch.arange(steps, device=input.device)[None, :] >= visible[:, None]
        return self.out(self.attention(h, h, h, key_padding_mask=mask, need_weights=False)[0])
