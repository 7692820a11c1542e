"""PaddedTransformerClassifier: a sentence classifier on ``nn.TransformerEncoder`` in
PyTorch's own convention, ``forward(tokens, src_key_padding_mask=None)``, the mask True at
padding.

Not a founding model: the counterpart of a check that never ran on the way most PyTorch
users write a padded transformer. dyncheck recognised masks True at tokens only (Hugging
Face's ``attention_mask``, x-transformers' ``mask``), so ``padding_invariance`` skipped a
model taking ``nn.TransformerEncoder``'s ``src_key_padding_mask``. An optional argument named
like ``key_padding_mask`` (``padding_mask``, ``src_key_padding_mask``) beside batch-first
tokens is now drawn as ``attention_masks(dtype=torch.bool, marks="padding")`` when a mask of
all False gives the output of no mask. The encoder keeps its default
``enable_nested_tensor=True``: in eval mode without autograd, its fast path runs the padded
batch as a nested tensor and returns zeros at padding.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["PaddedTransformerClassifier"]


class PaddedTransformerClassifier(nn.Module):
    def __init__(self, vocab_size=32, dim=8, heads=2, classes=3, layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers)
        self.head = nn.Linear(dim, classes)

    def encode(self, tokens, src_key_padding_mask=None):
        """Each token's state, attending to the tokens only."""
        return self.encoder(self.embed(tokens), src_key_padding_mask=src_key_padding_mask)

    def forward(self, tokens, src_key_padding_mask=None):
        h = self.encode(tokens, src_key_padding_mask)
        if src_key_padding_mask is None:
            return self.head(h.mean(1))
        keep = (~src_key_padding_mask).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1))
