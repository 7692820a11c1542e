"""A word-level language model in the layout of PyTorch's word-language-model example:
time-major token ids ``[time, batch]`` into an embedding and a ``batch_first=False`` LSTM,
the LSTM's state ``(h_0, c_0)`` handed in by the caller (truncated backpropagation through
time carries it from one call to the next), the decoder tied to the embedding, and
``log_softmax`` over the scores flattened to ``[time * batch, vocab]``. Not a founding
model: before, dyncheck drew the token ids batch-first and the state as one tensor, and
every check reported the LSTM's refusal; now the ids follow the time-major LSTM their
embeddings reach, and the state is the tuple an LSTM takes (``buggy/averaged_cell_state.py``
mixes the samples' cell states, which ``batch_invariance`` finds by cutting both members
of the tuple along the batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WordLanguageModel"]


class WordLanguageModel(nn.Module):
    def __init__(self, vocab_size: int = 40, size: int = 12, num_layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, size)
        self.rnn = nn.LSTM(size, size, num_layers, dropout=dropout)
        self.decoder = nn.Linear(size, vocab_size)
        self.decoder.weight = self.encoder.weight  # tied: input and output embeddings are one

    def forward(
        self, input: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.vocab_size)
        return F.log_softmax(decoded, dim=1), hidden
