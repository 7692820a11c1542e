"""SeqFirstLM: a language model whose attention is written by hand over time-major inputs
``[time, batch, dim]``, as labml-nn's ``MultiHeadAttention`` and fairseq's attention are:
forward unpacks ``seq_len, batch_size, _ = x.shape`` and scores every step against every
other with ``einsum("ibd,jbd->ijb")``.

Not a founding model: the counterpart of a misreading of labml-nn's transformer. Only
torch's own layers said a layout (``batch_first=False``): the token ids were drawn
batch-first, the attention mixed the samples of the batch, and ``batch_invariance`` failed
the correct model. A custom layer's forward that names its input's first two axes when it
unpacks the shape (``seq_len, batch_size``; ``B, T, C = x.size()`` the other way) now says
its layout (``dyncheck.infer.forward._named_layout``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SeqFirstLM"]


class SeqFirstAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len, batch_size, dim = x.shape
        scores = torch.einsum("ibd,jbd->ijb", self.query(x), self.key(x)) * dim**-0.5
        return torch.einsum("ijb,jbd->ibd", scores.softmax(dim=1), self.value(x))


class SeqFirstLM(nn.Module):
    def __init__(self, vocab: int = 20, dim: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.attention = SeqFirstAttention(dim)
        self.out = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embedding(tokens)
        return self.out(h + self.attention(h)).transpose(0, 1)  # [batch, time, vocab]
