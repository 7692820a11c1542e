"""Invariant: padding_invariance

The common transformer classifier, ``forward(tokens, src_key_padding_mask)`` with the mask
required, mean-pooling the encoder's outputs over every position, the padding included
(``h.mean(1)``). The encoder ignores the padded keys, but the pooling reads the padded
positions' outputs. dyncheck draws the required mask as the sequence's key padding mask
(True at padding) and reports "row 0 ... gives a different output in the batch than alone".

A correct version pools over the tokens only: ``(h * keep).sum(1) / keep.sum(1)`` with
``keep = ~src_key_padding_mask``.
"""

from __future__ import annotations

from torch import nn

__all__ = ["Model"]


class Model(nn.Module):
    def __init__(self, vocab_size=30, dim=16, n_classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim)
        layer = nn.TransformerEncoderLayer(dim, 2, 32, 0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, tokens, src_key_padding_mask):
        h = self.enc(self.emb(tokens), src_key_padding_mask=src_key_padding_mask)
        return self.fc(h.mean(1))  # the bug: the mean takes the padded positions in
