"""Invariant: padding_invariance

A bag-of-embeddings classifier that takes its batch as a dict (``batch["tokens"]``,
``batch["lengths"]``, as a collate function hands it over) and averages each sequence's
embeddings as ``sum over steps / length``: the sum runs over every step, padding included,
so a sequence shorter than its batch's padded length gets the embeddings of whatever token
ids fill its padding added in. Run alone (a batch of one, trimmed to its length) it gets
another result; ``batch_invariance`` cuts a sample out with its padding and sees nothing.

A correct version sums only the valid steps: ``(emb * mask.unsqueeze(-1)).sum(1) / lengths``
with ``mask = torch.arange(T) < lengths[:, None]``.
"""

from __future__ import annotations

from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size=30, embed_dim=6, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.head = nn.Linear(embed_dim, classes)

    def forward(self, batch):
        emb = self.embed(batch["tokens"])
        # BUG: the sum runs over the padded steps too; only the divisor knows the lengths
        mean = emb.sum(1) / batch["lengths"].clamp(min=1).unsqueeze(1).to(emb.dtype)
        return self.head(mean)
