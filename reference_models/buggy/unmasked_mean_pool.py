"""Invariant: padding_invariance

A sentence classifier in the Hugging Face style (``forward(input_ids=None,
attention_mask=None)``) that mean-pools its token states over every position,
``hidden.mean(dim=1)``: the attention mask is taken and never read, so the padding tokens
count in each sentence's summary, which then changes with the other sentences' lengths and
with more padding.

A correct version averages over the tokens the mask keeps:
``(hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size=32, hidden_size=16, num_labels=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, input_ids=None, attention_mask=None):
        hidden = torch.tanh(self.proj(self.embed(input_ids)))
        return self.classifier(hidden.mean(dim=1))  # BUG: the padding tokens count in the mean
