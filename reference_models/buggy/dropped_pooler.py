"""Invariant: grad_isolation

An encoder in the Hugging Face mould returns its hidden states and a pooled summary
(``pooler = tanh(dense(h[:, 0]))``, as ``BertModel``'s ``pooler_output``); the classifier on
top reads only the hidden states. The pooler runs on every call, its result is dropped, and
its parameters never get a gradient: they take memory and optimizer state and never learn
(``DistributedDataParallel`` stops on them unless told ``find_unused_parameters=True``).
dyncheck reports "pooler ran, but its output never reaches the model's output".

A correct version does not build the pooler (``add_pooling_layer=False`` for a Hugging Face
encoder) or uses what it computes.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Encoder(nn.Module):
    def __init__(self, vocab_size, dim):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.layer = nn.Linear(dim, dim)
        self.pooler = nn.Linear(dim, dim)

    def forward(self, tokens):
        hidden = torch.tanh(self.layer(self.embed(tokens)))
        return hidden, torch.tanh(self.pooler(hidden[:, 0]))


class Model(nn.Module):
    def __init__(self, vocab_size=30, dim=8, classes=3):
        super().__init__()
        self.encoder = Encoder(vocab_size, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        hidden, _ = self.encoder(tokens)  # BUG: the pooled output is computed and dropped
        return self.head(hidden.mean(1))
