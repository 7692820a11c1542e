"""The decoder of an image-captioning model, in the layout of the well-known tutorials: the
image's feature vector goes first, then the caption's embeddings, packed by the captions'
lengths with ``pack_padded_sequence`` left at ``enforce_sorted=True`` (the data loader's
collate function sorts each batch longest first), and the output is the packed steps'
scores, ``[sum(lengths), vocab_size]``. Not a founding model: before, dyncheck drew the
features as a sequence (the LSTM consumes them, after ``unsqueeze(1)``) and the lengths in
any order, and every check reported one of the two crashes; now the features are drawn as
vectors (found by a call) and the lengths longest first (``descending=True``, found by a
call), and batch_invariance permutes only rows of equal length.
``reference_models.buggy.batch_mean_features`` couples the samples of a batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["CaptionDecoder"]


class CaptionDecoder(nn.Module):
    def __init__(self, embed_size: int = 8, hidden_size: int = 16, vocab_size: int = 20) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, batch_first=True)
        self.linear = nn.Linear(hidden_size, vocab_size)

    def image(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embeddings = torch.cat((self.image(features).unsqueeze(1), self.embed(captions)), 1)
        packed = pack_padded_sequence(embeddings, lengths.cpu(), batch_first=True)
        hiddens, _ = self.lstm(packed)
        return self.linear(hiddens.data)
