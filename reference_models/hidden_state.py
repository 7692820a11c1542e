"""A character-level language model that takes its GRU's hidden state from the caller, as
a generation loop or truncated backpropagation through time carries it from one call to
the next: ``forward(tokens, hidden)`` with ``hidden`` ``[num_layers, batch, hidden_size]``
(batch second, whatever ``batch_first`` says), returning the next token's scores and the
new state. Not a founding model: before, dyncheck drew ``hidden`` as the GRU's input
sequence (the GRU consumes it) and every check reported the GRU's refusal; now the
argument's place in the call (the second, ``hx``) says it is the hidden state.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HiddenStateLM"]


class HiddenStateLM(nn.Module):
    def __init__(self, vocab_size: int = 16, embed_size: int = 6, hidden_size: int = 8, num_layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.gru = nn.GRU(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, hidden = self.gru(self.embed(tokens), hidden)
        return self.head(out), hidden
