"""PackedMeanPool: a sentence encoder as sentence-transformers builds one from modules: word
embeddings, an LSTM packed by the sentence lengths, then a mean over the tokens the
attention mask marks. The batch carries both, two views of one padding: ``forward(input_ids,
attention_mask, lengths)``.

Not a founding model: the counterpart of a false alarm on sentence-transformers'
``LSTM`` + ``Pooling``. The lengths and the mask were drawn apart, so they disagreed, and
``padding_invariance``, padding by the lengths, appended steps the mask marked as tokens and
reported that the model reads past each sequence's length. An attention mask beside lengths
over the same steps is now made from them, in every check's examples.
``buggy/padded_length_mean.py`` divides the sum by the padded length and fails.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["PackedMeanPool"]


class PackedMeanPool(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.emb(input_ids)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        tokens = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=embedded.size(1))[0]
        return self.pool(tokens, attention_mask.unsqueeze(-1).to(tokens.dtype))  # [batch, dim]
