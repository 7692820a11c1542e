"""Word-level language models in the layouts of PyTorch's word-language-model example.

``WordLanguageModel``:
time-major token ids ``[time, batch]`` into an embedding and a ``batch_first=False`` LSTM,
the LSTM's state ``(h_0, c_0)`` handed in by the caller (truncated backpropagation through
time carries it from one call to the next), the decoder tied to the embedding, and
``log_softmax`` over the scores flattened to ``[time * batch, vocab]``. Not a founding
model: before, dyncheck drew the token ids batch-first and the state as one tensor, and
every check reported the LSTM's refusal; now the ids follow the time-major LSTM their
embeddings reach, and the state is the tuple an LSTM takes (``buggy/averaged_cell_state.py``
mixes the samples' cell states, which ``batch_invariance`` finds by cutting both members
of the tuple along the batch).

``WordTransformerLM``: the same example's Transformer, time-major ids ``[time, batch]`` into
an embedding, sinusoidal positions and a ``batch_first=False`` ``nn.TransformerEncoder``
under a causal mask. Drawn batch-first, each position ran as a sample of its own, and
``batch_invariance`` reported the causal mask as samples depending on each other: a false
alarm on a correct model. The ids now follow the time-major encoder their embeddings reach
(``buggy/time_mean_on_batch_axis.py`` centres over ``dim=1``, the batch in this layout).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WordLanguageModel", "WordTransformerLM"]


class WordLanguageModel(nn.Module):
    # No step reads a later one: causality checks it.
    __dyncheck__ = {"causal": True}

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


class WordTransformerLM(nn.Module):
    # No step reads a later one: causality checks it.
    __dyncheck__ = {"causal": True}

    def __init__(
        self, vocab_size: int = 40, size: int = 16, heads: int = 2, hidden: int = 32, layers: int = 2,
        dropout: float = 0.2, max_len: int = 64,
    ) -> None:
        super().__init__()
        self.size = size
        self.input_emb = nn.Embedding(vocab_size, size)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * (-math.log(10000.0) / size))
        table = torch.zeros(max_len, 1, size)  # [time, 1, size]: time-major
        table[:, 0, 0::2] = torch.sin(position * frequency)
        table[:, 0, 1::2] = torch.cos(position * frequency)
        self.register_buffer("positions", table)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(size, heads, hidden, dropout)  # batch_first=False
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = nn.Linear(size, vocab_size)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        steps = src.shape[0]
        mask = torch.full((steps, steps), float("-inf"), device=src.device).triu(1)  # causal
        x = self.input_emb(src) * math.sqrt(self.size)
        x = self.drop(self.center(x) + self.positions[:steps])
        return F.log_softmax(self.decoder(self.encoder(x, mask=mask)), dim=-1)

    def center(self, x: torch.Tensor) -> torch.Tensor:
        return x
