"""FlatTagger: a BiLSTM tagger over a padded batch that returns every row's valid steps
concatenated, ``[sum(lengths), tags]``, as flair's ``SequenceTagger(use_crf=False)`` does
before its loss: packed by the lengths, unpacked, then each row cut to its length.

Not a founding model: the counterpart of a false alarm on flair's tagger. The output has no
batch axis; where the number of tags equalled the batch's size, that axis was taken for the
batch, the concatenated steps for time, and ``padding_invariance`` reported "axis 0 of output
does not follow the padded length" on the correct model. An axis a row alone keeps at the
batch's size is no batch axis: the output is compared whole against the batch with more
padding (``buggy/unpacked_flat_tagger.py``, whose LSTM reads the padding, fails there).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["FlatTagger"]


class FlatTagger(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 6, tags: int = 4) -> None:
        super().__init__()
        self.rnn = nn.LSTM(features, hidden, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden, tags)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return out

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features = self.linear(self.encode(x, lengths))
        parts = []
        for feature, length in zip(features, lengths):
            parts.append(feature[:length])
        return torch.cat(parts)  # [sum(lengths), tags]
