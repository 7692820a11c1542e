"""Classifiers that take their batch as a dict, as training loops hand it over:
``forward(self, batch)`` reading ``batch["tokens"]`` and ``batch["lengths"]`` (a GRU), or a
tokenizer's ``batch["input_ids"]`` and ``batch["attention_mask"]`` (a masked mean of
embeddings).

What it proves: zero-config inputs for a dict of inputs. Each entry read by key is inferred
as an argument of its own would be (token ids for the embedding, lengths by their name) and
the dict is drawn as ``fixed_dictionaries``; ``batch_invariance`` cuts it entry by entry, and
``padding_invariance`` reads the padding from ``batch["lengths"]`` or
``batch["attention_mask"]``. Drawn as one tensor, ``batch["tokens"]`` raised on every example;
inferred from its use alone, ``batch["attention_mask"]`` was a float tensor of another length,
and the model raised on every example: beside token ids it is their mask, as an
``attention_mask`` argument is.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["DictBatchClassifier", "DictMaskedClassifier"]


class DictBatchClassifier(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, hidden=6, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, batch):
        packed = pack_padded_sequence(
            self.embed(batch["tokens"]), batch["lengths"], batch_first=True, enforce_sorted=False
        )
        _, h = self.rnn(packed)
        return self.head(h[-1])


class DictMaskedClassifier(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.head = nn.Linear(embed_dim, classes)

    def forward(self, batch):
        emb = self.embed(batch["input_ids"])
        mask = batch["attention_mask"].unsqueeze(-1).to(emb.dtype)
        return self.head((emb * mask).sum(1) / mask.sum(1).clamp(min=1))
