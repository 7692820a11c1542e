"""Invariant: padding_invariance

``NestedBatchClassifier`` (a multimodal batch: ``batch["text"]["input_ids"]`` and
``batch["text"]["attention_mask"]`` beside ``batch["image"]``) averaging the masked token
embeddings over the padded length, ``(emb * mask).sum(1) / emb.shape[1]``: the padding
contributes zeros but still counts in the divisor, so a row's result depends on how long
its batch is padded. Run alone (a batch of one, trimmed to its length) or with more
padding appended, it gets another result.

A correct version divides by the number of tokens: ``mask.sum(1).clamp(min=1)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, image_features=12, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.image = nn.Linear(image_features, embed_dim)
        self.head = nn.Linear(2 * embed_dim, classes)

    def forward(self, batch):
        text = batch["text"]
        emb = self.embed(text["input_ids"])
        mask = text["attention_mask"].unsqueeze(-1).to(emb.dtype)
        # BUG: divides by the padded length, not by the row's number of tokens
        pooled = (emb * mask).sum(1) / emb.shape[1]
        return self.head(torch.cat([pooled, self.image(batch["image"])], dim=-1))
